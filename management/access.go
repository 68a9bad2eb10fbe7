package management

import (
	"net/http"
	"slices"
	"strings"

	"github.com/warrenmq/warren/broker"
)

// This file serves users, virtual hosts and permissions as RabbitMQ 3.10's
// management API does (rabbit_mgmt_wm_user, _vhost, _permission and the
// list resources): each change is one broker.Op, applied and stored by
// the server. Changing any of them needs the administrator tag; listing
// users and permissions does too, while vhosts are listed to anyone who may
// see them.

// fullAccess is what RabbitMQ grants the user who creates a vhost.
const fullAccess = ".*"

// ---- virtual hosts ----

// routeVHosts serves /api/vhosts[/{name}[/permissions|/topic-permissions|/connections|/channels]].
func (a *API) routeVHosts(q *request) {
	s := q.segs
	switch {
	case len(s) == 1:
		get(q, a.listVHosts)
	case len(s) == 2:
		switch q.r.Method {
		case http.MethodGet, http.MethodHead:
			a.listVHosts(q)
		case http.MethodPut:
			a.putVHost(q, s[1])
		case http.MethodDelete:
			if a.broker.VHost(s[1]) == nil {
				notFound(q.w)
				return
			}
			if a.apply(q, broker.DeleteVhost{Name: s[1]}, http.StatusNoContent) && a.shovels != nil {
				// As RabbitMQ clears a deleted vhost's runtime parameters.
				if err := a.shovels.DeleteVhost(s[1]); err != nil {
					a.log.Error("deleting the shovels of a deleted vhost failed", "vhost", s[1], "err", err)
				}
			}
		default:
			methodNotAllowed(q.w)
		}
	case len(s) == 3 && s[2] == "permissions":
		get(q, func(q *request) {
			if !requireAdmin(q) || a.vhost(q, s[1]) == nil {
				return
			}
			out := []map[string]any{}
			for _, u := range a.broker.Users() {
				if p, ok := u.Permissions[s[1]]; ok {
					out = append(out, permissionJSON(u.Name, s[1], p))
				}
			}
			replyList(q, out, false)
		})
	case len(s) == 3 && s[2] == "topic-permissions":
		get(q, func(q *request) {
			if requireAdmin(q) && a.vhost(q, s[1]) != nil {
				replyList(q, nonNil(a.broker.TopicPermissions("", s[1])), false)
			}
		})
	case len(s) == 3 && s[2] == "channels":
		get(q, func(q *request) {
			if a.vhost(q, s[1]) == nil {
				return
			}
			out := []map[string]any{}
			for _, ch := range a.srv.Channels() {
				if ch.Connection.VHost == s[1] && q.sees(ch.Connection.User, s[1]) {
					out = append(out, a.channelJSON(ch))
				}
			}
			replyList(q, out, true)
		})
	case len(s) == 3 && s[2] == "connections":
		get(q, func(q *request) {
			if a.vhost(q, s[1]) == nil {
				return
			}
			out := []map[string]any{}
			for _, c := range a.srv.Connections() {
				if c.VHost == s[1] && q.sees(c.User, c.VHost) {
					out = append(out, a.connectionJSON(c))
				}
			}
			replyList(q, out, true)
		})
	default:
		notFound(q.w)
	}
}

func (a *API) listVHosts(q *request) {
	vs, ok := a.visibleVHosts(q, 1)
	if !ok {
		return
	}
	out := make([]map[string]any, 0, len(vs))
	for _, v := range vs {
		info, ok := a.broker.VHostInfo(v.Name)
		if !ok {
			continue // deleted since
		}
		var ready, unacked int
		var ms messageStats
		for _, qu := range v.Queues() {
			st := qu.Stats()
			ready += st.Ready
			unacked += st.Unacked
			ms.add(statsOf(st, a.stats.rates(v.Name, qu)))
		}
		tags := nonNil(info.Tags)
		out = append(out, map[string]any{
			"name": v.Name, "description": info.Description, "tags": tags, "tracing": v.Tracing(),
			"metadata":      map[string]any{"description": info.Description, "tags": tags},
			"cluster_state": map[string]string{a.node: "running"},
			"messages":      ready + unacked, "messages_ready": ready, "messages_unacknowledged": unacked,
			"message_stats": ms,
		})
	}
	if len(q.segs) > 1 {
		if len(out) == 0 {
			notFound(q.w)
			return
		}
		q.reply(out[0])
		return
	}
	replyList(q, out, true)
}

