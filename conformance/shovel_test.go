package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/amqp/amqptest"
)

// call sends an API request as guest and returns the status and body.
func (b *adminBroker) call(method, path string, body any) (int, []byte) {
	b.t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(b.t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.http.URL+path, rd)
	require.NoError(b.t, err)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp.StatusCode, out
}

// shovels is GET /api/shovels/{vhost}.
func (b *adminBroker) shovelStatus(vh string) []map[string]any {
	b.t.Helper()
	code, body := b.call("GET", "/api/shovels/"+url.PathEscape(vh), nil)
	require.Equal(b.t, http.StatusOK, code, string(body))
	var out []map[string]any
	require.NoError(b.t, json.Unmarshal(body, &out))
	return out
}

// waitShovelState waits until the vhost's shovel name reports state.
func (b *adminBroker) waitShovelState(vh, name, state string) map[string]any {
	b.t.Helper()
	var last map[string]any
	require.Eventually(b.t, func() bool {
		for _, s := range b.shovelStatus(vh) {
			if s["name"] == name {
				last = s
				return s["state"] == state
			}
		}
		return false
	}, 2*timeout, 20*time.Millisecond, "shovel %s/%s never %s (last %v)", vh, name, state, last)
	return last
}

// TestShovelValidation: a shovel definition RabbitMQ refuses is refused with
// rabbitmq_shovel's 400 texts (taken from RabbitMQ 3.10.8's management API).
func TestShovelValidation(t *testing.T) {
	b := newAdminBroker(t)
	base := func(extra map[string]any) map[string]any {
		v := map[string]any{"src-uri": "amqp://", "src-queue": "q", "dest-uri": "amqp://", "dest-queue": "d"}
		for k, x := range extra {
			v[k] = x
		}
		return v
	}
	for _, tc := range []struct {
		name   string
		value  any
		reason string
	}{
		{"empty", map[string]any{}, "Validation failed\n\nMust specify 'src-exchange' or 'src-queue'\nKey \"dest-uri\" not found in bad\nKey \"src-uri\" not found in bad\n"},
		{"no destination", map[string]any{"src-uri": "amqp://", "src-queue": "q"}, "Validation failed\n\nKey \"dest-uri\" not found in bad\n"},
		{"queue and exchange", base(map[string]any{"src-exchange": "x"}), "Validation failed\n\nCannot specify 'src-exchange' and 'src-queue'\n"},
		{"dest queue and exchange", base(map[string]any{"dest-exchange": "x"}), "Validation failed\n\nCannot specify 'dest-exchange' and 'dest-queue'\n"},
		{"scheme", base(map[string]any{"src-uri": "foo://"}), "Validation failed\n\n\"foo://\" not a valid URI: {{unexpected_uri_scheme,\"foo\"},\"foo://\"}\n"},
		{"ack-mode", base(map[string]any{"ack-mode": "bad"}), "Validation failed\n\nack-mode should be one of [&lt;&lt;\"no-ack\"&gt;&gt;,&lt;&lt;\"on-publish\"&gt;&gt;,&lt;&lt;\"on-confirm\"&gt;&gt;], actually was &lt;&lt;\"bad\"&gt;&gt;\n"},
		{"delete-after word", base(map[string]any{"src-delete-after": "bad"}), "Validation failed\n\nsrc-delete-after should be a number greater than or equal to 0, \"never\" or \"queue-length\", actually was &lt;&lt;\"bad\"&gt;&gt;\n"},
		{"delete-after negative", base(map[string]any{"src-delete-after": -1}), "Validation failed\n\nsrc-delete-after should be a number greater than or equal to 0, \"never\" or \"queue-length\", actually was -1\n"},
		{"prefetch", base(map[string]any{"src-prefetch-count": "x"}), "Validation failed\n\nsrc-prefetch-count should be a number, actually was &lt;&lt;\"x\"&gt;&gt;\n"},
		{"reconnect-delay", base(map[string]any{"reconnect-delay": "x"}), "Validation failed\n\nreconnect-delay should be a number, actually was &lt;&lt;\"x\"&gt;&gt;\n"},
		{"unknown key", base(map[string]any{"bogus": 1}), "Validation failed\n\nUnrecognised terms [{&lt;&lt;\"bogus\"&gt;&gt;,1}] in bad\n"},
		{"uri list", base(map[string]any{"src-uri": []any{"amqp://", 3}}), "Validation failed\n\nsrc-uri should be list, actually was 3\n"},
		{"forward headers", base(map[string]any{"dest-add-forward-headers": "x"}), "Validation failed\n\ndest-add-forward-headers should be boolean, actually was &lt;&lt;\"x\"&gt;&gt;\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := b.call("PUT", "/api/parameters/shovel/%2F/bad", map[string]any{"value": tc.value})
			require.Equal(t, http.StatusBadRequest, code)
			var e map[string]string
			require.NoError(t, json.Unmarshal(body, &e))
			require.Equal(t, "bad_request", e["error"])
			require.Equal(t, tc.reason, e["reason"])
		})
	}
	code, body := b.call("PUT", "/api/parameters/shovel/%2F/bad", map[string]any{})
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, string(body), "[{key_missing,value}]")
	code, _ = b.call("PUT", "/api/parameters/shovel/nope/s", map[string]any{"value": base(nil)})
	require.Equal(t, http.StatusNotFound, code)
	code, _ = b.call("GET", "/api/parameters/shovel/%2F/bad", nil)
	require.Equal(t, http.StatusNotFound, code, "a refused shovel is not stored")
}

