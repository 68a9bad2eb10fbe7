package conformance

// Vhost and user limits set at run time over the management API and
// enforced over AMQP. The texts are RabbitMQ 3.10.8's, checked on a local
// node: a vhost's max-connections and a user's max-connections refuse
// connection.open with 530, a vhost's max-queues refuses queue.declare with
// 406, and a user's max-channels closes the connection with 530 at
// channel.open. With WARREN_TEST_AMQP_URL the same test runs against that
// node, setting the limits through its management API
// (WARREN_TEST_HTTP_URL, by default port 15672 of the same host).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// limitsTarget is a broker with its management API, in process or not.
type limitsTarget struct {
	t    *testing.T
	addr string // AMQP host:port
	api  string // management base URL
	b    *adminBroker
}

func newLimitsTarget(t *testing.T) *limitsTarget {
	if u := os.Getenv(externalURLEnv); u != "" {
		uri, err := amqp091.ParseURI(u)
		require.NoError(t, err)
		api := os.Getenv("WARREN_TEST_HTTP_URL")
		if api == "" {
			api = "http://" + net.JoinHostPort(uri.Host, "15672")
		}
		return &limitsTarget{t: t, addr: net.JoinHostPort(uri.Host, fmt.Sprint(uri.Port)), api: api}
	}
	b := newAdminBroker(t)
	return &limitsTarget{t: t, addr: b.srv.Addr, api: b.http.URL, b: b}
}

// call sends an API request as guest and returns the status and body.
func (l *limitsTarget) call(method, path string, body any) (int, string) {
	l.t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(l.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, l.api+path, rd)
	require.NoError(l.t, err)
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(l.t, err)
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(got)
}

func (l *limitsTarget) must(status int, method, path string, body any) string {
	l.t.Helper()
	got, text := l.call(method, path, body)
	require.Equal(l.t, status, got, "%s %s: %s", method, path, text)
	return text
}

func (l *limitsTarget) dial(user, vh string) (*amqp091.Connection, error) {
	conn, err := amqp091.DialConfig("amqp://"+url.UserPassword(user, "pw").String()+"@"+l.addr+"/"+url.PathEscape(vh),
		amqp091.Config{Dial: amqp091.DefaultDial(timeout)})
	if err == nil {
		l.t.Cleanup(func() { _ = conn.Close() })
	}
	return conn, err
}

// openRefused opens a raw connection as user on vh and returns the code
// and text of the connection.close the broker answers connection.open with
// (amqp091-go reports any refused open as ErrVhost, without the text).
func (l *limitsTarget) openRefused(user, vh string) (uint16, string) {
	l.t.Helper()
	r := dialRaw(l.t, &testBroker{Addr: l.addr})
	r.login(user, "pw", func(tn *tune) { tn.Heartbeat = 0 })
	r.openVhost(vh)
	return r.expectConnectionClose()
}

