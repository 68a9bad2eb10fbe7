package management_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/amqp/amqptest"
	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/management"
	"github.com/warrenmq/warren/vhost"
)

type env struct {
	t       *testing.T
	srv     *amqp.Server
	api     *management.API
	http    *httptest.Server
	amqpURL string
}

func start(t *testing.T) *env { return startWith(t) }

// startWith starts a broker adjusted by opts, with its management API.
func startWith(t *testing.T, opts ...func(*amqp.Config)) *env {
	t.Helper()
	srv := amqptest.NewServer(t, append([]func(*amqp.Config){func(cfg *amqp.Config) {
		cfg.Users = append(cfg.Users, broker.User{Name: "watcher", Password: "w", Tags: []string{"monitoring"},
			Permissions: map[string]broker.Permission{"/": {Configure: "", Write: "", Read: ".*"}}})
	}}, opts...)...)
	api := management.New(srv.Server, management.Options{SampleInterval: 50 * time.Millisecond})
	hs := httptest.NewServer(api)
	t.Cleanup(func() {
		hs.Close()
		api.Close()
	})
	return &env{t: t, srv: srv.Server, api: api, http: hs, amqpURL: srv.URL}
}

// do sends a request as guest and decodes a JSON answer into out (if non-nil).
func (e *env) do(method, path string, body any, out any) int {
	e.t.Helper()
	return e.doAs("guest", "guest", method, path, body, out)
}

