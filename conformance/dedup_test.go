package conformance

import (
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// The deduplication plugin (rabbitmq-message-deduplication 0.5, the
// release for RabbitMQ 3.10) is not installed on the RabbitMQ these tests
// are checked against; its source defines what is pinned here.

func dedupExchange(t *testing.T, b *testBroker, ch *amqp091.Channel, args amqp091.Table) (x, q string) {
	t.Helper()
	if b.External {
		t.Skip("RabbitMQ here has no rabbitmq_message_deduplication")
	}
	x = declareExchange(t, b, ch, "x-message-deduplication", "dedup", args)
	q = declareQueue(t, b, ch, "q", nil)
	require.NoError(t, ch.QueueBind(q, "ignored", x, false, nil))
	return x, q
}

// TestDedupDropsDuplicates: a message whose x-deduplication-header value
// was seen is not routed, yet confirmed (ack) and, if mandatory, returned;
// messages without the header all pass; routing keys do not matter.
func TestDedupDropsDuplicates(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	x, q := dedupExchange(t, b, ch, amqp091.Table{"x-cache-size": int32(100)})
	require.NoError(t, ch.Confirm(false))
	returns := ch.NotifyReturn(make(chan amqp091.Return, 4))
	send := func(key string, h amqp091.Table, body string, mandatory bool) {
		dc, err := ch.PublishWithDeferredConfirm(x, key, mandatory, false, amqp091.Publishing{Headers: h, Body: []byte(body)})
		require.NoError(t, err)
		require.True(t, dc.Wait(), "a duplicate is still acked")
	}
	send("a", amqp091.Table{"x-deduplication-header": "order-1"}, "first", false)
	send("b", amqp091.Table{"x-deduplication-header": "order-1"}, "dup", false)
	send("c", amqp091.Table{"x-deduplication-header": "order-1"}, "dup mandatory", true)
	send("d", amqp091.Table{"x-deduplication-header": int32(7)}, "int", false)
	send("e", amqp091.Table{"x-deduplication-header": "7"}, "string 7 is another value", false)
	send("f", nil, "no header", false)
	send("f", nil, "no header again", false)
	select {
	case r := <-returns:
		require.Equal(t, "dup mandatory", string(r.Body))
		require.Equal(t, uint16(amqp091.NoRoute), r.ReplyCode)
	case <-time.After(timeout):
		t.Fatal("the mandatory duplicate was not returned")
	}
	require.Equal(t, []string{"first", "int", "string 7 is another value", "no header", "no header again"}, drain(t, ch, q))
}

// TestDedupTTLAndSize: values expire after x-cache-ttl (the exchange's or
// the message's header), and a full cache forgets its oldest value.
func TestDedupTTLAndSize(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	x, q := dedupExchange(t, b, ch, amqp091.Table{"x-cache-size": int32(2), "x-cache-ttl": int32(300)})
	pub := func(v string, h amqp091.Table) {
		if h == nil {
			h = amqp091.Table{}
		}
		h["x-deduplication-header"] = v
		publishMsg(t, ch, x, "", amqp091.Publishing{Headers: h, Body: []byte(v)})
	}
	pub("a", nil)
	pub("a", nil)
	time.Sleep(400 * time.Millisecond)
	pub("a", nil) // expired: routed again
	pub("long", amqp091.Table{"x-cache-ttl": int32(60000)})
	time.Sleep(400 * time.Millisecond)
	pub("long", nil) // its own TTL still holds
	pub("b", nil)    // the cache is full: the oldest value, a, goes
	pub("c", nil)    // and then long
	pub("long", nil)
	requireQueueLen(t, ch, q, 6)
	require.Equal(t, []string{"a", "a", "long", "b", "c", "long"}, drain(t, ch, q))
}

// TestDedupDeclareErrors: the plugin's texts for bad arguments. They are
// Elixir strings continued over two lines, indentation included.
func TestDedupDeclareErrors(t *testing.T) {
	b := startBroker(t)
	if b.External {
		t.Skip("RabbitMQ here has no rabbitmq_message_deduplication")
	}
	const (
		sizeMissing = "PRECONDITION_FAILED - Missing or invalid argument,           'x-cache-size' must be an integer greater than 0"
		sizeBadStr  = "PRECONDITION_FAILED - Missing or invalid argument,                       'x-cache-size' must be an integer greater than 0"
		ttlBad      = "PRECONDITION_FAILED - Invalid argument,              'x-cache-ttl' must be an integer greater than 0"
		persistBad  = "PRECONDITION_FAILED - Invalid argument,              'x-cache-persistence' must be either 'disk' or 'memory'"
	)
	for _, tc := range []struct {
		name string
		args amqp091.Table
		text string
	}{
		{"no size", nil, sizeMissing},
		{"zero size", amqp091.Table{"x-cache-size": int32(0)}, sizeMissing},
		{"size not a number", amqp091.Table{"x-cache-size": "many"}, sizeBadStr},
		{"negative ttl", amqp091.Table{"x-cache-size": int32(5), "x-cache-ttl": int32(-1)}, ttlBad},
		{"bad persistence", amqp091.Table{"x-cache-size": int32(5), "x-cache-persistence": "tape"}, persistBad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ch := b.channel(t)
			closed := notifyClose(ch)
			err := ch.ExchangeDeclare(uniqueName(t, "x"), "x-message-deduplication", false, true, false, false, tc.args)
			requireAMQPError(t, err, amqp091.PreconditionFailed, tc.text)
			requireClosedWith(t, closed, amqp091.PreconditionFailed, tc.text)
		})
	}
	_, ch := b.channel(t)
	// A string size that starts with digits is accepted, as Integer.parse does.
	name := uniqueName(t, "x")
	require.NoError(t, ch.ExchangeDeclare(name, "x-message-deduplication", false, true, false, false, amqp091.Table{"x-cache-size": "10", "x-cache-persistence": "disk"}))
	require.NoError(t, ch.ExchangeDelete(name, false, false))
}