// TestShovelBetweenVhosts moves messages between two vhosts of one Warren
// through amqp:///vhost URIs (the local node): forward and timestamp
// headers as rabbitmq_shovel writes them, status, parameters in the
// definitions, and a restart of the broker with the shovel.
func TestShovelBetweenVhosts(t *testing.T) {
	b := newAdminBroker(t)
	b.mustDo(http.StatusCreated, "PUT", "/api/vhosts/a", nil)
	b.mustDo(http.StatusCreated, "PUT", "/api/vhosts/b", nil)
	_, src := b.mustDial("guest", "guest", "a")
	require.NoError(t, src.Confirm(false))
	_, err := src.QueueDeclare("orders", true, false, false, false, nil)
	require.NoError(t, err)
	for i := range 10 {
		publishConfirmed(t, src, "", "orders", amqp091.Publishing{DeliveryMode: 2, MessageId: strconv.Itoa(i),
			Headers: amqp091.Table{"h": int32(i)}, Body: []byte("m" + strconv.Itoa(i))})
	}

	value := map[string]any{"src-uri": "amqp:///a", "src-queue": "orders", "dest-uri": []string{"amqp:///b"},
		"dest-queue": "orders-copy", "dest-add-forward-headers": true, "dest-add-timestamp-header": true, "reconnect-delay": 0.1}
	b.mustDo(http.StatusCreated, "PUT", "/api/parameters/shovel/a/move", map[string]any{"value": value})
	b.mustDo(http.StatusNoContent, "PUT", "/api/parameters/shovel/a/move", map[string]any{"value": value})
	st := b.waitShovelState("a", "move", "running")
	for k, v := range map[string]any{"type": "dynamic", "vhost": "a", "src_uri": "amqp:///a", "dest_uri": "amqp:///b",
		"src_queue": "orders", "dest_queue": "orders-copy", "src_protocol": "amqp091", "dest_protocol": "amqp091"} {
		require.Equal(t, v, st[k], k)
	}

	_, dst := b.mustDial("guest", "guest", "b")
	got := consumeN(t, dst, "orders-copy", 10)
	for i, d := range got {
		require.Equal(t, strconv.Itoa(i), d.MessageId)
		require.Equal(t, "m"+strconv.Itoa(i), string(d.Body))
		require.Equal(t, uint8(2), d.DeliveryMode)
		require.Equal(t, int32(i), d.Headers["h"])
		require.IsType(t, int64(0), d.Headers["x-shovelled-timestamp"])
		fwd, ok := d.Headers["x-shovelled"].([]any)
		require.True(t, ok, "x-shovelled: %v", d.Headers)
		require.Len(t, fwd, 1)
		info := fwd[0].(amqp091.Table)
		require.Equal(t, "move", info["shovel-name"])
		require.Equal(t, "dynamic", info["shovel-type"])
		require.Equal(t, "a", info["shovel-vhost"])
		require.Equal(t, "amqp:///a", info["src-uri"])
		require.Equal(t, "orders", info["src-queue"])
		require.Equal(t, "orders-copy", info["dest-queue"])
		require.NotEmpty(t, info["shovelled-by"])
	}

	// Stored, exported and started again with the broker.
	code, body := b.call("GET", "/api/definitions", nil)
	require.Equal(t, http.StatusOK, code)
	var defs struct {
		Parameters []map[string]any `json:"parameters"`
	}
	require.NoError(t, json.Unmarshal(body, &defs))
	require.Len(t, defs.Parameters, 1)
	require.Equal(t, "shovel", defs.Parameters[0]["component"])
	require.Equal(t, "a", defs.Parameters[0]["vhost"])
	require.Equal(t, "orders", defs.Parameters[0]["value"].(map[string]any)["src-queue"])

	b.restart()
	b.waitShovelState("a", "move", "running")
	_, src = b.mustDial("guest", "guest", "a")
	require.NoError(t, src.Confirm(false))
	publishConfirmed(t, src, "", "orders", amqp091.Publishing{DeliveryMode: 2, Body: []byte("after restart")})
	_, dst = b.mustDial("guest", "guest", "b")
	got = consumeN(t, dst, "orders-copy", 1)
	require.Equal(t, "after restart", string(got[0].Body))

	// restart_shovel, then delete.
	b.mustDo(http.StatusNoContent, "DELETE", "/api/shovels/vhost/a/move/restart", nil)
	b.mustDo(http.StatusNotFound, "DELETE", "/api/shovels/vhost/a/nope/restart", nil)
	b.waitShovelState("a", "move", "running")
	b.mustDo(http.StatusNoContent, "DELETE", "/api/parameters/shovel/a/move", nil)
	require.Empty(t, b.shovelStatus("a"))
	b.mustDo(http.StatusNotFound, "DELETE", "/api/parameters/shovel/a/move", nil)
}

