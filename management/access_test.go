package management_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
)

// login opens an AMQP connection as user to vhost on e's broker.
func (e *env) login(user, password, vh string) (*amqp091.Connection, error) {
	u, err := url.Parse(e.amqpURL)
	require.NoError(e.t, err)
	conn, err := amqp091.Dial("amqp://" + url.UserPassword(user, password).String() + "@" + u.Host + "/" + url.PathEscape(vh))
	if err == nil {
		e.t.Cleanup(func() { _ = conn.Close() })
	}
	return conn, err
}

// step is one API call and the status it must answer.
type step struct {
	name   string
	user   string // "" is guest
	method string
	path   string
	body   any
	status int
	reason string // for errors: the reason the body must carry
}

func (e *env) run(t *testing.T, steps []step) {
	t.Helper()
	for _, s := range steps {
		user, pw := "guest", "guest"
		if s.user != "" {
			user, pw = s.user, map[string]string{"watcher": "w"}[s.user]
		}
		var er map[string]any
		code := e.doAs(user, pw, s.method, s.path, s.body, &er)
		require.Equal(t, s.status, code, "%s: %s %s: %v", s.name, s.method, s.path, er)
		if s.reason != "" {
			assert.Equal(t, s.reason, er["reason"], s.name)
		}
	}
}

// TestUsersAPI: PUT/GET/DELETE /api/users with RabbitMQ 3.10's statuses and
// errors; a clear-text password is stored only as a hash, tags come as a
// string or a list, and the user can log in at once.
func TestUsersAPI(t *testing.T) {
	e := start(t)
	e.run(t, []step{
		{"create", "", "PUT", "/api/users/alice", map[string]any{"password": "pw1", "tags": "management, monitoring"}, 201, ""},
		{"update", "", "PUT", "/api/users/alice", map[string]any{"password": "pw2", "tags": []string{"administrator"}}, 204, ""},
		{"no tags", "", "PUT", "/api/users/bob", map[string]any{"password": "x"}, 400, "tags_not_present"},
		{"both passwords", "", "PUT", "/api/users/bob", map[string]any{"password": "x", "password_hash": "y", "tags": ""}, 400, "both_password_and_password_hash_are_provided"},
		{"bad hash", "", "PUT", "/api/users/bob", map[string]any{"password_hash": "not base64!", "tags": ""}, 400, ""},
		{"unknown hashing", "", "PUT", "/api/users/bob", map[string]any{"password_hash": broker.HashPassword([4]byte{}, "x"), "hashing_algorithm": "rabbit_password_hashing_bcrypt", "tags": ""}, 400, ""},
		{"hash", "", "PUT", "/api/users/carol", map[string]any{"password_hash": broker.HashPassword([4]byte{9, 9, 9, 9}, "c"), "tags": ""}, 201, ""},
		{"not admin", "watcher", "PUT", "/api/users/mallory", map[string]any{"password": "m", "tags": "administrator"}, 401, "Not administrator user"},
		{"not admin lists", "watcher", "GET", "/api/users", nil, 401, ""},
		{"missing", "", "GET", "/api/users/nobody", nil, 404, "Not Found"},
		{"delete missing", "", "DELETE", "/api/users/nobody", nil, 404, "Not Found"},
	})

	var u map[string]any
	require.Equal(t, 200, e.do("GET", "/api/users/alice", nil, &u))
	assert.Equal(t, []any{"administrator"}, u["tags"])
	assert.Equal(t, "rabbit_password_hashing_sha256", u["hashing_algorithm"])
	assert.NotContains(t, u["password_hash"], "pw2")
	assert.Len(t, u["password_hash"], 48, "base64 of a 4-byte salt and a SHA-256 digest")

	// Passwords work at once, over HTTP and AMQP; the old one does not.
	assert.Equal(t, 200, e.doAs("alice", "pw2", "GET", "/api/whoami", nil, nil))
	assert.Equal(t, 401, e.doAs("alice", "pw1", "GET", "/api/whoami", nil, nil))
	_, err := e.login("carol", "c", "/")
	require.ErrorIs(t, err, amqp091.ErrVhost, "carol logs in but has no permissions on /")

	// Neither password nor hash: the password is cleared, the tags change.
	require.Equal(t, 204, e.do("PUT", "/api/users/alice", map[string]any{"tags": "monitoring"}, nil))
	assert.Equal(t, 401, e.doAs("alice", "pw2", "GET", "/api/whoami", nil, nil))
	require.Equal(t, 200, e.do("GET", "/api/users/alice", nil, &u))
	assert.Equal(t, "", u["password_hash"])
	assert.Equal(t, []any{"monitoring"}, u["tags"])

	var without []map[string]any
	require.Equal(t, 200, e.do("GET", "/api/users/without-permissions", nil, &without))
	var names []string
	for _, w := range without {
		names = append(names, w["name"].(string))
	}
	assert.Equal(t, []string{"alice", "carol"}, names)

	require.Equal(t, 204, e.do("POST", "/api/users/bulk-delete", map[string]any{"users": []string{"carol", "nobody"}}, nil))
	require.Equal(t, 204, e.do("DELETE", "/api/users/alice", nil, nil))
	var all []map[string]any
	require.Equal(t, 200, e.do("GET", "/api/users", nil, &all))
	require.Len(t, all, 2, "guest and watcher are left: %v", all)
}