func (e *env) doAs(user, pw, method, path string, body any, out any) int {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(e.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	require.NoError(e.t, err)
	req.SetBasicAuth(user, pw)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	if out != nil && len(b) > 0 {
		require.NoError(e.t, json.Unmarshal(b, out), string(b))
	}
	return resp.StatusCode
}

func (e *env) channel() (*amqp091.Connection, *amqp091.Channel) {
	e.t.Helper()
	conn, err := amqp091.Dial(e.amqpURL)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(e.t, err)
	return conn, ch
}

func TestAuth(t *testing.T) {
	e := start(t)
	require.Equal(t, 401, e.doAs("guest", "wrong", "GET", "/api/overview", nil, nil))
	var who map[string]any
	require.Equal(t, 200, e.do("GET", "/api/whoami", nil, &who))
	require.Equal(t, "guest", who["name"])
	require.Equal(t, 200, e.doAs("watcher", "w", "GET", "/api/queues", nil, nil))
	var er map[string]string
	require.Equal(t, 401, e.doAs("watcher", "w", "PUT", "/api/queues/%2F/x", map[string]any{}, &er))
	require.Equal(t, 404, e.do("GET", "/api/queues/%2F/nope", nil, &er))
	require.Equal(t, map[string]string{"error": "Object Not Found", "reason": "Not Found"}, er)
}

func TestQueuesExchangesBindingsBothWays(t *testing.T) {
	e := start(t)
	_, ch := e.channel()
	// HTTP -> AMQP
	require.Equal(t, 201, e.do("PUT", "/api/queues/%2F/web.q", map[string]any{"durable": true, "arguments": map[string]any{"x-max-length": 10}}, nil))
	require.Equal(t, 204, e.do("PUT", "/api/queues/%2F/web.q", map[string]any{"durable": true, "arguments": map[string]any{"x-max-length": 10}}, nil))
	var er map[string]string
	require.Equal(t, 400, e.do("PUT", "/api/queues/%2F/web.q", map[string]any{"durable": false}, &er))
	require.Contains(t, er["reason"], "inequivalent arg 'durable'")
	_, err := ch.QueueDeclarePassive("web.q", true, false, false, false, nil)
	require.NoError(t, err)
	require.Equal(t, 201, e.do("PUT", "/api/exchanges/%2F/web.x", map[string]any{"type": "topic", "durable": true}, nil))
	require.NoError(t, ch.ExchangeDeclarePassive("web.x", "topic", true, false, false, false, nil))
	require.Equal(t, 201, e.do("POST", "/api/bindings/%2F/e/web.x/q/web.q", map[string]any{"routing_key": "a.#"}, nil))
	var bs []map[string]any
	require.Equal(t, 200, e.do("GET", "/api/queues/%2F/web.q/bindings", nil, &bs))
	require.Len(t, bs, 2) // the default exchange's and ours
	require.Equal(t, "a.#", bs[1]["routing_key"])
	require.Equal(t, "a.%23", bs[1]["properties_key"])

	var routed map[string]bool
	require.Equal(t, 200, e.do("POST", "/api/exchanges/%2F/web.x/publish", map[string]any{"routing_key": "a.b", "payload": "hello",
		"payload_encoding": "string", "properties": map[string]any{"delivery_mode": 2, "headers": map[string]any{"k": 1}}}, &routed))
	require.True(t, routed["routed"])
	d, ok, err := ch.Get("web.q", true)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "hello", string(d.Body))
	require.EqualValues(t, 1, d.Headers["k"])

	require.Equal(t, 204, e.do("DELETE", "/api/bindings/%2F/e/web.x/q/web.q/a.%23", nil, nil))
	require.Equal(t, 200, e.do("POST", "/api/exchanges/%2F/web.x/publish", map[string]any{"routing_key": "a.b", "payload": "x", "properties": map[string]any{}}, &routed))
	require.False(t, routed["routed"])

	// AMQP -> HTTP
	_, err = ch.QueueDeclare("amqp.q", false, false, false, false, amqp091.Table{"x-message-ttl": int32(60000)})
	require.NoError(t, err)
	require.NoError(t, ch.Publish("", "amqp.q", false, false, amqp091.Publishing{Body: []byte("m1")}))
	require.NoError(t, ch.Publish("", "amqp.q", false, false, amqp091.Publishing{Body: []byte{0xff, 0x00}}))
	var qj map[string]any
	require.Eventually(t, func() bool {
		e.do("GET", "/api/queues/%2F/amqp.q", nil, &qj)
		return qj["messages"] == float64(2)
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, map[string]any{"x-message-ttl": float64(60000)}, qj["arguments"])
	require.Equal(t, "classic", qj["type"])
	require.Contains(t, qj, "message_stats")

	var msgs []map[string]any
	require.Equal(t, 200, e.do("POST", "/api/queues/%2F/amqp.q/get", map[string]any{"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto"}, &msgs))
	require.Len(t, msgs, 2)
	require.Equal(t, "m1", msgs[0]["payload"])
	require.Equal(t, "string", msgs[0]["payload_encoding"])
	require.Equal(t, "base64", msgs[1]["payload_encoding"])
	require.EqualValues(t, 1, msgs[0]["message_count"])
	// Requeued: still two, then purge.
	e.do("GET", "/api/queues/%2F/amqp.q", nil, &qj)
	require.EqualValues(t, 2, qj["messages_ready"])
	require.Equal(t, 204, e.do("DELETE", "/api/queues/%2F/amqp.q/contents", nil, nil))
	e.do("GET", "/api/queues/%2F/amqp.q", nil, &qj)
	require.EqualValues(t, 0, qj["messages"])

	var qs []map[string]any
	require.Equal(t, 200, e.do("GET", "/api/queues/%2F", nil, &qs))
	require.Len(t, qs, 2)
	require.Equal(t, 204, e.do("DELETE", "/api/queues/%2F/amqp.q", nil, nil))
	require.Equal(t, 204, e.do("DELETE", "/api/exchanges/%2F/web.x", nil, nil))
	require.Equal(t, 403, e.do("DELETE", "/api/exchanges/%2F/amq.direct", nil, nil))
	_, ch2 := e.channel()
	_, err = ch2.QueueDeclarePassive("amqp.q", false, false, false, false, nil)
	require.Error(t, err)

	var xs []map[string]any
	require.Equal(t, 200, e.do("GET", "/api/exchanges/%2F", nil, &xs))
	require.Equal(t, "", xs[0]["name"])
	require.Equal(t, 200, e.do("GET", "/api/exchanges/%2F/amq.default", nil, nil))
	var alive map[string]string
	require.Equal(t, 200, e.do("GET", "/api/aliveness-test/%2F", nil, &alive))
	require.Equal(t, "ok", alive["status"])
	require.Equal(t, 200, e.do("GET", "/api/healthchecks/node", nil, &alive))
}

func TestConnectionsChannelsConsumersAndClose(t *testing.T) {
	e := start(t)
	conn, ch := e.channel()
	_, err := ch.QueueDeclare("c.q", false, true, false, false, nil)
	require.NoError(t, err)
	_, err = ch.Consume("c.q", "tag1", false, false, false, false, nil)
	require.NoError(t, err)
	closed := conn.NotifyClose(make(chan *amqp091.Error, 1))

	var conns []map[string]any
	require.Equal(t, 200, e.do("GET", "/api/connections", nil, &conns))
	require.Len(t, conns, 1)
	require.Equal(t, "guest", conns[0]["user"])
	require.EqualValues(t, 1, conns[0]["channels"])
	var chans, cons []map[string]any
	require.Equal(t, 200, e.do("GET", "/api/channels", nil, &chans))
	require.Len(t, chans, 1)
	require.Equal(t, 200, e.do("GET", "/api/consumers/%2F", nil, &cons))
	require.Len(t, cons, 1)
	require.Equal(t, "tag1", cons[0]["consumer_tag"])

	req, err := http.NewRequest("DELETE", e.http.URL+"/api/connections/"+url.PathEscape(conns[0]["name"].(string)), nil)
	require.NoError(t, err)
	req.SetBasicAuth("guest", "guest")
	req.Header.Set("X-Reason", "go away")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 204, resp.StatusCode)
	select {
	case ae := <-closed:
		require.NotNil(t, ae)
		require.Equal(t, 320, ae.Code)
		require.Contains(t, ae.Reason, "go away")
	case <-time.After(5 * time.Second):
		t.Fatal("connection not closed")
	}
}

