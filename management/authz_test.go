package management_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRolesPerRoute checks who may do what by tag, with the statuses and
// reasons RabbitMQ 3.10.8 answers for the same users: each has
// permissions (configure ^own, write and read .*) on vhost "v1" only.
func TestRolesPerRoute(t *testing.T) {
	e := start(t)
	require.Equal(t, 201, e.do("PUT", "/api/vhosts/v1", nil, nil))
	require.Equal(t, 201, e.do("PUT", "/api/vhosts/v2", nil, nil))
	for _, u := range []struct{ name, tags string }{{"none", ""}, {"mgmt", "management"}, {"pol", "policymaker"}, {"mon", "monitoring"}} {
		require.Equal(t, 201, e.do("PUT", "/api/users/"+u.name, map[string]any{"password": "p", "tags": u.tags}, nil))
		require.Equal(t, 201, e.do("PUT", "/api/permissions/v1/"+u.name, map[string]any{"configure": "^own", "write": ".*", "read": ".*"}, nil))
	}
	require.Equal(t, 201, e.do("PUT", "/api/exchanges/v1/lx", map[string]any{"type": "topic"}, nil))
	require.Equal(t, 204, e.do("DELETE", "/api/permissions/v2/guest", nil, nil))
	policy := map[string]any{"pattern": "x", "definition": map[string]any{"max-length": 1}}
	publish := map[string]any{"routing_key": "x", "payload": "", "payload_encoding": "string", "properties": map[string]any{}}
	for _, tc := range []struct {
		user, method, path string
		body               any
		code               int
		reason             string
	}{
		{"none", "GET", "/api/overview", nil, 401, "Not management user"},
		{"mgmt", "GET", "/api/overview", nil, 200, ""},
		{"mgmt", "GET", "/api/nodes", nil, 401, "Not monitor user"},
		{"mon", "GET", "/api/nodes", nil, 200, ""},
		{"mgmt", "GET", "/api/users", nil, 401, "Not administrator user"},
		{"mgmt", "PUT", "/api/queues/v1/ownq", map[string]any{}, 201, ""},
		{"mgmt", "PUT", "/api/queues/v1/other", map[string]any{}, 401, "Access refused."},
		{"mgmt", "PUT", "/api/queues/v2/x", map[string]any{}, 401, "User not authorised to access virtual host"},
		{"mgmt", "GET", "/api/queues/v2", nil, 401, "User not authorised to access virtual host"},
		{"mon", "GET", "/api/queues/v2", nil, 401, "User not authorised to access virtual host"},
		{"mgmt", "PUT", "/api/exchanges/v1/other", map[string]any{"type": "direct"}, 401, "Access refused."},
		{"mgmt", "POST", "/api/exchanges/v1/amq.direct/publish", publish, 200, ""},
		{"mgmt", "POST", "/api/bindings/v1/e/lx/q/ownq", map[string]any{"routing_key": "k"}, 201, ""},
		{"mgmt", "DELETE", "/api/queues/v1/ownq/contents", nil, 204, ""},
		{"mgmt", "DELETE", "/api/queues/v1/ownq", nil, 204, ""},
		{"mgmt", "PUT", "/api/policies/v1/p", policy, 401, "User not authorised to access object"},
		{"pol", "PUT", "/api/policies/v1/p", policy, 201, ""},
		{"pol", "DELETE", "/api/policies/v1/p", nil, 204, ""},
		{"pol", "GET", "/api/policies/v2", nil, 401, "User not authorised to access virtual host"},
		{"mgmt", "GET", "/api/policies", nil, 200, ""},
		{"pol", "GET", "/api/global-parameters", nil, 200, ""},
		{"mgmt", "GET", "/api/global-parameters", nil, 401, "User not authorised to access object"},
		{"mgmt", "GET", "/api/parameters/shovel", nil, 401, "User not authorised to access object"},
		{"mon", "GET", "/api/definitions", nil, 401, "Not administrator user"},
		{"mgmt", "GET", "/api/vhosts/v1", nil, 401, "Not administrator user"},
		{"mgmt", "GET", "/api/vhosts/v1/connections", nil, 200, ""},
		{"mgmt", "GET", "/api/cluster-name", nil, 200, ""},
		{"mgmt", "PUT", "/api/cluster-name", map[string]any{"name": "x"}, 401, "Not administrator user"},
		{"mgmt", "GET", "/api/topic-permissions", nil, 401, "Not administrator user"},
		{"mgmt", "GET", "/api/operator-policies", nil, 200, ""},
		// An administrator reaches every vhost, but acts only where its
		// own permissions allow.
		{"guest", "GET", "/api/queues/v2", nil, 200, ""},
		{"guest", "PUT", "/api/queues/v2/q", map[string]any{}, 401, "Access refused."},
	} {
		t.Run(tc.user+" "+tc.method+" "+tc.path, func(t *testing.T) {
			pw := "p"
			if tc.user == "guest" {
				pw = "guest"
			}
			var out any
			require.Equal(t, tc.code, e.doAs(tc.user, pw, tc.method, tc.path, tc.body, &out), "%v", out)
			if tc.reason != "" {
				require.Equal(t, map[string]any{"error": "not_authorised", "reason": tc.reason}, out)
			}
		})
	}
}
