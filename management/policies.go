package management

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/vhost"
)

// policyJSON is a policy as RabbitMQ's API shows and accepts it.
type policyJSON struct {
	VHost      string         `json:"vhost"`
	Name       string         `json:"name"`
	Pattern    string         `json:"pattern"`
	ApplyTo    string         `json:"apply-to"`
	Priority   json.Number    `json:"priority,omitempty"`
	Definition map[string]any `json:"definition"`
}

func policyOut(vh string, p vhost.Policy) map[string]any {
	return map[string]any{
		"vhost": vh, "name": p.Name, "pattern": p.Pattern, "apply-to": p.ApplyTo,
		"priority": p.Priority, "definition": broker.JSONTable(p.Definition),
	}
}

// routePolicies serves /api/policies[/{vhost}[/{name}]]: list, show, PUT and
// DELETE. Changing a policy is an op on the virtual host, like any other
// definition change.
func (a *API) routePolicies(q *request) {
	s := q.segs
	switch {
	case len(s) <= 2 && q.r.Method == http.MethodGet:
		vhs, ok := a.visibleVHosts(q, 1)
		if !ok {
			return
		}
		out := []any{}
		for _, v := range vhs {
			for _, p := range v.Policies() {
				out = append(out, policyOut(v.Name, p))
			}
		}
		replyList(q, out, false)
	case len(s) == 3:
		v := a.vhost(q, s[1])
		if v == nil {
			return
		}
		switch q.r.Method {
		case http.MethodGet:
			for _, p := range v.Policies() {
				if p.Name == s[2] {
					q.reply(policyOut(v.Name, p))
					return
				}
			}
			notFound(q.w)
		case http.MethodPut:
			var body policyJSON
			if !readBody(q, &body) {
				return
			}
			prio, _ := body.Priority.Int64()
			existed := slices.ContainsFunc(v.Policies(), func(p vhost.Policy) bool { return p.Name == s[2] })
			a.applyIn(q, v, vhost.SetPolicy{Name: s[2], Pattern: body.Pattern, ApplyTo: body.ApplyTo, Priority: int(prio),
				Definition: broker.TableArgs(body.Definition)}, createdOr(existed))
		case http.MethodDelete:
			if !slices.ContainsFunc(v.Policies(), func(p vhost.Policy) bool { return p.Name == s[2] }) {
				notFound(q.w)
				return
			}
			a.applyIn(q, v, vhost.DeletePolicy{Name: s[2]}, http.StatusNoContent)
		default:
			methodNotAllowed(q.w)
		}
	default:
		notFound(q.w)
	}
}