// putVHost creates a vhost (201) and, as RabbitMQ does, gives the user who
// created it full permissions there. As in RabbitMQ 3.10, a vhost that
// exists is left as it is (204), description and tags included.
func (a *API) putVHost(q *request, name string) {
	var body map[string]any
	if !readBody(q, &body) {
		return
	}
	tracing, setTracing := body["tracing"].(bool) // rabbitmqctl trace_on/trace_off
	if v := a.broker.VHost(name); v != nil {
		if setTracing {
			v.SetTracing(tracing)
		}
		q.w.WriteHeader(http.StatusNoContent)
		return
	}
	desc, _ := body["description"].(string)
	tags, ok := parseTags(body["tags"])
	if !ok {
		badRequest(q.w, "tags must be a comma-separated string or a list of strings")
		return
	}
	if !a.apply(q, broker.PutVhost{Name: name, Description: desc, Tags: tags}, 0) {
		return
	}
	if !a.apply(q, broker.SetPermissions{User: q.u.name, Vhost: name, Configure: fullAccess, Write: fullAccess, Read: fullAccess}, 0) {
		return
	}
	if v := a.broker.VHost(name); v != nil && setTracing {
		v.SetTracing(tracing)
	}
	q.w.WriteHeader(http.StatusCreated)
}

// ---- users ----

func userJSON(u broker.UserInfo) map[string]any {
	return map[string]any{
		"name": u.Name, "password_hash": u.PasswordHash, "hashing_algorithm": u.HashingAlgorithm,
		"tags": nonNil(u.Tags), "limits": limitsJSON(u.Limits),
	}
}

// requireAdmin answers 401 unless the caller is an administrator, as
// RabbitMQ's is_authorized_admin resources do.
func requireAdmin(q *request) bool {
	if !q.u.admin() {
		notAuthorised(q.w, notAdmin)
		return false
	}
	return true
}

// routeUsers serves /api/users[/{name}[/permissions|/topic-permissions]],
// /api/users/without-permissions and /api/users/bulk-delete.
func (a *API) routeUsers(q *request) {
	if !requireAdmin(q) {
		return
	}
	s := q.segs
	switch {
	case len(s) == 1:
		get(q, func(q *request) {
			out := []map[string]any{}
			for _, u := range a.broker.Users() {
				out = append(out, userJSON(u))
			}
			replyList(q, out, false)
		})
	case len(s) == 2 && s[1] == "without-permissions":
		get(q, func(q *request) {
			out := []map[string]any{}
			for _, u := range a.broker.Users() {
				if len(u.Permissions) == 0 {
					out = append(out, userJSON(u))
				}
			}
			replyList(q, out, false)
		})
	case len(s) == 2 && s[1] == "bulk-delete":
		if q.r.Method != http.MethodPost {
			methodNotAllowed(q.w)
			return
		}
		a.bulkDeleteUsers(q)
	case len(s) == 2:
		switch q.r.Method {
		case http.MethodGet, http.MethodHead:
			u, ok := a.broker.User(s[1])
			if !ok {
				notFound(q.w)
				return
			}
			q.reply(userJSON(u))
		case http.MethodPut:
			a.putUser(q, s[1])
		case http.MethodDelete:
			if _, ok := a.broker.User(s[1]); !ok {
				notFound(q.w)
				return
			}
			a.apply(q, broker.DeleteUser{Name: s[1]}, http.StatusNoContent)
		default:
			methodNotAllowed(q.w)
		}
	case len(s) == 3 && (s[2] == "permissions" || s[2] == "topic-permissions"):
		get(q, func(q *request) {
			u, ok := a.broker.User(s[1])
			if !ok {
				notFound(q.w)
				return
			}
			if s[2] == "topic-permissions" {
				replyList(q, nonNil(a.broker.TopicPermissions(s[1], "")), false)
				return
			}
			replyList(q, permissionsOf(u), false)
		})
	default:
		notFound(q.w)
	}
}

// putUser creates (201) or updates (204) a user, as RabbitMQ's put_user:
// "password" is hashed here (clear text is never stored), "password_hash"
// (with "hashing_algorithm") is taken as it is, neither clears the
// password, both are refused; "tags" is required, as a comma-separated
// string or a list.
func (a *API) putUser(q *request, name string) {
	var body map[string]any
	if !readBody(q, &body) {
		return
	}
	op, reason := userOp(name, body)
	if reason != "" {
		badRequest(q.w, reason)
		return
	}
	_, existed := a.broker.User(name)
	a.apply(q, op, createdOr(existed))
}