// TestShovelDeleteAfterQueueLength: src-delete-after "queue-length" moves
// the messages there were at start, then the shovel deletes itself; an
// exchange source with dest-exchange-key rewrites the routing key.
func TestShovelDeleteAfterQueueLength(t *testing.T) {
	b := newAdminBroker(t)
	_, ch := b.mustDial("guest", "guest", "/")
	require.NoError(t, ch.Confirm(false))
	for _, q := range []string{"from", "to", "via-x"} {
		_, err := ch.QueueDeclare(q, true, false, false, false, nil)
		require.NoError(t, err)
	}
	require.NoError(t, ch.QueueBind("via-x", "rewritten", "amq.direct", false, nil))
	for i := range 5 {
		publishConfirmed(t, ch, "", "from", amqp091.Publishing{Body: []byte{byte(i)}})
	}
	b.mustDo(http.StatusCreated, "PUT", "/api/parameters/shovel/%2F/drain", map[string]any{"value": map[string]any{
		"src-uri": "amqp://", "src-queue": "from", "dest-uri": "amqp://", "dest-queue": "to", "src-delete-after": "queue-length"}})
	require.Eventually(t, func() bool {
		code, _ := b.call("GET", "/api/parameters/shovel/%2F/drain", nil)
		return code == http.StatusNotFound
	}, 2*timeout, 20*time.Millisecond, "the shovel deletes itself")
	q, err := ch.QueueDeclarePassive("to", true, false, false, false, nil)
	require.NoError(t, err)
	require.Equal(t, 5, q.Messages)

	b.mustDo(http.StatusCreated, "PUT", "/api/parameters/shovel/%2F/fan", map[string]any{"value": map[string]any{
		"src-uri": "amqp://", "src-exchange": "amq.topic", "src-exchange-key": "orders.#",
		"dest-uri": "amqp://", "dest-exchange": "amq.direct", "dest-exchange-key": "rewritten", "ack-mode": "on-publish",
		"dest-publish-properties": map[string]any{"app_id": "shovelled", "delivery_mode": 2}, "src-consumer-args": map[string]any{"x-priority": 5}}})
	st := b.waitShovelState("/", "fan", "running")
	require.Equal(t, "amq.topic", st["src_exchange"])
	require.Equal(t, "orders.#", st["src_exchange_key"])
	require.Equal(t, "amq.direct", st["dest_exchange"])
	require.Equal(t, "rewritten", st["dest_exchange_key"])
	publishConfirmed(t, ch, "amq.topic", "orders.eu", amqp091.Publishing{Body: []byte("routed")})
	publishConfirmed(t, ch, "amq.topic", "other", amqp091.Publishing{Body: []byte("not routed")})
	got := consumeN(t, ch, "via-x", 1)
	require.Equal(t, "routed", string(got[0].Body))
	require.Equal(t, "rewritten", got[0].RoutingKey)
	require.Equal(t, "shovelled", got[0].AppId)
	require.Equal(t, uint8(2), got[0].DeliveryMode)
}

