package vhost_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/vhost"
)

// message makes a message as the channel would from a publish: its headers
// and expiration encoded in its properties, and the fields the queue acts on.
func message(exchange, key string, headers wire.Table, expiration string) *queue.Message {
	props := wire.Properties{Headers: headers, Expiration: expiration}
	if headers != nil {
		props.Present |= wire.FlagHeaders
	}
	m := &queue.Message{Exchange: exchange, RoutingKey: key, Body: []byte("body")}
	if expiration != "" {
		props.Present |= wire.FlagExpiration
		m.HasExpiration = true
		m.Expiration = 60_000
	}
	m.Properties = props.Append(nil)
	return m
}

// take gets the next message of a queue, unacked, and decodes its properties.
func take(t testing.TB, v *vhost.VHost, name string) (queue.Interface, queue.Delivery, wire.Properties) {
	t.Helper()
	q, err := v.Queue(name, 0)
	require.NoError(t, err)
	d, _, ok := q.Get(false)
	require.True(t, ok, "queue %q is empty", name)
	var props wire.Properties
	require.NoError(t, props.Decode(d.Message.Properties))
	return q, d, props
}

// deaths returns the x-death entries of decoded properties.
func deaths(t testing.TB, props wire.Properties) []wire.Table {
	t.Helper()
	list, ok := props.Headers["x-death"].([]any)
	require.True(t, ok, "x-death is an array: %#v", props.Headers["x-death"])
	out := make([]wire.Table, len(list))
	for i, x := range list {
		out[i], ok = x.(wire.Table)
		require.True(t, ok, "x-death entry %d is a table: %#v", i, x)
	}
	return out
}

// summary is an x-death entry without its time.
type summary struct {
	Queue, Reason string
	Count         int64
}

func summarize(ds []wire.Table) []summary {
	out := make([]summary, len(ds))
	for i, d := range ds {
		out[i].Queue, _ = d["queue"].(string)
		out[i].Reason, _ = d["reason"].(string)
		out[i].Count, _ = d["count"].(int64)
	}
	return out
}

// TestDeadLetterReasons: each way a message dies reaches the dead-letter
// exchange with RabbitMQ's x-death entry and x-first-death-* headers.
func TestDeadLetterReasons(t *testing.T) {
	for _, tc := range []struct {
		reason string
		args   map[string]any
		// kill makes the one message published to "src" die there.
		kill func(t *testing.T, v *vhost.VHost)
	}{
		{"rejected", nil, func(t *testing.T, v *vhost.VHost) {
			q, d, _ := take(t, v, "src")
			q.Reject([]queue.Delivery{d})
		}},
		{"expired", map[string]any{"x-message-ttl": int32(1)}, func(t *testing.T, v *vhost.VHost) {
			require.Eventually(t, func() bool { return ready(t, v, "dlq") == 1 }, 5*time.Second, time.Millisecond)
		}},
		{"maxlen", map[string]any{"x-max-length": int32(1)}, func(t *testing.T, v *vhost.VHost) {
			publish(t, v, vhost.Publishing{Exchange: "src-x", RoutingKey: "k", Message: message("src-x", "k", nil, "")})
		}},
		{"delivery_limit", map[string]any{"x-delivery-limit": int32(1)}, func(t *testing.T, v *vhost.VHost) {
			for range 2 {
				q, d, _ := take(t, v, "src")
				q.Requeue([]queue.Delivery{d})
			}
		}},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			v := vhost.New("/", vhost.Options{})
			args := map[string]any{"x-dead-letter-exchange": "dlx"}
			for k, a := range tc.args {
				args[k] = a
			}
			apply(t, v,
				vhost.DeclareExchange{Name: "src-x", Kind: "direct"},
				vhost.DeclareExchange{Name: "dlx", Kind: "fanout"},
				vhost.DeclareQueue{Name: "src", Args: args},
				vhost.DeclareQueue{Name: "dlq"},
				vhost.Bind{Source: "src-x", Destination: "src", Key: "k"},
				vhost.Bind{Source: "dlx", Destination: "dlq"},
			)
			before := time.Now().Truncate(time.Second)
			require.Equal(t, 1, publish(t, v, vhost.Publishing{Exchange: "src-x", RoutingKey: "k", Message: message("src-x", "k", wire.Table{"app": "kept"}, "")}))
			tc.kill(t, v)
			after := time.Now()

			_, d, props := take(t, v, "dlq")
			assert.Equal(t, "dlx", d.Message.Exchange, "the dead letter's exchange")
			assert.Equal(t, "k", d.Message.RoutingKey, "the original key without x-dead-letter-routing-key")
			assert.Equal(t, "body", string(d.Message.Body))
			assert.Equal(t, "kept", props.Headers["app"], "other headers stay")
			ds := deaths(t, props)
			require.Len(t, ds, 1)
			entry := ds[0]
			when, ok := entry["time"].(time.Time)
			require.True(t, ok, "time is a timestamp: %#v", entry["time"])
			assert.False(t, when.Before(before) || when.After(after), "time %v within [%v, %v]", when, before, after)
			delete(entry, "time")
			assert.Equal(t, wire.Table{
				"count": int64(1), "reason": tc.reason, "queue": "src",
				"exchange": "src-x", "routing-keys": []any{"k"},
			}, entry)
			assert.Equal(t, tc.reason, props.Headers["x-first-death-reason"])
			assert.Equal(t, "src", props.Headers["x-first-death-queue"])
			assert.Equal(t, "src-x", props.Headers["x-first-death-exchange"])
		})
	}
}

