package management

import (
	"net/http"
	"slices"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/vhost"
)

// routeOperatorPolicies serves /api/operator-policies[/{vhost}[/{name}]]
// as RabbitMQ's: listed to anyone who sees the vhost, changed by
// administrators (authz.go).
func (a *API) routeOperatorPolicies(q *request) {
	s := q.segs
	switch {
	case len(s) <= 2:
		get(q, func(q *request) {
			vhs, ok := a.visibleVHosts(q, 1)
			if !ok {
				return
			}
			out := []map[string]any{}
			for _, v := range vhs {
				for _, p := range v.OperatorPolicies() {
					out = append(out, policyOut(v.Name, p))
				}
			}
			replyList(q, out, false)
		})
	case len(s) == 3:
		v := a.vhost(q, s[1])
		if v == nil {
			return
		}
		switch q.r.Method {
		case http.MethodGet, http.MethodHead:
			for _, p := range v.OperatorPolicies() {
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
			existed := slices.ContainsFunc(v.OperatorPolicies(), func(p vhost.Policy) bool { return p.Name == s[2] })
			a.applyIn(q, v, vhost.SetOperatorPolicy{Name: s[2], Pattern: body.Pattern, ApplyTo: body.ApplyTo, Priority: int(prio),
				Definition: broker.TableArgs(body.Definition)}, createdOr(existed))
		case http.MethodDelete:
			if !slices.ContainsFunc(v.OperatorPolicies(), func(p vhost.Policy) bool { return p.Name == s[2] }) {
				notFound(q.w)
				return
			}
			a.applyIn(q, v, vhost.DeleteOperatorPolicy{Name: s[2]}, http.StatusNoContent)
		default:
			methodNotAllowed(q.w)
		}
	default:
		notFound(q.w)
	}
}