// userOp reads a PUT /api/users body; reason is RabbitMQ's error for a bad one.
func userOp(name string, body map[string]any) (op broker.PutUser, reason string) {
	op.Name = name
	pw, hasPassword := body["password"]
	hash, hasHash := body["password_hash"]
	if hasPassword && hasHash {
		return op, "both_password_and_password_hash_are_provided"
	}
	rawTags, hasTags := body["tags"]
	if !hasTags {
		admin, ok := body["administrator"]
		if !ok {
			return op, "tags_not_present"
		}
		// Before tags, RabbitMQ's API took "administrator": "true".
		if b, _ := admin.(bool); b || admin == "true" {
			rawTags = "administrator"
		} else {
			rawTags = ""
		}
	}
	tags, ok := parseTags(rawTags)
	if !ok {
		return op, "tags must be a comma-separated string or a list of strings"
	}
	op.Tags = tags
	switch {
	case hasPassword:
		s, ok := pw.(string)
		if !ok {
			return op, "password must be a string"
		}
		op.PasswordHash = broker.NewPasswordHash(s)
	case hasHash:
		s, ok := hash.(string)
		if !ok {
			return op, "password_hash must be a string"
		}
		op.PasswordHash = s
		if alg, ok := body["hashing_algorithm"].(string); ok {
			op.HashingAlgorithm = alg
		}
	}
	return op, ""
}

func (a *API) bulkDeleteUsers(q *request) {
	var body struct {
		Users []string `json:"users"`
	}
	if !readBody(q, &body) {
		return
	}
	for _, name := range body.Users {
		if _, ok := a.broker.User(name); !ok {
			continue
		}
		if !a.apply(q, broker.DeleteUser{Name: name}, 0) {
			return
		}
	}
	q.w.WriteHeader(http.StatusNoContent)
}

// parseTags reads tags as RabbitMQ takes them: a comma-separated string or
// a list of strings; absent or null is none.
func parseTags(v any) ([]string, bool) {
	var raw []string
	switch v := v.(type) {
	case nil:
		return nil, true
	case string:
		raw = strings.Split(v, ",")
	case []any:
		for _, t := range v {
			s, ok := t.(string)
			if !ok {
				return nil, false
			}
			raw = append(raw, s)
		}
	default:
		return nil, false
	}
	var tags []string
	for _, t := range raw {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	return tags, true
}

// ---- permissions ----

func permissionJSON(user, vh string, p broker.Permission) map[string]any {
	return map[string]any{"user": user, "vhost": vh, "configure": p.Configure, "write": p.Write, "read": p.Read}
}

// permissionsOf lists a user's permissions, by vhost name.
func permissionsOf(u broker.UserInfo) []map[string]any {
	out := []map[string]any{}
	vhs := make([]string, 0, len(u.Permissions))
	for vh := range u.Permissions {
		vhs = append(vhs, vh)
	}
	slices.Sort(vhs)
	for _, vh := range vhs {
		out = append(out, permissionJSON(u.Name, vh, u.Permissions[vh]))
	}
	return out
}

// routePermissions serves /api/permissions and /api/permissions/{vhost}/{user}.
func (a *API) routePermissions(q *request) {
	if !requireAdmin(q) {
		return
	}
	s := q.segs
	switch len(s) {
	case 1:
		get(q, func(q *request) {
			out := []map[string]any{}
			for _, u := range a.broker.Users() {
				out = append(out, permissionsOf(u)...)
			}
			replyList(q, out, false)
		})
	case 3:
		a.permission(q, s[1], s[2])
	default:
		notFound(q.w)
	}
}

func (a *API) permission(q *request, vh, user string) {
	u, userOK := a.broker.User(user)
	vhostOK := a.broker.VHost(vh) != nil
	p, has := u.Permissions[vh]
	switch q.r.Method {
	case http.MethodGet, http.MethodHead:
		if !userOK || !vhostOK || !has {
			notFound(q.w)
			return
		}
		q.reply(permissionJSON(user, vh, p))
	case http.MethodPut:
		if !userOK || !vhostOK {
			badRequest(q.w, "vhost_or_user_not_found")
			return
		}
		var body map[string]any
		if !readBody(q, &body) {
			return
		}
		var pats [3]string
		var missing []string
		for i, k := range []string{"configure", "write", "read"} {
			s, ok := body[k].(string)
			if !ok {
				missing = append(missing, "{key_missing,"+k+"}")
			}
			pats[i] = s
		}
		if len(missing) > 0 {
			badRequest(q.w, "["+strings.Join(missing, ",")+"]")
			return
		}
		a.apply(q, broker.SetPermissions{User: user, Vhost: vh, Configure: pats[0], Write: pats[1], Read: pats[2]}, createdOr(has))
	case http.MethodDelete:
		if !userOK || !vhostOK || !has {
			notFound(q.w)
			return
		}
		a.apply(q, broker.ClearPermissions{User: user, Vhost: vh}, http.StatusNoContent)
	default:
		methodNotAllowed(q.w)
	}
}