// consumeN consumes and acks n messages from queue.
func consumeN(t *testing.T, ch *amqp091.Channel, queue string, n int) []amqp091.Delivery {
	t.Helper()
	ds, err := ch.Consume(queue, "", false, false, false, false, nil)
	require.NoError(t, err)
	var out []amqp091.Delivery
	for len(out) < n {
		select {
		case d := <-ds:
			require.NoError(t, d.Ack(false))
			out = append(out, d)
		case <-time.After(2 * timeout):
			t.Fatalf("got %d of %d messages from %s", len(out), n, queue)
		}
	}
	return out
}

// fixedPortBroker is a Warren that restarts on the same data directory and
// the same port, so that a shovel's URI still reaches it.
type fixedPortBroker struct {
	t    *testing.T
	dir  string
	addr string
	srv  *amqptest.Server
}

func (f *fixedPortBroker) start() {
	f.srv = amqptest.NewServer(f.t, func(c *amqp.Config) {
		c.DataDir = f.dir
		if f.addr != "" {
			c.Listen = f.addr
		}
	})
	f.addr = f.srv.Addr
}

func (f *fixedPortBroker) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	require.NoError(f.t, f.srv.Shutdown(ctx))
}

// collect counts distinct message ids in queue at url until want are in.
func collect(t *testing.T, dial func() (*amqp091.Connection, error), queue string, want int, within time.Duration) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	deadline := time.Now().Add(within)
	for len(seen) < want && time.Now().Before(deadline) {
		conn, err := dial()
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		ch, err := conn.Channel()
		if err == nil {
			var ds <-chan amqp091.Delivery
			if ds, err = ch.Consume(queue, "", false, false, false, false, nil); err == nil {
			loop:
				for len(seen) < want {
					select {
					case d, ok := <-ds:
						if !ok {
							break loop
						}
						seen[d.MessageId] = true
						_ = d.Ack(false)
					case <-time.After(time.Until(deadline)):
						break loop
					}
				}
			}
		}
		conn.Close()
	}
	return seen
}

