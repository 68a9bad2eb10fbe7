package management

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/warrenmq/warren/broker"
)

// routeVhostLimits serves /api/vhost-limits[/{vhost}[/{name}]]: the list
// of vhosts' own limits, and PUT and DELETE of one limit, as RabbitMQ's.
func (a *API) routeVhostLimits(q *request) {
	s := q.segs
	switch {
	case len(s) <= 2:
		get(q, func(q *request) {
			if len(s) == 2 && a.vhost(q, s[1]) == nil {
				return
			}
			all := a.broker.VhostLimits()
			out := []map[string]any{}
			for _, name := range slices.Sorted(maps.Keys(all)) {
				if (len(s) == 2 && name != s[1]) || !a.canSee(q.u, name) {
					continue
				}
				out = append(out, map[string]any{"vhost": name, "value": all[name]})
			}
			replyList(q, out, false)
		})
	case len(s) == 3:
		switch q.r.Method {
		case http.MethodPut:
			if a.broker.VHost(s[1]) == nil {
				writeError(q.w, http.StatusNotFound, "not_found", "vhost_not_found")
				return
			}
			value, ok := limitValue(q, s[2], "Validation failed\n\n%s should be a number, actually was %s\n")
			if !ok {
				return
			}
			a.apply(q, broker.SetVhostLimit{Vhost: s[1], Name: s[2], Value: value}, http.StatusNoContent)
		case http.MethodDelete:
			if a.broker.VHost(s[1]) == nil {
				notFound(q.w) // RabbitMQ 3.10 answers 500 here
				return
			}
			a.apply(q, broker.ClearVhostLimit{Vhost: s[1], Name: s[2]}, http.StatusNoContent)
		default:
			methodNotAllowed(q.w)
		}
	default:
		notFound(q.w)
	}
}

// routeUserLimits serves /api/user-limits[/{user}[/{name}]], for
// administrators.
func (a *API) routeUserLimits(q *request) {
	if !requireAdmin(q) {
		return
	}
	s := q.segs
	switch {
	case len(s) <= 2:
		get(q, func(q *request) {
			if len(s) == 2 {
				if _, ok := a.broker.User(s[1]); !ok {
					notFound(q.w)
					return
				}
			}
			all := a.broker.UserLimits()
			out := []map[string]any{}
			for _, name := range slices.Sorted(maps.Keys(all)) {
				if len(s) == 2 && name != s[1] {
					continue
				}
				out = append(out, map[string]any{"user": name, "value": all[name]})
			}
			replyList(q, out, false)
		})
	case len(s) == 3:
		switch q.r.Method {
		case http.MethodPut:
			if _, ok := a.broker.User(s[1]); !ok {
				writeJSON(q.w, http.StatusBadRequest, map[string]any{"error": "bad_request", "reason": []string{"no_such_user", s[1]}})
				return
			}
			value, ok := limitValue(q, s[2], "%s should be a number, actually was %s")
			if !ok {
				return
			}
			a.apply(q, broker.SetUserLimit{User: s[1], Name: s[2], Value: value}, http.StatusNoContent)
		case http.MethodDelete:
			if _, ok := a.broker.User(s[1]); !ok {
				notFound(q.w) // RabbitMQ 3.10 answers 500 here
				return
			}
			a.apply(q, broker.ClearUserLimit{User: s[1], Name: s[2]}, http.StatusNoContent)
		default:
			methodNotAllowed(q.w)
		}
	default:
		notFound(q.w)
	}
}

// limitValue reads the body's integer "value", answering 400 with
// RabbitMQ's reasons (format takes the limit's name and the value as
// Erlang prints it) when it is missing or not an integer.
func limitValue(q *request, name, format string) (int64, bool) {
	var body map[string]any
	if !readBody(q, &body) {
		return 0, false
	}
	raw, ok := body["value"]
	if !ok {
		badRequest(q.w, "[{key_missing,value}]")
		return 0, false
	}
	if n, isNum := raw.(json.Number); isNum {
		if v, err := n.Int64(); err == nil {
			return v, true
		}
	}
	badRequest(q.w, fmt.Sprintf(format, name, erlangTerm(raw)))
	return 0, false
}

// erlangTerm prints a JSON value as RabbitMQ's validation messages do: a
// string as a binary, anything else as it was written.
func erlangTerm(v any) string {
	switch v := v.(type) {
	case string:
		return `<<"` + v + `">>`
	case json.Number:
		return v.String()
	case nil:
		return "null"
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// limitsJSON is a user's limits as RabbitMQ shows them: {} when none.
func limitsJSON(l broker.Limits) broker.Limits {
	if l == nil {
		return broker.Limits{}
	}
	return l
}