func TestRuntimeVhostAndUserLimits(t *testing.T) {
	l := newLimitsTarget(t)
	vh := fmt.Sprintf("limits-%d", time.Now().UnixNano())
	user := vh + "-user"
	pv, pu := "/api/vhosts/"+url.PathEscape(vh), "/api/users/"+url.PathEscape(user)
	l.must(http.StatusCreated, "PUT", pv, nil)
	t.Cleanup(func() { l.call("DELETE", pv, nil) })
	l.must(http.StatusCreated, "PUT", pu, map[string]any{"password": "pw", "tags": ""})
	t.Cleanup(func() { l.call("DELETE", pu, nil) })
	l.must(http.StatusCreated, "PUT", "/api/permissions/"+url.PathEscape(vh)+"/"+url.PathEscape(user),
		map[string]any{"configure": ".*", "write": ".*", "read": ".*"})
	vl := "/api/vhost-limits/" + url.PathEscape(vh)
	ul := "/api/user-limits/" + url.PathEscape(user)

	// Reading and refusing, as RabbitMQ's API does.
	require.JSONEq(t, `[]`, l.must(http.StatusOK, "GET", vl, nil))
	require.JSONEq(t, `[]`, l.must(http.StatusOK, "GET", ul, nil))
	for _, tc := range []struct {
		name, path string
		body       any
		status     int
		reason     string
	}{
		{"no value", vl + "/max-queues", map[string]any{}, 400, "[{key_missing,value}]"},
		{"a string", vl + "/max-queues", map[string]any{"value": "x"}, 400, "Validation failed\n\nmax-queues should be a number, actually was <<\"x\">>\n"},
		{"a fraction", vl + "/max-queues", map[string]any{"value": 1.5}, 400, "Validation failed\n\nmax-queues should be a number, actually was 1.5\n"},
		{"unknown vhost limit", vl + "/foo", map[string]any{"value": 1}, 400, "Validation failed\n\nUnrecognised terms [{<<\"foo\">>,1}] in limits\n"},
		{"no such vhost", "/api/vhost-limits/no-such-vhost-x/max-queues", map[string]any{"value": 1}, 404, "vhost_not_found"},
		{"unknown user limit", ul + "/max-queues", map[string]any{"value": 1}, 400, "Unrecognised terms [{<<\"max-queues\">>,1}] in user-limits"},
		{"user limit a string", ul + "/max-channels", map[string]any{"value": "7"}, 400, "max-channels should be a number, actually was <<\"7\">>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := l.must(tc.status, "PUT", tc.path, tc.body)
			var e struct{ Reason string }
			require.NoError(t, json.Unmarshal([]byte(text), &e))
			require.Equal(t, tc.reason, e.Reason)
		})
	}

	// max-queues: the next declaration is refused, the vhost's queues stay.
	l.must(http.StatusNoContent, "PUT", vl+"/max-queues", map[string]any{"value": 1})
	conn, err := l.dial(user, vh)
	require.NoError(t, err)
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare("q1", false, false, false, false, nil)
	require.NoError(t, err)
	_, err = ch.QueueDeclare("q1", false, false, false, false, nil)
	require.NoError(t, err, "redeclaring an existing queue is not a new one")
	_, err = ch.QueueDeclare("q2", false, false, false, false, nil)
	requireAMQPError(t, err, amqp091.PreconditionFailed,
		fmt.Sprintf("PRECONDITION_FAILED - cannot declare queue 'q2': queue limit in vhost '%s' (1) is reached", vh))
	l.must(http.StatusNoContent, "DELETE", vl+"/max-queues", nil)
	ch, err = conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare("q2", false, false, false, false, nil)
	require.NoError(t, err, "cleared: the default (unlimited) applies again")
	require.NoError(t, conn.Close())

	// max-connections of the vhost; 0 allows none.
	l.must(http.StatusNoContent, "PUT", vl+"/max-connections", map[string]any{"value": 1})
	require.JSONEq(t, fmt.Sprintf(`[{"vhost":%q,"value":{"max-connections":1}}]`, vh), l.must(http.StatusOK, "GET", vl, nil))
	first, err := l.dial(user, vh)
	require.NoError(t, err)
	code, text := l.openRefused(user, vh)
	require.Equal(t, uint16(amqp091.NotAllowed), code)
	require.Equal(t, fmt.Sprintf("NOT_ALLOWED - access to vhost '%s' refused for user '%s': connection limit (1) is reached", vh, user), text)
	requireConnUsable(t, first)
	require.NoError(t, first.Close())
	l.must(http.StatusNoContent, "PUT", vl+"/max-connections", map[string]any{"value": 0})
	code, text = l.openRefused(user, vh)
	require.Equal(t, uint16(amqp091.NotAllowed), code)
	require.Equal(t, fmt.Sprintf("NOT_ALLOWED - access to vhost '%s' refused for user '%s': connection limit (0) is reached", vh, user), text)
	l.must(http.StatusNoContent, "DELETE", vl+"/max-connections", nil)
	require.JSONEq(t, `[]`, l.must(http.StatusOK, "GET", vl, nil))

	// A user's max-connections, over all vhosts.
	l.must(http.StatusNoContent, "PUT", ul+"/max-connections", map[string]any{"value": 1})
	first, err = l.dial(user, vh)
	require.NoError(t, err)
	require.Eventually(t, func() bool { // RabbitMQ counts connections asynchronously
		code, text = l.openRefused(user, vh)
		return code == amqp091.NotAllowed
	}, timeout, 50*time.Millisecond)
	require.Equal(t, fmt.Sprintf("NOT_ALLOWED - connection refused for user '%s': user connection limit (1) is reached", user), text)
	require.NoError(t, first.Close())
	l.must(http.StatusNoContent, "DELETE", ul+"/max-connections", nil)

	// A user's max-channels, over all its connections.
	l.must(http.StatusNoContent, "PUT", ul+"/max-channels", map[string]any{"value": 1})
	require.JSONEq(t, fmt.Sprintf(`[{"user":%q,"value":{"max-channels":1}}]`, user), l.must(http.StatusOK, "GET", ul, nil))
	conn, err = l.dial(user, vh)
	require.NoError(t, err)
	_, err = conn.Channel()
	require.NoError(t, err)
	_, err = conn.Channel()
	requireAMQPError(t, err, amqp091.NotAllowed,
		fmt.Sprintf("NOT_ALLOWED - number of channels opened for user '%s' has reached the maximum allowed user limit of (1)", user))
	// The closed connection gave its channel back.
	require.Eventually(t, func() bool {
		c, err := l.dial(user, vh)
		if err != nil {
			return false
		}
		_, err = c.Channel()
		_ = c.Close()
		return err == nil
	}, timeout, 50*time.Millisecond)
	l.must(http.StatusNoContent, "DELETE", ul+"/max-channels", nil)
	require.JSONEq(t, `[]`, l.must(http.StatusOK, "GET", ul, nil))
}