func TestDefinitionsRoundTrip(t *testing.T) {
	e := start(t)
	_, ch := e.channel()
	require.NoError(t, ch.ExchangeDeclare("d.x", "direct", true, false, false, false, amqp091.Table{"alternate-exchange": "d.ae"}))
	require.NoError(t, ch.ExchangeDeclare("d.ae", "fanout", true, false, false, false, nil))
	_, err := ch.QueueDeclare("d.q", true, false, false, false, amqp091.Table{"x-dead-letter-exchange": "d.ae", "x-max-priority": int32(5)})
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind("d.q", "k", "d.x", false, amqp091.Table{"x-match": "any"}))
	require.NoError(t, ch.ExchangeBind("d.ae", "k2", "d.x", false, nil))
	var defs map[string]any
	require.Equal(t, 200, e.do("GET", "/api/definitions", nil, &defs))
	require.Len(t, defs["queues"], 1)
	require.Len(t, defs["exchanges"], 2)
	require.Len(t, defs["bindings"], 2)

	f := start(t)
	require.Equal(t, 204, f.do("POST", "/api/definitions", defs, nil))
	var again map[string]any
	require.Equal(t, 200, f.do("GET", "/api/definitions", nil, &again))
	for _, k := range []string{"queues", "exchanges", "bindings", "vhosts", "permissions"} {
		require.Equal(t, defs[k], again[k], k)
	}
}

