package management

import (
	"net/http"

	"github.com/warrenmq/warren/broker"
)

// Roles per route, as RabbitMQ 3.10's management plugin grants them by user
// tag (rabbit_mgmt_util's is_authorized_*): management users read and act
// on the vhosts they have permissions on, policymakers also set policies
// and runtime parameters there, monitoring users read everything, and
// administrators do anything. A refusal is 401 with RabbitMQ's reason (and
// no WWW-Authenticate: the login was fine). Operations on a vhost's objects
// also need the caller's own permissions on them, as RabbitMQ runs them on
// a channel of the caller's (see permitted).

// role is what a route needs beyond a management tag.
type role uint8

const (
	anyRole role = iota
	monitorRole
	policyRole
	adminRole
)

// refusal reasons, as RabbitMQ writes them.
const (
	notAdmin        = "Not administrator user"
	notMonitor      = "Not monitor user"
	notPolicymaker  = "User not authorised to access object"
	notVhostAllowed = "User not authorised to access virtual host"
	accessRefused   = "Access refused."
)

func notAuthorised(w http.ResponseWriter, reason string) {
	writeError(w, http.StatusUnauthorized, "not_authorised", reason)
}

// routeRole is what the request's route needs, and the index of the path
// segment naming a vhost the caller must have access to (0: none).
func routeRole(q *request) (role, int) {
	s, n := q.segs, len(q.segs)
	read := q.r.Method == http.MethodGet || q.r.Method == http.MethodHead
	switch s[0] {
	case "nodes", "shovels":
		if s[0] == "shovels" && !read {
			return policyRole, 2
		}
		return monitorRole, 0
	case "users", "permissions", "topic-permissions", "definitions", "feature-flags", "user-limits":
		return adminRole, 0
	case "cluster-name", "operator-policies", "vhost-limits":
		if read {
			return anyRole, 0
		}
		return adminRole, 0
	case "vhosts":
		switch {
		case n == 3 && (s[2] == "connections" || s[2] == "channels"):
			return anyRole, 1
		case n >= 2:
			return adminRole, 0
		}
		return anyRole, 0
	case "global-parameters":
		return policyRole, 0
	case "parameters":
		return policyRole, 2
	case "policies":
		if read && n <= 2 {
			return anyRole, 1
		}
		return policyRole, 1
	case "exchanges", "queues", "bindings", "consumers", "aliveness-test":
		return anyRole, 1
	}
	return anyRole, 0
}

// authorize answers 401 unless the caller's tags (and, for a route in a
// vhost, its access to the vhost) allow the route.
func (a *API) authorize(q *request) bool {
	need, vhSeg := routeRole(q)
	u := q.u
	switch {
	case need == adminRole && !u.admin():
		notAuthorised(q.w, notAdmin)
		return false
	case need == monitorRole && !u.has("administrator", "monitoring"):
		notAuthorised(q.w, notMonitor)
		return false
	case need == policyRole && !u.has("administrator", "policymaker"):
		notAuthorised(q.w, notPolicymaker)
		return false
	}
	// An administrator may reach any vhost's resources; a vhost that does
	// not exist is left to the route's 404.
	if vhSeg > 0 && len(q.segs) > vhSeg && !u.admin() && a.broker.VHost(q.segs[vhSeg]) != nil &&
		!a.broker.HasVHostAccess(u.name, q.segs[vhSeg]) {
		notAuthorised(q.w, notVhostAllowed)
		return false
	}
	return true
}

// permitted checks the caller's own permission patterns for an operation
// on a vhost's object, administrators included, as RabbitMQ does; it
// answers 401 "Access refused." when they do not allow it.
func (a *API) permitted(q *request, vh string, what broker.Access, name string) bool {
	if a.broker.Permitted(q.u.name, vh, what.String(), name) {
		return true
	}
	notAuthorised(q.w, accessRefused)
	return false
}
