package management

import (
	"encoding/json"
	"errors"
	"html"
	"net/http"

	"github.com/warrenmq/warren/shovel"
	"github.com/warrenmq/warren/vhost"
)

// routeParameters serves /api/parameters: runtime parameters, of which
// Warren has one component, rabbitmq_shovel's "shovel".
func (a *API) routeParameters(q *request) {
	s := q.segs
	if len(s) > 1 && s[1] != shovel.Component {
		switch {
		case len(s) == 4 && q.r.Method == http.MethodPut:
			badRequest(q.w, "Validation failed\n\ncomponent "+s[1]+" not found\n")
		case len(s) <= 3:
			get(q, func(q *request) { writeJSON(q.w, 200, []any{}) })
		default:
			notFound(q.w)
		}
		return
	}
	switch len(s) {
	case 1, 2:
		get(q, func(q *request) { replyList(q, a.parametersJSON(q, ""), false) })
	case 3:
		get(q, func(q *request) {
			if a.vhost(q, s[2]) != nil {
				replyList(q, a.parametersJSON(q, s[2]), false)
			}
		})
	case 4:
		a.parameter(q, s[2], s[3])
	default:
		notFound(q.w)
	}
}

func (a *API) parametersJSON(q *request, vh string) []map[string]any {
	out := []map[string]any{}
	if a.shovels == nil {
		return out
	}
	for _, p := range a.shovels.Parameters(vh) {
		if a.canSee(q.u, p.Vhost) {
			out = append(out, parameterJSON(p))
		}
	}
	return out
}

func parameterJSON(p shovel.Parameter) map[string]any {
	return map[string]any{"value": p.Value, "vhost": p.Vhost, "component": shovel.Component, "name": p.Name}
}

// parameter serves GET, PUT and DELETE of /api/parameters/shovel/{vhost}/{name}.
func (a *API) parameter(q *request, vh, name string) {
	if a.shovels == nil {
		notFound(q.w)
		return
	}
	switch q.r.Method {
	case http.MethodGet, http.MethodHead:
		if a.vhost(q, vh) == nil {
			return
		}
		for _, p := range a.shovels.Parameters(vh) {
			if p.Name == name {
				q.reply(parameterJSON(p))
				return
			}
		}
		notFound(q.w)
	case http.MethodPut:
		if a.broker.VHost(vh) == nil {
			writeError(q.w, http.StatusNotFound, "not_found", "vhost_not_found")
			return
		}
		var body map[string]json.RawMessage
		if !readBody(q, &body) {
			return
		}
		value, ok := body["value"]
		if !ok {
			badRequest(q.w, "[{key_missing,value}]")
			return
		}
		existed, err := a.shovels.Put(vh, name, value)
		if err != nil {
			shovelError(q.w, err)
			return
		}
		q.w.WriteHeader(createdOr(existed))
	case http.MethodDelete:
		if a.vhost(q, vh) == nil {
			return
		}
		found, err := a.shovels.Delete(vh, name)
		switch {
		case err != nil:
			shovelError(q.w, err)
		case !found:
			notFound(q.w)
		default:
			q.w.WriteHeader(http.StatusNoContent)
		}
	default:
		methodNotAllowed(q.w)
	}
}

// shovelError writes a refused shovel as RabbitMQ's API does: its
// validation text, HTML-escaped as rabbit_mgmt_util escapes reasons.
func shovelError(w http.ResponseWriter, err error) {
	var ve *shovel.ValidationError
	if errors.As(err, &ve) {
		badRequest(w, escapeReason(ve.Error()))
		return
	}
	writeError(w, http.StatusInternalServerError, "internal_error", err.Error())
}

// escapeReason escapes <, > and & but not quotes, as RabbitMQ's reasons are.
func escapeReason(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '<', '>', '&':
			out = append(out, html.EscapeString(s[i:i+1])...)
		default:
			out = append(out, s[i])
		}
	}
	return string(out)
}

// routeShovels serves rabbitmq_shovel_management: GET /api/shovels[/{vhost}]
// and DELETE /api/shovels/vhost/{vhost}/{name}/restart.
func (a *API) routeShovels(q *request) {
	s := q.segs
	switch {
	case len(s) == 1:
		get(q, func(q *request) { replyList(q, a.shovelsJSON(q, ""), false) })
	case len(s) == 2:
		get(q, func(q *request) {
			if a.vhost(q, s[1]) != nil {
				replyList(q, a.shovelsJSON(q, s[1]), false)
			}
		})
	case len(s) == 5 && s[1] == "vhost" && s[4] == "restart":
		if q.r.Method != http.MethodDelete {
			methodNotAllowed(q.w)
			return
		}
		if a.vhost(q, s[2]) == nil {
			return
		}
		if a.shovels == nil || !a.shovels.Restart(s[2], s[3]) {
			notFound(q.w)
			return
		}
		q.w.WriteHeader(http.StatusNoContent)
	default:
		notFound(q.w)
	}
}

func (a *API) shovelsJSON(q *request, vh string) []map[string]any {
	out := []map[string]any{}
	if a.shovels == nil {
		return out
	}
	for _, st := range a.shovels.Statuses(vh) {
		if !a.canSee(q.u, st.Vhost) {
			continue
		}
		j := map[string]any{
			"node": a.node, "timestamp": st.Since.Format("2006-01-02 15:04:05"),
			"name": st.Name, "vhost": st.Vhost, "type": "dynamic", "state": st.State,
		}
		if st.State == shovel.Running {
			sp := st.Spec
			j["src_uri"], j["dest_uri"] = st.SrcURI, st.DestURI
			j["src_protocol"], j["dest_protocol"] = "amqp091", "amqp091"
			for k, v := range sp.StatusFields() {
				j[k] = v
			}
		}
		out = append(out, j)
	}
	return out
}

// shovelParameters makes the shovels take part in definitions import and
// export (broker.ParameterStore).
type shovelParameters struct{ m *shovel.Manager }

func (p shovelParameters) ImportParameter(component, vh, name string, value json.RawMessage) (bool, error) {
	if component != shovel.Component {
		return false, nil
	}
	if _, err := p.m.Put(vh, name, value); err != nil {
		var ve *shovel.ValidationError
		if errors.As(err, &ve) {
			return true, &vhost.Error{Kind: vhost.PreconditionFailed, Text: ve.Error()}
		}
		return true, err
	}
	return true, nil
}

func (p shovelParameters) ExportParameters(vh string) []map[string]any {
	var out []map[string]any
	for _, sp := range p.m.Parameters(vh) {
		out = append(out, parameterJSON(sp))
	}
	return out
}