// rabbit310 is a definitions file in the shape RabbitMQ 3.10 exports.
const rabbit310 = `{
  "rabbit_version": "3.10.7", "rabbitmq_version": "3.10.7", "product_name": "RabbitMQ", "product_version": "3.10.7",
  "users": [{"name": "guest", "password_hash": "R184F4Fs6JLdo8tFqRjWnkJL2DlAZJupxEqkO/8kfV/G63+z",
             "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"], "limits": {}}],
  "vhosts": [{"name": "/"}],
  "permissions": [{"user": "guest", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],
  "topic_permissions": [], "parameters": [], "global_parameters": [{"name": "cluster_name", "value": "rabbit@host"}],
  "policies": [],
  "queues": [
    {"name": "orders", "vhost": "/", "durable": true, "auto_delete": false,
     "arguments": {"x-dead-letter-exchange": "dlx", "x-queue-type": "classic", "x-delivery-limit": 5}},
    {"name": "orders.dlq", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {}}
  ],
  "exchanges": [
    {"name": "orders", "vhost": "/", "type": "fanout", "durable": true, "auto_delete": false, "internal": false, "arguments": {}},
    {"name": "dlx", "vhost": "/", "type": "fanout", "durable": true, "auto_delete": false, "internal": false, "arguments": {}}
  ],
  "bindings": [
    {"source": "orders", "vhost": "/", "destination": "orders", "destination_type": "queue", "routing_key": "", "arguments": {}},
    {"source": "dlx", "vhost": "/", "destination": "orders.dlq", "destination_type": "queue", "routing_key": "", "arguments": {}}
  ]
}`

func TestImportRabbitMQ310Definitions(t *testing.T) {
	e := start(t)
	var defs map[string]any
	require.NoError(t, json.Unmarshal([]byte(rabbit310), &defs))
	require.Equal(t, 204, e.do("POST", "/api/definitions", defs, nil))
	_, ch := e.channel()
	require.NoError(t, ch.Publish("orders", "", false, false, amqp091.Publishing{Body: []byte("o1")}))
	d, ok, err := ch.Get("orders", false)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, d.Reject(false))
	require.Eventually(t, func() bool {
		var q map[string]any
		e.do("GET", "/api/queues/%2F/orders.dlq", nil, &q)
		return q["messages"] == float64(1) && q["dead_letter_queue"] == true
	}, 5*time.Second, 10*time.Millisecond)
}

// deadLetterSetup makes work (DLX dlx) -> dlx fanout -> work.dlq with n rejected messages.
func deadLetterSetup(t *testing.T, e *env, n int) *amqp091.Channel {
	_, ch := e.channel()
	require.NoError(t, ch.ExchangeDeclare("dlx", "fanout", true, false, false, false, nil))
	_, err := ch.QueueDeclare("work.dlq", true, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind("work.dlq", "", "dlx", false, nil))
	_, err = ch.QueueDeclare("work", true, false, false, false, amqp091.Table{"x-dead-letter-exchange": "dlx"})
	require.NoError(t, err)
	for i := range n {
		require.NoError(t, ch.Publish("", "work", false, false, amqp091.Publishing{DeliveryMode: 2, Body: []byte{'m', byte('0' + i)}}))
	}
	for range n {
		var d amqp091.Delivery
		var ok bool
		require.Eventually(t, func() bool {
			d, ok, err = ch.Get("work", false)
			return err == nil && ok
		}, 5*time.Second, 5*time.Millisecond)
		require.NoError(t, d.Reject(false))
	}
	require.Eventually(t, func() bool {
		q, err := ch.QueueDeclarePassive("work.dlq", true, false, false, false, nil)
		return err == nil && q.Messages == n
	}, 5*time.Second, 5*time.Millisecond)
	return ch
}