// TestShovelDestinationRestart stops and restarts the destination broker
// while a publisher keeps writing to the source and an on-confirm shovel
// moves the messages: every confirmed message arrives (some may arrive
// twice: those confirmed by the destination whose source ack was lost).
func TestShovelDestinationRestart(t *testing.T) {
	src := newAdminBroker(t)
	dest := &fixedPortBroker{t: t, dir: t.TempDir()}
	dest.start()

	_, ch := src.mustDial("guest", "guest", "/")
	require.NoError(t, ch.Confirm(false))
	_, err := ch.QueueDeclare("outbox", true, false, false, false, nil)
	require.NoError(t, err)
	src.mustDo(http.StatusCreated, "PUT", "/api/parameters/shovel/%2F/out", map[string]any{"value": map[string]any{
		"src-uri": "amqp://", "src-queue": "outbox", "dest-uri": "amqp://guest:guest@" + dest.addr + "/",
		"dest-queue": "inbox", "src-prefetch-count": 50, "reconnect-delay": 0.1}})
	st := src.waitShovelState("/", "out", "running")
	require.Equal(t, "amqp://"+dest.addr+"/", st["dest_uri"], "credentials are not shown")

	const total = 2000
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := range total {
			dc, err := ch.PublishWithDeferredConfirm("", "outbox", false, false,
				amqp091.Publishing{DeliveryMode: 2, MessageId: strconv.Itoa(i), Body: []byte("x")})
			if err != nil {
				t.Errorf("publish %d: %v", i, err)
				return
			}
			if i%100 == 99 && !dc.Wait() {
				t.Errorf("publish %d nacked", i)
				return
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	dest.stop()
	src.waitShovelState("/", "out", "starting")
	time.Sleep(200 * time.Millisecond)
	dest.start()
	<-published
	seen := collect(t, func() (*amqp091.Connection, error) { return amqp091.Dial(dest.srv.URL) }, "inbox", total, 6*timeout)
	for i := range total {
		if !seen[strconv.Itoa(i)] {
			t.Fatalf("message %d lost (%d of %d arrived)", i, len(seen), total)
		}
	}
	src.waitShovelState("/", "out", "running")
}

// rabbitMQURL is the local RabbitMQ the migration test reads from.
func rabbitMQURL(t *testing.T) string {
	u := os.Getenv("WARREN_TEST_RABBITMQ_URL")
	if u == "" {
		u = "amqp://guest:guest@127.0.0.1:5672/"
	}
	conn, err := amqp091.DialConfig(u, amqp091.Config{Dial: amqp091.DefaultDial(time.Second)})
	if err != nil {
		if os.Getenv("WARREN_REQUIRE_RABBITMQ") == "1" {
			t.Fatalf("no RabbitMQ at %s (WARREN_REQUIRE_RABBITMQ=1): %v", u, err)
		}
		t.Skipf("no RabbitMQ at %s (set WARREN_TEST_RABBITMQ_URL, or start rabbitmq-server): %v", u, err)
	}
	conn.Close()
	return u
}

// TestShovelMigrateFromRabbitMQ moves a queue from a live RabbitMQ into
// Warren while publishers keep writing to RabbitMQ: every message arrives.
func TestShovelMigrateFromRabbitMQ(t *testing.T) {
	rmq := rabbitMQURL(t)
	b := newAdminBroker(t)
	queue := fmt.Sprintf("warren-migrate-%d", time.Now().UnixNano())

	conn, err := amqp091.Dial(rmq)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare(queue, true, false, false, false, nil)
	require.NoError(t, err)
	defer func() {
		if c, err := amqp091.Dial(rmq); err == nil {
			if ch, err := c.Channel(); err == nil {
				_, _ = ch.QueueDelete(queue, false, false, false)
			}
			c.Close()
		}
	}()

	const publishers, each = 3, 500
	var wg sync.WaitGroup
	for p := range publishers {
		pch, err := conn.Channel()
		require.NoError(t, err)
		require.NoError(t, pch.Confirm(false))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				dc, err := pch.PublishWithDeferredConfirm("", queue, false, false,
					amqp091.Publishing{DeliveryMode: 2, MessageId: fmt.Sprintf("%d-%d", p, i), Body: []byte("payload")})
				if err != nil || !dc.Wait() {
					t.Errorf("publish %d-%d to RabbitMQ failed: %v", p, i, err)
					return
				}
				if i == each/3 && p == 0 {
					// The shovel starts with a backlog and publishers still writing.
					b.mustDo(http.StatusCreated, "PUT", "/api/parameters/shovel/%2F/migrate", map[string]any{"value": map[string]any{
						"src-uri": rmq, "src-queue": queue, "dest-uri": "amqp://", "dest-queue": queue}})
				}
			}
		}()
	}
	wg.Wait()
	seen := collect(t, func() (*amqp091.Connection, error) {
		return amqp091.Dial("amqp://guest:guest@" + b.srv.Addr + "/")
	}, queue, publishers*each, 6*timeout)
	for p := range publishers {
		for i := range each {
			if !seen[fmt.Sprintf("%d-%d", p, i)] {
				t.Fatalf("message %d-%d did not arrive (%d of %d)", p, i, len(seen), publishers*each)
			}
		}
	}
	st := b.waitShovelState("/", "migrate", "running")
	require.Equal(t, "amqp://127.0.0.1:5672/", st["src_uri"])
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	require.NoError(t, err)
	require.Zero(t, q.Messages, "the RabbitMQ queue is drained")
	_ = net.ErrClosed
}