// TestVhostsAndPermissionsAPI: a vhost made over HTTP gives its creator
// full permissions, as RabbitMQ does; permissions are set, shown, refused
// for unknown users or vhosts and bad patterns, and cleared; deleting the
// vhost takes its queues and the permissions on it.
func TestVhostsAndPermissionsAPI(t *testing.T) {
	e := start(t)
	e.run(t, []step{
		{"create vhost", "", "PUT", "/api/vhosts/dev", map[string]any{"description": "for dev", "tags": "a,b"}, 201, ""},
		{"existing vhost", "", "PUT", "/api/vhosts/dev", map[string]any{"description": "ignored"}, 204, ""},
		{"not admin", "watcher", "PUT", "/api/vhosts/nope", nil, 401, ""},
		{"user", "", "PUT", "/api/users/dave", map[string]any{"password": "d", "tags": ""}, 201, ""},
		{"no such user", "", "PUT", "/api/permissions/dev/nobody", map[string]any{"configure": ".*", "write": ".*", "read": ".*"}, 400, "vhost_or_user_not_found"},
		{"no such vhost", "", "PUT", "/api/permissions/nope/dave", map[string]any{"configure": ".*", "write": ".*", "read": ".*"}, 400, "vhost_or_user_not_found"},
		{"missing key", "", "PUT", "/api/permissions/dev/dave", map[string]any{"configure": ".*", "write": ".*"}, 400, "[{key_missing,read}]"},
		{"bad pattern", "", "PUT", "/api/permissions/dev/dave", map[string]any{"configure": "(", "write": "", "read": ""}, 400, ""},
		{"set", "", "PUT", "/api/permissions/dev/dave", map[string]any{"configure": "^dave\\.", "write": ".*", "read": ".*"}, 201, ""},
		{"reset", "", "PUT", "/api/permissions/dev/dave", map[string]any{"configure": "^dave\\.", "write": ".*", "read": ".*"}, 204, ""},
		{"not admin lists", "watcher", "GET", "/api/permissions", nil, 401, ""},
		{"none", "", "GET", "/api/permissions/%2F/dave", nil, 404, "Not Found"},
		{"clear none", "", "DELETE", "/api/permissions/%2F/dave", nil, 404, ""},
		{"missing vhost", "", "GET", "/api/vhosts/nope", nil, 404, "Not Found"},
		{"delete missing vhost", "", "DELETE", "/api/vhosts/nope", nil, 404, ""},
	})

	var v map[string]any
	require.Equal(t, 200, e.do("GET", "/api/vhosts/dev", nil, &v))
	assert.Equal(t, "for dev", v["description"])
	assert.Equal(t, []any{"a", "b"}, v["tags"])

	var p map[string]any
	require.Equal(t, 200, e.do("GET", "/api/permissions/dev/dave", nil, &p))
	assert.Equal(t, map[string]any{"user": "dave", "vhost": "dev", "configure": `^dave\.`, "write": ".*", "read": ".*"}, p)
	var list []map[string]any
	require.Equal(t, 200, e.do("GET", "/api/vhosts/dev/permissions", nil, &list))
	require.Len(t, list, 2, "dave, and guest who made the vhost")
	assert.Equal(t, map[string]any{"user": "guest", "vhost": "dev", "configure": ".*", "write": ".*", "read": ".*"}, list[1])
	require.Equal(t, 200, e.do("GET", "/api/users/dave/permissions", nil, &list))
	require.Len(t, list, 1)

	// dave logs in to dev and may configure only dave.* there.
	conn, err := e.login("dave", "d", "dev")
	require.NoError(t, err)
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare("dave.q", true, false, false, false, nil)
	require.NoError(t, err)
	_, err = ch.QueueDeclare("other.q", true, false, false, false, nil)
	var ae *amqp091.Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, "ACCESS_REFUSED - access to queue 'other.q' in vhost 'dev' refused for user 'dave'", ae.Reason)
	var conns []map[string]any
	require.Equal(t, 200, e.do("GET", "/api/vhosts/dev/connections", nil, &conns))
	require.Len(t, conns, 1)

	require.Equal(t, 204, e.do("DELETE", "/api/permissions/dev/dave", nil, nil))
	require.Equal(t, 404, e.do("GET", "/api/permissions/dev/dave", nil, nil))

	closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
	require.Equal(t, 204, e.do("DELETE", "/api/vhosts/dev", nil, nil))
	requireClosed(t, closed, "CONNECTION_FORCED - vhost 'dev' is deleted")
	require.Equal(t, 404, e.do("GET", "/api/vhosts/dev", nil, nil))
	require.Equal(t, 200, e.do("GET", "/api/permissions", nil, &list))
	for _, p := range list {
		assert.NotEqual(t, "dev", p["vhost"], "permissions on a deleted vhost go with it")
	}

	// Made again, the vhost is empty, and guest has full access again.
	require.Equal(t, 201, e.do("PUT", "/api/vhosts/dev", nil, nil))
	var qs []map[string]any
	require.Equal(t, 200, e.do("GET", "/api/queues/dev", nil, &qs))
	assert.Empty(t, qs)
	require.Equal(t, 200, e.do("GET", "/api/permissions/dev/guest", nil, nil))
}