// TestRuntimeLimitsSurviveRestartAndDefinitions: limits set over the API
// are stored (enforced again after a restart), and travel in definitions as
// RabbitMQ 3.10 writes them: a user's under its "limits", a vhost's as a
// runtime parameter of the vhost-limits component.
func TestRuntimeLimitsSurviveRestartAndDefinitions(t *testing.T) {
	b := newAdminBroker(t)
	b.addTenant("lim-v", "lim-u", "pw", ".*")
	l := &limitsTarget{t: t, addr: b.srv.Addr, api: b.http.URL, b: b}
	l.must(http.StatusNoContent, "PUT", "/api/vhost-limits/lim-v/max-queues", map[string]any{"value": 0})
	l.must(http.StatusNoContent, "PUT", "/api/user-limits/lim-u/max-channels", map[string]any{"value": 2})
	// Changing the vhost and the user keeps their limits.
	l.must(http.StatusNoContent, "PUT", "/api/vhosts/lim-v", map[string]any{"description": "d"})
	l.must(http.StatusNoContent, "PUT", "/api/users/lim-u", map[string]any{"password": "pw", "tags": "management"})

	b.restart()
	l.api, l.addr = b.http.URL, b.srv.Addr

	conn, err := l.dial("lim-u", "lim-v")
	require.NoError(t, err)
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare("q", false, false, false, false, nil)
	requireAMQPError(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - cannot declare queue 'q': queue limit in vhost 'lim-v' (0) is reached")
	// The channel the 406 closed no longer counts.
	_, err = conn.Channel()
	require.NoError(t, err)
	_, err = conn.Channel()
	require.NoError(t, err)
	_, err = conn.Channel()
	requireAMQPError(t, err, amqp091.NotAllowed, "NOT_ALLOWED - number of channels opened for user 'lim-u' has reached the maximum allowed user limit of (2)")
	require.JSONEq(t, `[{"vhost":"lim-v","value":{"max-queues":0}}]`, l.must(http.StatusOK, "GET", "/api/vhost-limits", nil))

	var defs struct {
		Users []struct {
			Name   string
			Limits map[string]any
		}
		Parameters []map[string]any
	}
	require.NoError(t, json.Unmarshal([]byte(l.must(http.StatusOK, "GET", "/api/definitions", nil)), &defs))
	limits := map[string]map[string]any{}
	for _, u := range defs.Users {
		limits[u.Name] = u.Limits
	}
	require.Equal(t, map[string]map[string]any{"guest": {}, "lim-u": {"max-channels": float64(2)}}, limits)
	require.Contains(t, defs.Parameters, map[string]any{"vhost": "lim-v", "component": "vhost-limits", "name": "limits",
		"value": map[string]any{"max-queues": float64(0)}})
	var user map[string]any
	require.NoError(t, json.Unmarshal([]byte(l.must(http.StatusOK, "GET", "/api/users/lim-u", nil)), &user))
	require.Equal(t, map[string]any{"max-channels": float64(2)}, user["limits"])

	// Imported into a fresh broker, the limits are set there.
	exported := l.must(http.StatusOK, "GET", "/api/definitions", nil)
	fresh := newAdminBroker(t)
	f := &limitsTarget{t: t, addr: fresh.srv.Addr, api: fresh.http.URL, b: fresh}
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(exported), &raw))
	f.must(http.StatusNoContent, "POST", "/api/definitions", raw)
	require.JSONEq(t, `[{"vhost":"lim-v","value":{"max-queues":0}}]`, f.must(http.StatusOK, "GET", "/api/vhost-limits", nil))
	require.JSONEq(t, `[{"user":"lim-u","value":{"max-channels":2}}]`, f.must(http.StatusOK, "GET", "/api/user-limits", nil))
}
