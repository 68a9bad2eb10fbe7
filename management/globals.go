package management

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/warrenmq/warren/broker"
)

// routeGlobalParameters serves /api/global-parameters[/{name}], as
// rabbit_mgmt_wm_global_parameter(s).
func (a *API) routeGlobalParameters(q *request) {
	s := q.segs
	switch len(s) {
	case 1:
		get(q, func(q *request) {
			out := []map[string]any{}
			for _, name := range a.globalNames() {
				v, _ := a.globalValue(name)
				out = append(out, map[string]any{"name": name, "value": v})
			}
			replyList(q, out, false)
		})
	case 2:
		switch q.r.Method {
		case http.MethodGet, http.MethodHead:
			v, ok := a.globalValue(s[1])
			if !ok {
				notFound(q.w)
				return
			}
			q.reply(map[string]any{"name": s[1], "value": v})
		case http.MethodPut:
			var body map[string]json.RawMessage
			if !readBody(q, &body) {
				return
			}
			value, ok := body["value"]
			if !ok {
				badRequest(q.w, "[{key_missing,value}]")
				return
			}
			_, existed := a.broker.GlobalParameter(s[1])
			a.apply(q, broker.SetGlobalParameter{Name: s[1], Value: value}, createdOr(existed))
		case http.MethodDelete:
			if _, ok := a.broker.GlobalParameter(s[1]); !ok {
				notFound(q.w)
				return
			}
			a.apply(q, broker.ClearGlobalParameter{Name: s[1]}, http.StatusNoContent)
		default:
			methodNotAllowed(q.w)
		}
	default:
		notFound(q.w)
	}
}

// globalNames are the stored global parameters' names and cluster_name,
// which RabbitMQ always has.
func (a *API) globalNames() []string {
	names := a.broker.GlobalParameterNames()
	if _, ok := a.broker.GlobalParameter(broker.ClusterNameParameter); !ok {
		names = append(names, broker.ClusterNameParameter)
	}
	slices.Sort(names)
	return names
}

func (a *API) globalValue(name string) (json.RawMessage, bool) {
	if v, ok := a.broker.GlobalParameter(name); ok {
		return v, true
	}
	if name == broker.ClusterNameParameter {
		b, _ := json.Marshal(a.broker.ClusterName())
		return b, true
	}
	return nil, false
}

// routeClusterName serves /api/cluster-name: GET shows it, PUT {"name":
// ...} sets it (the cluster_name global parameter, as RabbitMQ's).
func (a *API) routeClusterName(q *request) {
	if len(q.segs) != 1 {
		notFound(q.w)
		return
	}
	switch q.r.Method {
	case http.MethodGet, http.MethodHead:
		q.reply(map[string]string{"name": a.broker.ClusterName()})
	case http.MethodPut:
		var body map[string]any
		if !readBody(q, &body) {
			return
		}
		name, ok := body["name"].(string)
		if !ok {
			badRequest(q.w, "[{key_missing,name}]")
			return
		}
		v, _ := json.Marshal(name)
		a.apply(q, broker.SetGlobalParameter{Name: broker.ClusterNameParameter, Value: v}, http.StatusNoContent)
	default:
		methodNotAllowed(q.w)
	}
}