// TestDeadLetterExpirationMoves: a message's own expiration moves into the
// x-death entry, so it does not expire again on its way.
func TestDeadLetterExpirationMoves(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v,
		vhost.DeclareQueue{Name: "src", Args: map[string]any{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"}},
		vhost.DeclareQueue{Name: "dlq"},
	)
	publish(t, v, vhost.Publishing{RoutingKey: "src", Message: message("", "src", nil, "60000")})
	q, d, _ := take(t, v, "src")
	q.Reject([]queue.Delivery{d})

	_, d, props := take(t, v, "dlq")
	assert.Zero(t, props.Present&wire.FlagExpiration, "expiration removed")
	assert.False(t, d.Message.HasExpiration)
	ds := deaths(t, props)
	require.Len(t, ds, 1)
	assert.Equal(t, "60000", ds[0]["original-expiration"])
}

// TestDeadLetterCountAndOrder: dying again in the same queue for the same
// reason bumps that entry's count and moves it to the front; x-first-death-*
// keep the first death.
func TestDeadLetterCountAndOrder(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	// a and b dead-letter into each other through the default exchange;
	// rejections never count as cycles.
	apply(t, v,
		vhost.DeclareQueue{Name: "a", Args: map[string]any{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "b"}},
		vhost.DeclareQueue{Name: "b", Args: map[string]any{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "a"}},
	)
	publish(t, v, vhost.Publishing{RoutingKey: "a", Message: message("", "a", nil, "")})
	reject := func(name string) wire.Properties {
		q, d, _ := take(t, v, name)
		q.Reject([]queue.Delivery{d})
		next := map[string]string{"a": "b", "b": "a"}[name]
		require.Equal(t, 1, ready(t, v, next), "dead-lettered to %s", next)
		_, d, props := take(t, v, next)
		q, _ = v.Queue(next, 0)
		q.Requeue([]queue.Delivery{d}) // leave it there for the next step
		return props
	}

	props := reject("a")
	assert.Equal(t, []summary{{"a", "rejected", 1}}, summarize(deaths(t, props)))
	props = reject("b")
	assert.Equal(t, []summary{{"b", "rejected", 1}, {"a", "rejected", 1}}, summarize(deaths(t, props)))
	props = reject("a")
	assert.Equal(t, []summary{{"a", "rejected", 2}, {"b", "rejected", 1}}, summarize(deaths(t, props)))
	assert.Equal(t, "a", props.Headers["x-first-death-queue"])
	assert.Equal(t, "rejected", props.Headers["x-first-death-reason"])
	assert.Equal(t, "", props.Headers["x-first-death-exchange"])
	// Routed by the dead-letter key, the entries keep the keys the message
	// had in the queue it died in.
	assert.Equal(t, []any{"b"}, deaths(t, props)[1]["routing-keys"])
}

// TestDeadLetterCC: the CC keys route a dead letter like its routing key,
// unless a dead-letter routing key replaces them all, in which case the CC
// header goes too. x-death lists every key the message had.
func TestDeadLetterCC(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     map[string]any
		wantIn   []string // queues that get the dead letter
		wantCC   any
		wantKey  string
		keysSeen []any
	}{
		{"keys kept", map[string]any{}, []string{"by-k1", "by-k2"}, []any{"k2"}, "k1", []any{"k1", "k2"}},
		{"dead-letter key", map[string]any{"x-dead-letter-routing-key": "dk"}, []string{"by-dk"}, nil, "dk", []any{"k1", "k2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := vhost.New("/", vhost.Options{})
			args := map[string]any{"x-dead-letter-exchange": "dlx"}
			for k, a := range tc.args {
				args[k] = a
			}
			apply(t, v,
				vhost.DeclareExchange{Name: "src-x", Kind: "direct"},
				vhost.DeclareExchange{Name: "dlx", Kind: "direct"},
				vhost.DeclareQueue{Name: "src", Args: args},
				vhost.Bind{Source: "src-x", Destination: "src", Key: "k1"},
			)
			for _, k := range []string{"k1", "k2", "dk"} {
				apply(t, v, vhost.DeclareQueue{Name: "by-" + k}, vhost.Bind{Source: "dlx", Destination: "by-" + k, Key: k})
			}
			headers := wire.Table{"CC": []any{"k2"}}
			require.Equal(t, 1, publish(t, v, vhost.Publishing{
				Exchange: "src-x", RoutingKey: "k1", CC: []string{"k2"}, Headers: headers,
				Message: message("src-x", "k1", headers, ""),
			}))
			q, d, _ := take(t, v, "src")
			q.Reject([]queue.Delivery{d})

			for _, k := range []string{"k1", "k2", "dk"} {
				want := 0
				for _, in := range tc.wantIn {
					if in == "by-"+k {
						want = 1
					}
				}
				assert.Equal(t, want, ready(t, v, "by-"+k), "queue by-%s", k)
			}
			_, d, props := take(t, v, tc.wantIn[0])
			assert.Equal(t, tc.wantKey, d.Message.RoutingKey)
			assert.Equal(t, tc.wantCC, props.Headers["CC"])
			assert.Equal(t, tc.keysSeen, deaths(t, props)[0]["routing-keys"])
		})
	}
}