// TestDeleteUserClosesConnections: as RabbitMQ, deleting a user closes its
// connections with 320 and its text; other users' stay open.
func TestDeleteUserClosesConnections(t *testing.T) {
	e := start(t)
	require.Equal(t, 201, e.do("PUT", "/api/users/erin", map[string]any{"password": "e", "tags": ""}, nil))
	require.Equal(t, 201, e.do("PUT", "/api/permissions/%2F/erin", map[string]any{"configure": ".*", "write": ".*", "read": ".*"}, nil))
	conn, err := e.login("erin", "e", "/")
	require.NoError(t, err)
	guest, _ := e.channel()
	closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
	require.Equal(t, 204, e.do("DELETE", "/api/users/erin", nil, nil))
	requireClosed(t, closed, "CONNECTION_FORCED - user 'erin' is deleted")
	assert.False(t, guest.IsClosed())
	_, err = e.login("erin", "e", "/")
	require.Error(t, err)
}

func requireClosed(t *testing.T, closed chan *amqp091.Error, reason string) {
	t.Helper()
	ae := <-closed
	require.NotNil(t, ae)
	assert.Equal(t, amqp091.ConnectionForced, ae.Code)
	assert.Equal(t, reason, ae.Reason)
}

// TestDefinitionsUsersVhostsPermissions: users, vhosts and permissions are
// exported as RabbitMQ 3.10 writes them and imported through the server's
// ops: the imported user logs in with its password, and the importing user
// gets full permissions on the vhost the import made.
func TestDefinitionsUsersVhostsPermissions(t *testing.T) {
	e := start(t)
	require.Equal(t, 201, e.do("PUT", "/api/vhosts/shop", map[string]any{"description": "the shop"}, nil))
	require.Equal(t, 201, e.do("PUT", "/api/users/frank", map[string]any{"password": "f", "tags": "management"}, nil))
	require.Equal(t, 201, e.do("PUT", "/api/permissions/shop/frank", map[string]any{"configure": "", "write": "^orders$", "read": ".*"}, nil))
	var defs map[string]any
	require.Equal(t, 200, e.do("GET", "/api/definitions", nil, &defs))
	assert.Contains(t, defs["vhosts"], map[string]any{"name": "shop", "limits": []any{}, "metadata": map[string]any{"description": "the shop", "tags": []any{}}})
	assert.Contains(t, defs["permissions"], map[string]any{"user": "frank", "vhost": "shop", "configure": "", "write": "^orders$", "read": ".*"})

	f := start(t)
	require.Equal(t, 204, f.do("POST", "/api/definitions", defs, nil))
	var again map[string]any
	require.Equal(t, 200, f.do("GET", "/api/definitions", nil, &again))
	for _, k := range []string{"users", "vhosts", "permissions"} {
		assert.ElementsMatch(t, defs[k], again[k], k)
	}
	_, err := f.login("frank", "f", "shop")
	require.NoError(t, err)

	// A hand-written file: a clear-text password, tags as a string, and a
	// vhost the importing user (guest) is given full access to.
	hand := map[string]any{
		"users":       []any{map[string]any{"name": "gina", "password": "g", "tags": "monitoring"}},
		"vhosts":      []any{map[string]any{"name": "lab"}},
		"permissions": []any{map[string]any{"user": "gina", "vhost": "lab", "configure": ".*", "write": ".*", "read": ".*"}},
	}
	require.Equal(t, 204, f.do("POST", "/api/definitions", hand, nil))
	_, err = f.login("gina", "g", "lab")
	require.NoError(t, err)
	require.Equal(t, 200, f.do("GET", "/api/permissions/lab/guest", nil, nil))
	var gina map[string]any
	require.Equal(t, 200, f.do("GET", "/api/users/gina", nil, &gina))
	assert.Len(t, gina["password_hash"], 48, "the clear-text password is stored hashed")

	// Importing into one vhost ignores users, vhosts and permissions, as RabbitMQ does.
	hand["users"] = []any{map[string]any{"name": "ignored", "password": "i", "tags": ""}}
	require.Equal(t, 204, f.do("POST", "/api/definitions/lab", hand, nil))
	require.Equal(t, 404, f.do("GET", "/api/users/ignored", nil, nil))
	require.Equal(t, http.StatusOK, f.do("GET", "/api/vhosts/lab", nil, nil))
}

