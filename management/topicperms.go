package management

import (
	"net/http"
	"strings"

	"github.com/warrenmq/warren/broker"
)

// routeTopicPermissions serves /api/topic-permissions[/{vhost}/{user}[/{exchange}]],
// for administrators, as rabbit_mgmt_wm_topic_permission(s).
func (a *API) routeTopicPermissions(q *request) {
	if !requireAdmin(q) {
		return
	}
	s := q.segs
	switch len(s) {
	case 1:
		get(q, func(q *request) { replyList(q, nonNil(a.broker.TopicPermissions("", "")), false) })
	case 3:
		a.topicPermission(q, s[1], s[2])
	case 4:
		if q.r.Method != http.MethodDelete {
			notFound(q.w)
			return
		}
		if !a.hasTopicPermissions(s[1], s[2]) {
			notFound(q.w)
			return
		}
		for _, tp := range a.broker.TopicPermissions(s[2], s[1]) {
			if tp.Exchange == s[3] {
				a.apply(q, broker.ClearTopicPermissions{User: s[2], Vhost: s[1], Exchange: s[3]}, http.StatusNoContent)
				return
			}
		}
		q.w.WriteHeader(http.StatusNoContent) // as RabbitMQ: nothing to delete is no error
	default:
		notFound(q.w)
	}
}

func (a *API) hasTopicPermissions(vh, user string) bool {
	_, userOK := a.broker.User(user)
	return userOK && a.broker.VHost(vh) != nil && len(a.broker.TopicPermissions(user, vh)) > 0
}

func (a *API) topicPermission(q *request, vh, user string) {
	switch q.r.Method {
	case http.MethodGet, http.MethodHead:
		if !a.hasTopicPermissions(vh, user) {
			notFound(q.w)
			return
		}
		replyList(q, a.broker.TopicPermissions(user, vh), false)
	case http.MethodPut:
		_, userOK := a.broker.User(user)
		if !userOK || a.broker.VHost(vh) == nil {
			badRequest(q.w, "vhost_or_user_not_found")
			return
		}
		var body map[string]any
		if !readBody(q, &body) {
			return
		}
		var vals [3]string
		var missing []string
		for i, k := range []string{"exchange", "write", "read"} {
			v, ok := body[k].(string)
			if !ok {
				missing = append(missing, "{key_missing,"+k+"}")
			}
			vals[i] = v
		}
		if len(missing) > 0 {
			badRequest(q.w, "["+strings.Join(missing, ",")+"]")
			return
		}
		// RabbitMQ's resource is the user's topic permissions in the vhost:
		// 201 for the first, 204 for any other.
		existed := len(a.broker.TopicPermissions(user, vh)) > 0
		a.apply(q, broker.SetTopicPermission{User: user, Vhost: vh, Exchange: vals[0], Write: vals[1], Read: vals[2]}, createdOr(existed))
	case http.MethodDelete:
		if !a.hasTopicPermissions(vh, user) {
			notFound(q.w)
			return
		}
		a.apply(q, broker.ClearTopicPermissions{User: user, Vhost: vh}, http.StatusNoContent)
	default:
		methodNotAllowed(q.w)
	}
}