// TestDeadLetterCycle: a message that would come back to a queue it died in,
// with no rejection since, is dropped, as in RabbitMQ; one that never died
// there is not.
func TestDeadLetterCycle(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	// a and b hold one message each and push the oldest out into each other.
	apply(t, v,
		vhost.DeclareQueue{Name: "a", Args: map[string]any{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "b", "x-max-length": int32(1)}},
		vhost.DeclareQueue{Name: "b", Args: map[string]any{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "a", "x-max-length": int32(1)}},
	)
	send := func(name, body string) {
		m := message("", name, nil, "")
		m.Body = []byte(body)
		publish(t, v, vhost.Publishing{RoutingKey: name, Message: m})
	}
	holds := func(name string) string {
		t.Helper()
		require.Equal(t, 1, ready(t, v, name))
		q, d, _ := take(t, v, name)
		q.Requeue([]queue.Delivery{d})
		return string(d.Message.Body)
	}

	send("a", "m1")
	send("a", "m2") // m1 dies in a and goes on to b, where it never died
	assert.Equal(t, "m2", holds("a"))
	assert.Equal(t, "m1", holds("b"))

	// m1 dies in b; back in a, where it died before with no rejection since,
	// it is dropped (else it would push m2 on to b, and so on).
	send("b", "m3")
	assert.Equal(t, "m2", holds("a"))
	assert.Equal(t, "m3", holds("b"))
}

// TestDeadLetterMissingExchange: a dead-letter exchange that does not exist
// drops the message, as in RabbitMQ.
func TestDeadLetterMissingExchange(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v, vhost.DeclareQueue{Name: "src", Args: map[string]any{"x-dead-letter-exchange": "nowhere"}})
	publish(t, v, vhost.Publishing{RoutingKey: "src", Message: message("", "src", nil, "")})
	q, d, _ := take(t, v, "src")
	q.Reject([]queue.Delivery{d})
	assert.Equal(t, 0, q.Stats().Ready)
	assert.Equal(t, 0, q.Stats().Unacked)
}