// TestAccessAPIBadInput: malformed bodies, wrong types, names that cannot be
// stored and unknown users or vhosts get RabbitMQ's 400, 404 or 405 with a
// JSON error body, never a 500; names with odd characters work.
func TestAccessAPIBadInput(t *testing.T) {
	e := start(t)
	perms := map[string]any{"configure": ".*", "write": ".*", "read": ".*"}
	e.run(t, []step{
		{"body not an object", "", "PUT", "/api/users/x", "not an object", 400, ""},
		{"password not a string", "", "PUT", "/api/users/x", map[string]any{"password": 5, "tags": ""}, 400, "password must be a string"},
		{"hash not a string", "", "PUT", "/api/users/x", map[string]any{"password_hash": true, "tags": ""}, 400, "password_hash must be a string"},
		{"tags not a string", "", "PUT", "/api/users/x", map[string]any{"password": "p", "tags": 5}, 400, ""},
		{"tag not a string", "", "PUT", "/api/users/x", map[string]any{"password": "p", "tags": []any{"a", 1}}, 400, ""},
		{"NUL in a user name", "", "PUT", "/api/users/a%00b", map[string]any{"password": "p", "tags": ""}, 400, "user name must not contain NUL"},
		{"non-UTF-8 user name", "", "PUT", "/api/users/%FF", map[string]any{"password": "p", "tags": ""}, 400, "user name must be UTF-8"},
		{"non-UTF-8 vhost name", "", "PUT", "/api/vhosts/%FF", nil, 400, "vhost name must be UTF-8"},
		{"vhost tags not a string", "", "PUT", "/api/vhosts/v", map[string]any{"tags": 5}, 400, ""},
		{"permissions body not an object", "", "PUT", "/api/permissions/%2F/guest", []string{"x"}, 400, ""},
		{"pattern not a string", "", "PUT", "/api/permissions/%2F/guest", map[string]any{"configure": 1, "write": ".*", "read": ".*"}, 400, "[{key_missing,configure}]"},
		{"permissions of an unknown user", "", "GET", "/api/users/nobody/permissions", nil, 404, "Not Found"},
		{"permissions on an unknown vhost", "", "GET", "/api/vhosts/nope/permissions", nil, 404, "Not Found"},
		{"unknown user on a vhost", "", "DELETE", "/api/permissions/%2F/nobody", nil, 404, "Not Found"},
		{"permissions without a user", "", "GET", "/api/permissions/%2F", nil, 404, ""},
		{"bulk-delete users not a list", "", "POST", "/api/users/bulk-delete", map[string]any{"users": "x"}, 400, ""},
		{"bulk-delete by GET", "", "GET", "/api/users/bulk-delete", nil, 405, ""},
		{"PATCH a user", "", "PATCH", "/api/users/guest", nil, 405, ""},
		{"odd name", "", "PUT", "/api/users/odd%20name%2Fwith%23%25", map[string]any{"password": "p", "tags": ""}, 201, ""},
		{"odd vhost", "", "PUT", "/api/vhosts/a%2Fb%20c", nil, 201, ""},
		{"odd permissions", "", "PUT", "/api/permissions/a%2Fb%20c/odd%20name%2Fwith%23%25", perms, 201, ""},
	})
	var u map[string]any
	require.Equal(t, 200, e.do("GET", "/api/users/odd%20name%2Fwith%23%25", nil, &u))
	assert.Equal(t, "odd name/with#%", u["name"])
	_, err := e.login("odd name/with#%", "p", "a/b c")
	require.NoError(t, err)

	// A body that is not JSON at all.
	req, err := http.NewRequest("PUT", e.http.URL+"/api/users/x", strings.NewReader(`{"password": "p",`))
	require.NoError(t, err)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var er map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&er))
	assert.Equal(t, 400, resp.StatusCode)
	assert.Equal(t, "bad_request", er["error"])
	require.Equal(t, 404, e.do("GET", "/api/users/x", nil, nil))
}