// dedupPublish publishes a message carrying x-deduplication-header value
// and reports whether the broker confirmed it with ack.
func dedupPublish(t *testing.T, ch *amqp091.Channel, q, value, body string, mode uint8) bool {
	t.Helper()
	dc, err := ch.PublishWithDeferredConfirm("", q, false, false, amqp091.Publishing{
		Headers: amqp091.Table{"x-deduplication-header": value}, Body: []byte(body), DeliveryMode: mode,
	})
	require.NoError(t, err)
	return dc.Wait()
}

// TestDedupQueueRefusesQueuedValues: a queue declared with
// x-message-deduplication drops (and nacks, as the plugin's queue does) a
// message whose header value a message in it carries, ready or unacked;
// once that message is acked the value is accepted again. Purge forgets
// the ready messages' values; messages without the header all pass.
func TestDedupQueueRefusesQueuedValues(t *testing.T) {
	b := startBroker(t)
	if b.External {
		t.Skip("RabbitMQ here has no rabbitmq_message_deduplication")
	}
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "dq", amqp091.Table{"x-message-deduplication": true})
	require.NoError(t, ch.Confirm(false))

	require.True(t, dedupPublish(t, ch, q, "a", "a1", amqp091.Transient))
	require.False(t, dedupPublish(t, ch, q, "a", "a2", amqp091.Transient), "a duplicate of a ready message is nacked")
	require.True(t, dedupPublish(t, ch, q, "b", "b1", amqp091.Transient))
	require.NoError(t, ch.Publish("", q, false, false, amqp091.Publishing{Body: []byte("plain")}))
	require.NoError(t, ch.Publish("", q, false, false, amqp091.Publishing{Body: []byte("plain")}))
	requireQueueLen(t, ch, q, 4)

	m := getOne(t, ch, q) // a1, now unacked
	require.Equal(t, "a1", string(m.Body))
	require.False(t, dedupPublish(t, ch, q, "a", "a3", amqp091.Transient), "a duplicate of an unacked message is nacked")
	require.NoError(t, m.Ack(false))
	require.True(t, dedupPublish(t, ch, q, "a", "a4", amqp091.Transient), "acked: the value is free again")

	n, err := ch.QueuePurge(q, false)
	require.NoError(t, err)
	require.Equal(t, 4, n) // b1, two plain, a4
	require.True(t, dedupPublish(t, ch, q, "a", "a5", amqp091.Transient))
	require.True(t, dedupPublish(t, ch, q, "b", "b2", amqp091.Transient))

	// A message consumed with no-ack leaves at once.
	d, err := ch.Consume(q, "noack", true, false, false, false, nil)
	require.NoError(t, err)
	require.Equal(t, "a5", string(recv(t, d).Body))
	require.Equal(t, "b2", string(recv(t, d).Body))
	require.True(t, dedupPublish(t, ch, q, "a", "a6", amqp091.Transient))
	require.Equal(t, "a6", string(recv(t, d).Body))

	// A dead letter is deduplicated like a publish: a7 meets a8.
	require.NoError(t, ch.Cancel("noack", false))
	require.True(t, dedupPublish(t, ch, q, "a", "a8", amqp091.Transient))
	src := declareQueue(t, b, ch, "dlsrc", amqp091.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": q})
	require.True(t, dedupPublish(t, ch, src, "a", "a7", amqp091.Transient))
	require.True(t, dedupPublish(t, ch, src, "c", "c1", amqp091.Transient))
	for range 2 {
		require.NoError(t, getOne(t, ch, src).Reject(false))
	}
	require.Eventually(t, func() bool {
		info, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
		return err == nil && info.Messages == 2
	}, timeout, 10*time.Millisecond)
	time.Sleep(50 * time.Millisecond) // a7, were it let in, would be there by now
	require.Equal(t, []string{"a8", "c1"}, drain(t, ch, q))

	// Without the argument (or with false) nothing is deduplicated.
	plain := declareQueue(t, b, ch, "plainq", amqp091.Table{"x-message-deduplication": false})
	require.True(t, dedupPublish(t, ch, plain, "a", "1", amqp091.Transient))
	require.True(t, dedupPublish(t, ch, plain, "a", "2", amqp091.Transient))
	requireQueueLen(t, ch, plain, 2)
}

// TestDedupQueueRestart: a durable deduplicating queue rebuilds its
// values from the messages it recovers.
func TestDedupQueueRestart(t *testing.T) {
	b := newRestartableBroker(t)
	ch := b.channel()
	_, err := ch.QueueDeclare("dq", true, false, false, false, amqp091.Table{"x-message-deduplication": true})
	require.NoError(t, err)
	require.NoError(t, ch.Confirm(false))
	require.True(t, dedupPublish(t, ch, "dq", "a", "a1", amqp091.Persistent))
	require.True(t, dedupPublish(t, ch, "dq", "b", "b1", amqp091.Persistent))

	b.restart()
	ch = b.channel()
	require.NoError(t, ch.Confirm(false))
	require.False(t, dedupPublish(t, ch, "dq", "a", "a2", amqp091.Persistent), "the recovered a1 still holds its value")
	m := getOne(t, ch, "dq")
	require.Equal(t, "a1", string(m.Body))
	require.NoError(t, m.Ack(false))
	require.True(t, dedupPublish(t, ch, "dq", "a", "a3", amqp091.Persistent))
	require.False(t, dedupPublish(t, ch, "dq", "b", "b2", amqp091.Persistent))
	require.Equal(t, []string{"b1", "a3"}, drain(t, ch, "dq"))
}