func TestDeadLetterInspectAndReplay(t *testing.T) {
	e := start(t)
	ch := deadLetterSetup(t, e, 3)
	var dls []map[string]any
	require.Equal(t, 200, e.do("GET", "/api/queues/%2F/work.dlq/dead-letters", nil, &dls))
	require.Len(t, dls, 3)
	xd := dls[0]["x_death"].([]any)[0].(map[string]any)
	require.Equal(t, "work", xd["queue"])
	require.Equal(t, "rejected", xd["reason"])
	require.Equal(t, []any{"work"}, xd["routing-keys"])
	require.Equal(t, "rejected", dls[0]["first_death_reason"])
	// Not consumed.
	q, err := ch.QueueDeclarePassive("work.dlq", true, false, false, false, nil)
	require.NoError(t, err)
	require.Equal(t, 3, q.Messages)

	// Interrupted replay: limit 1 of 3 leaves two.
	var res map[string]any
	require.Equal(t, 200, e.do("POST", "/api/queues/%2F/work.dlq/dead-letters/replay", map[string]any{"to": "original", "limit": 1}, &res))
	require.EqualValues(t, 1, res["replayed"])
	require.EqualValues(t, 2, res["remaining"])
	q, err = ch.QueueDeclarePassive("work", true, false, false, false, nil)
	require.NoError(t, err)
	require.Equal(t, 1, q.Messages)
	d, ok, err := ch.Get("work", true)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "m0", string(d.Body))
	require.NotNil(t, d.Headers["x-death"], "history is kept")

	// The rest, through an exchange with the original routing keys.
	require.Equal(t, 409, e.do("POST", "/api/queues/%2F/work.dlq/dead-letters/replay", map[string]any{"to": "amq.direct"}, &res))
	require.EqualValues(t, 0, res["replayed"]) // nothing bound: refused, nothing lost
	require.Contains(t, res["error"], "not routed")
	q, err = ch.QueueDeclarePassive("work.dlq", true, false, false, false, nil)
	require.NoError(t, err)
	require.Equal(t, 2, q.Messages)
	require.NoError(t, ch.QueueBind("work", "work", "amq.direct", false, nil))
	require.Equal(t, 200, e.do("POST", "/api/queues/%2F/work.dlq/dead-letters/replay", map[string]any{"to": "amq.direct"}, &res))
	require.EqualValues(t, 2, res["replayed"])
	q, err = ch.QueueDeclarePassive("work", true, false, false, false, nil)
	require.NoError(t, err)
	require.Equal(t, 2, q.Messages)
}

func TestPrometheus(t *testing.T) {
	e := start(t)
	deadLetterSetup(t, e, 2)
	rec := httptest.NewRecorder()
	e.api.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics/per-object", nil))
	body := rec.Body.String()
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		if strings.HasPrefix(line, "# ") {
			f := strings.Fields(line)
			require.True(t, f[1] == "HELP" || f[1] == "TYPE", line)
			continue
		}
		// name{labels} value
		sp := strings.LastIndexByte(line, ' ')
		require.Positive(t, sp, line)
		_, err := json.Number(line[sp+1:]).Float64()
		require.NoError(t, err, line)
		name := line[:sp]
		if i := strings.IndexByte(name, '{'); i >= 0 {
			require.True(t, strings.HasSuffix(name, "}"), line)
			name = name[:i]
		}
		seen[name] = true
	}
	for _, m := range []string{"rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_unacked", "rabbitmq_queue_messages_published_total",
		"rabbitmq_queue_messages_delivered_total", "rabbitmq_queue_messages_acked_total", "rabbitmq_connections", "rabbitmq_channels",
		"rabbitmq_consumers", "rabbitmq_process_resident_memory_bytes"} {
		require.True(t, seen[m], m)
	}
	require.Contains(t, body, `rabbitmq_queue_messages_ready{vhost="/",queue="work.dlq",dlq="true"} 2`)
	require.Contains(t, body, `rabbitmq_queue_messages_ready{vhost="/",queue="work"} 0`)
}

func TestRates(t *testing.T) {
	e := start(t)
	_, ch := e.channel()
	_, err := ch.QueueDeclare("r.q", false, false, false, false, nil)
	require.NoError(t, err)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = ch.Publish("", "r.q", false, false, amqp091.Publishing{Body: []byte("x")})
			time.Sleep(time.Millisecond)
		}
	}()
	require.Eventually(t, func() bool {
		var q map[string]any
		e.do("GET", "/api/queues/%2F/r.q", nil, &q)
		ms, _ := q["message_stats"].(map[string]any)
		pd, _ := ms["publish_details"].(map[string]any)
		r, _ := pd["rate"].(float64)
		return r > 0
	}, 5*time.Second, 20*time.Millisecond)
}

func TestList10000Queues(t *testing.T) {
	e := start(t)
	v := e.srv.Broker().VHost("/")
	for i := range 10000 {
		_, err := v.Apply(vhost.DeclareQueue{Name: fmt.Sprintf("queue.%05d", i)})
		require.NoError(t, err)
	}
	start := time.Now()
	req, err := http.NewRequest("GET", e.http.URL+"/api/queues", nil)
	require.NoError(t, err)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	took := time.Since(start)
	var qs []map[string]any
	require.NoError(t, json.Unmarshal(body, &qs))
	require.Len(t, qs, 10000)
	// How long it takes is for a benchmark on a quiet machine
	// (docs/performance.md), not an assertion that a busy CI machine fails.
	t.Logf("listing 10000 queues took %v (%d bytes; race detector: %v)", took, len(body), raceEnabled)
}

func TestRabbitmqadmin(t *testing.T) {
	if _, err := os.Stat("/usr/bin/rabbitmqadmin"); err != nil {
		if os.Getenv("WARREN_REQUIRE_RABBITMQADMIN") == "1" {
			t.Fatal("rabbitmqadmin not installed (apt-get install rabbitmq-server)")
		}
		t.Skip("rabbitmqadmin not installed (apt-get install rabbitmq-server)")
	}
	e := start(t)
	u, err := url.Parse(e.http.URL)
	require.NoError(t, err)
	run := func(args ...string) string {
		cmd := exec.Command("/usr/bin/rabbitmqadmin", append([]string{"-H", u.Hostname(), "-P", u.Port(), "-u", "guest", "-p", "guest"}, args...)...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}
	run("declare", "queue", "name=adminq", "durable=true")
	out := run("list", "queues")
	require.Contains(t, out, "adminq")
	_, ch := e.channel()
	_, err = ch.QueueDeclarePassive("adminq", true, false, false, false, nil)
	require.NoError(t, err)
	run("declare", "exchange", "name=adminx", "type=fanout")
	run("declare", "binding", "source=adminx", "destination=adminq")
	run("publish", "exchange=adminx", "routing_key=", "payload=hi")
	require.Contains(t, run("get", "queue=adminq"), "hi")
	require.Contains(t, run("list", "exchanges"), "adminx")

	// Users, vhosts and permissions.
	run("declare", "vhost", "name=adminvh")
	run("declare", "user", "name=adminu", "password=secret", "tags=monitoring")
	run("declare", "permission", "vhost=adminvh", "user=adminu", "configure=^adminu\\.", "write=.*", "read=.*")
	require.Contains(t, run("list", "users"), "adminu")
	require.Contains(t, run("list", "vhosts"), "adminvh")
	require.Contains(t, run("list", "permissions"), "^adminu\\.")
	conn, err := e.login("adminu", "secret", "adminvh")
	require.NoError(t, err)
	uch, err := conn.Channel()
	require.NoError(t, err)
	_, err = uch.QueueDeclare("adminu.q", false, false, false, false, nil)
	require.NoError(t, err)
	run("-V", "adminvh", "delete", "queue", "name=adminu.q")
	run("delete", "permission", "vhost=adminvh", "user=adminu")
	require.NotContains(t, run("list", "permissions"), "adminu")
	run("delete", "user", "name=adminu")
	require.NotContains(t, run("list", "users"), "adminu")
	run("delete", "vhost", "name=adminvh")
	require.NotContains(t, run("list", "vhosts"), "adminvh")
}

// TestOverviewIdentity: /api/overview reports the configured identity
// (RabbitMQ 3.10.8 by default, as clients and tools expect) and what runs.
func TestOverviewIdentity(t *testing.T) {
	e := start(t)
	var ov map[string]any
	require.Equal(t, 200, e.do("GET", "/api/overview", nil, &ov))
	require.Equal(t, "RabbitMQ", ov["product_name"])
	require.Equal(t, "3.10.8", ov["product_version"])
	require.Equal(t, "3.10.8", ov["rabbitmq_version"])
	require.Equal(t, "3.10.8", ov["management_version"])
	require.Equal(t, broker.Version, ov["warren_version"])
}
