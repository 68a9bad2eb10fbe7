package conformance

import (
	"time"

	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

func TestDeadLetterReasons(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []struct {
		name   string
		reason string
		kill   func(t *testing.T, ch *amqp091.Channel, q string)
	}{
		{"reject", "rejected", func(t *testing.T, ch *amqp091.Channel, q string) {
			publish(t, ch, "", q, "m")
			requireQueueLen(t, ch, q, 1)
			require.NoError(t, getOne(t, ch, q).Reject(false))
		}},
		{"nack", "rejected", func(t *testing.T, ch *amqp091.Channel, q string) {
			publish(t, ch, "", q, "m")
			m := recv(t, consume(t, ch, q, nil))
			require.NoError(t, m.Nack(false, false))
		}},
		{"nack multiple", "rejected", func(t *testing.T, ch *amqp091.Channel, q string) {
			publish(t, ch, "", q, "m")
			requireQueueLen(t, ch, q, 1)
			require.NoError(t, getOne(t, ch, q).Nack(true, false))
		}},
		{"expired", "expired", func(t *testing.T, ch *amqp091.Channel, q string) {
			publishMsg(t, ch, "", q, amqp091.Publishing{Expiration: "50", Body: []byte("m")})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ch := b.channel(t)
			dlx, dlq := deadLetterTarget(t, b, ch, "r")
			q := declareQueue(t, b, ch, "q", amqp091.Table{"x-dead-letter-exchange": dlx})
			tc.kill(t, ch, q)
			requireQueueLen(t, ch, dlq, 1)
			m := getOne(t, ch, dlq)
			require.Equal(t, "m", string(m.Body))
			require.False(t, m.Redelivered)
			require.Equal(t, dlx, m.Exchange)
			require.Equal(t, q, m.RoutingKey)
			d := xDeath(t, m)
			require.Len(t, d, 1)
			want := death{Count: 1, Reason: tc.reason, Queue: q, Exchange: "", RoutingKeys: []string{q}}
			if tc.reason == "expired" {
				want.OriginalExpiration = "50"
				// The expiration property is removed from the dead-lettered message.
				require.Equal(t, "", m.Expiration)
			}
			requireDeath(t, want, d[0])
			requireFirstDeath(t, m, tc.reason, q, "")
			requireQueueLen(t, ch, q, 0)
		})
	}
}

func TestDeadLetterRequeueDoesNotDeadLetter(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	dlx, dlq := deadLetterTarget(t, b, ch, "r")
	q := declareQueue(t, b, ch, "q", amqp091.Table{"x-dead-letter-exchange": dlx})
	publish(t, ch, "", q, "m")
	requireQueueLen(t, ch, q, 1)
	require.NoError(t, getOne(t, ch, q).Reject(true))
	requireQueueLen(t, ch, q, 1)
	requireQueueLen(t, ch, dlq, 0)

	// Deleting or purging a queue does not dead-letter its messages.
	_, err := ch.QueuePurge(q, false)
	require.NoError(t, err)
	requireQueueLenStays(t, ch, dlq, 0, 300*time.Millisecond)
}

func TestDeadLetterMessageProperties(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	dlx, dlq := deadLetterTarget(t, b, ch, "p")
	q := declareQueue(t, b, ch, "q", amqp091.Table{"x-dead-letter-exchange": dlx})
	publishMsg(t, ch, "", q, amqp091.Publishing{
		Body: []byte("m"), ContentType: "text/plain", CorrelationId: "c1", MessageId: "id1",
		Priority: 3, DeliveryMode: amqp091.Persistent, Headers: amqp091.Table{"h": "v"},
	})
	requireQueueLen(t, ch, q, 1)
	require.NoError(t, getOne(t, ch, q).Reject(false))
	requireQueueLen(t, ch, dlq, 1)
	m := getOne(t, ch, dlq)
	// Properties and the publisher's headers survive.
	require.Equal(t, "text/plain", m.ContentType)
	require.Equal(t, "c1", m.CorrelationId)
	require.Equal(t, "id1", m.MessageId)
	require.Equal(t, uint8(3), m.Priority)
	require.Equal(t, amqp091.Persistent, m.DeliveryMode)
	require.Equal(t, "v", m.Headers["h"])
	keys := make([]string, 0, len(m.Headers))
	for k := range m.Headers {
		keys = append(keys, k)
	}
	require.ElementsMatch(t, []string{"h", "x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason"}, keys)
}

func TestDeadLetterRoutingKey(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	// A direct DLX with one queue per routing key shows which keys are used.
	dlx := declareExchange(t, b, ch, amqp091.ExchangeDirect, "dlx", nil)
	byKey := map[string]string{}
	for _, k := range []string{"orig", "cc", "dlkey"} {
		byKey[k] = declareQueue(t, b, ch, k, nil)
		require.NoError(t, ch.QueueBind(byKey[k], k, dlx, false, nil))
	}
	src := declareExchange(t, b, ch, amqp091.ExchangeDirect, "src", nil)

	t.Run("original keys including CC", func(t *testing.T) {
		q := declareQueue(t, b, ch, "q", amqp091.Table{"x-dead-letter-exchange": dlx})
		require.NoError(t, ch.QueueBind(q, "orig", src, false, nil))
		publishMsg(t, ch, src, "orig", amqp091.Publishing{Body: []byte("m"), Headers: amqp091.Table{"CC": []interface{}{"cc"}}})
		requireQueueLen(t, ch, q, 1)
		require.NoError(t, getOne(t, ch, q).Reject(false))

		requireQueueLen(t, ch, byKey["orig"], 1)
		requireQueueLen(t, ch, byKey["cc"], 1)
		for _, k := range []string{"orig", "cc"} {
			m := getOne(t, ch, byKey[k])
			require.Equal(t, "orig", m.RoutingKey)
			require.Equal(t, []interface{}{"cc"}, m.Headers["CC"])
			requireDeath(t, death{Count: 1, Reason: "rejected", Queue: q, Exchange: src, RoutingKeys: []string{"orig", "cc"}}, xDeath(t, m)[0])
			requireFirstDeath(t, m, "rejected", q, src)
			require.NoError(t, m.Ack(false))
		}
		requireQueueLen(t, ch, byKey["dlkey"], 0)
	})

	t.Run("dead-letter routing key replaces them and drops CC", func(t *testing.T) {
		q := declareQueue(t, b, ch, "q", amqp091.Table{"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "dlkey"})
		require.NoError(t, ch.QueueBind(q, "orig", src, false, nil))
		publishMsg(t, ch, src, "orig", amqp091.Publishing{Body: []byte("m"), Headers: amqp091.Table{"CC": []interface{}{"cc"}}})
		requireQueueLen(t, ch, q, 1)
		require.NoError(t, getOne(t, ch, q).Reject(false))

		requireQueueLen(t, ch, byKey["dlkey"], 1)
		m := getOne(t, ch, byKey["dlkey"])
		require.Equal(t, "dlkey", m.RoutingKey)
		_, hasCC := m.Headers["CC"]
		require.False(t, hasCC, "CC kept: %v", m.Headers)
		// x-death records the keys the message had before.
		requireDeath(t, death{Count: 1, Reason: "rejected", Queue: q, Exchange: src, RoutingKeys: []string{"orig", "cc"}}, xDeath(t, m)[0])
		requireQueueLenStays(t, ch, byKey["orig"], 0, 300*time.Millisecond)
		requireQueueLen(t, ch, byKey["cc"], 0)
	})
}

func TestDeadLetterChain(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	// q1 --rejected--> x1 --> q2 (TTL) --expired--> x2 --> q3
	x2, q3 := deadLetterTarget(t, b, ch, "3")
	x1 := declareExchange(t, b, ch, amqp091.ExchangeFanout, "x1", nil)
	q2 := declareQueue(t, b, ch, "q2", amqp091.Table{"x-message-ttl": int32(50), "x-dead-letter-exchange": x2})
	require.NoError(t, ch.QueueBind(q2, "", x1, false, nil))
	q1 := declareQueue(t, b, ch, "q1", amqp091.Table{"x-dead-letter-exchange": x1})

	publish(t, ch, "", q1, "m")
	requireQueueLen(t, ch, q1, 1)
	require.NoError(t, getOne(t, ch, q1).Reject(false))
	requireQueueLen(t, ch, q3, 1)

	m := getOne(t, ch, q3)
	t.Logf("x-death after reject then expire: %#v", m.Headers)
	require.Equal(t, q1, m.RoutingKey)
	require.Equal(t, x2, m.Exchange)
	d := xDeath(t, m)
	require.Len(t, d, 2)
	// Most recent first.
	requireDeath(t, death{Count: 1, Reason: "expired", Queue: q2, Exchange: x1, RoutingKeys: []string{q1}}, d[0])
	requireDeath(t, death{Count: 1, Reason: "rejected", Queue: q1, Exchange: "", RoutingKeys: []string{q1}}, d[1])
	// The first death is kept.
	requireFirstDeath(t, m, "rejected", q1, "")
}

func TestDeadLetterCountIncrements(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	// The queue dead-letters into itself: a cycle that a rejection breaks
	// each time, so it is allowed.
	x := declareExchange(t, b, ch, amqp091.ExchangeFanout, "x", nil)
	q := declareQueue(t, b, ch, "q", amqp091.Table{"x-dead-letter-exchange": x})
	require.NoError(t, ch.QueueBind(q, "", x, false, nil))

	publish(t, ch, "", q, "m")
	requireQueueLen(t, ch, q, 1)
	require.NoError(t, getOne(t, ch, q).Reject(false))
	requireQueueLen(t, ch, q, 1)
	first := getOne(t, ch, q)
	firstTime := xDeath(t, first)[0]["time"]
	// Timestamps have a resolution of one second: wait for the next one to
	// see that the second death does not update the entry's time.
	<-time.After(1100 * time.Millisecond)
	require.NoError(t, first.Reject(false))

	requireQueueLen(t, ch, q, 1)
	m := getOne(t, ch, q)
	d := xDeath(t, m)
	require.Len(t, d, 1)
	requireDeath(t, death{Count: 2, Reason: "rejected", Queue: q, Exchange: "", RoutingKeys: []string{q}}, d[0])
	require.Equal(t, firstTime, d[0]["time"], "time of the first death is kept")
	requireFirstDeath(t, m, "rejected", q, "")
	// The second pass went through x with routing key q (the message's key).
	require.Equal(t, x, m.Exchange)
	require.Equal(t, q, m.RoutingKey)
}

func TestDeadLetterEntryMovesToFront(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	// q1 rejects to q2, q2 rejects back to q1, q1 rejects to q2 again: the
	// {q1, rejected} entry is updated (count 2) and moved first.
	x1 := declareExchange(t, b, ch, amqp091.ExchangeFanout, "x1", nil)
	x2 := declareExchange(t, b, ch, amqp091.ExchangeFanout, "x2", nil)
	q1 := declareQueue(t, b, ch, "q1", amqp091.Table{"x-dead-letter-exchange": x1})
	q2 := declareQueue(t, b, ch, "q2", amqp091.Table{"x-dead-letter-exchange": x2})
	require.NoError(t, ch.QueueBind(q2, "", x1, false, nil))
	require.NoError(t, ch.QueueBind(q1, "", x2, false, nil))

	publish(t, ch, "", q1, "m")
	for _, q := range []string{q1, q2, q1} {
		requireQueueLen(t, ch, q, 1)
		require.NoError(t, getOne(t, ch, q).Reject(false))
	}
	requireQueueLen(t, ch, q2, 1)
	m := getOne(t, ch, q2)
	t.Logf("x-death after q1, q2, q1 rejections: %#v", m.Headers)
	d := xDeath(t, m)
	require.Len(t, d, 2)
	// Only count changes: exchange (and time) stay those of the first death.
	requireDeath(t, death{Count: 2, Reason: "rejected", Queue: q1, Exchange: "", RoutingKeys: []string{q1}}, d[0])
	requireDeath(t, death{Count: 1, Reason: "rejected", Queue: q2, Exchange: x1, RoutingKeys: []string{q1}}, d[1])
	requireFirstDeath(t, m, "rejected", q1, "")
}

func TestDeadLetterCycleDropped(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	// q1 (TTL) --expired--> x1 --> q2 (TTL), o2
	// q2       --expired--> x2 --> q1, o1
	// Back in q1 with no rejection on the way is a cycle: RabbitMQ drops the
	// message for q1 but still routes it to o1, which is not in the cycle.
	x1 := declareExchange(t, b, ch, amqp091.ExchangeFanout, "x1", nil)
	x2 := declareExchange(t, b, ch, amqp091.ExchangeFanout, "x2", nil)
	q1 := declareQueue(t, b, ch, "q1", amqp091.Table{"x-message-ttl": int32(50), "x-dead-letter-exchange": x1})
	q2 := declareQueue(t, b, ch, "q2", amqp091.Table{"x-message-ttl": int32(50), "x-dead-letter-exchange": x2})
	o1 := declareQueue(t, b, ch, "o1", nil)
	o2 := declareQueue(t, b, ch, "o2", nil)
	require.NoError(t, ch.QueueBind(q2, "", x1, false, nil))
	require.NoError(t, ch.QueueBind(o2, "", x1, false, nil))
	require.NoError(t, ch.QueueBind(q1, "", x2, false, nil))
	require.NoError(t, ch.QueueBind(o1, "", x2, false, nil))

	publish(t, ch, "", q1, "m")
	requireQueueLen(t, ch, o2, 1)
	requireQueueLen(t, ch, o1, 1)
	requireQueueLenStays(t, ch, q1, 0, 300*time.Millisecond)
	requireQueueLen(t, ch, q2, 0)
	requireQueueLen(t, ch, o2, 1) // not a second time

	m := getOne(t, ch, o1)
	t.Logf("x-death at the cycle: %#v", m.Headers)
	d := xDeath(t, m)
	require.Len(t, d, 2)
	requireDeath(t, death{Count: 1, Reason: "expired", Queue: q2, Exchange: x1, RoutingKeys: []string{q1}}, d[0])
	requireDeath(t, death{Count: 1, Reason: "expired", Queue: q1, Exchange: "", RoutingKeys: []string{q1}}, d[1])
}

func TestDeadLetterMissingExchange(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", amqp091.Table{"x-dead-letter-exchange": uniqueName(t, "missing")})
	publish(t, ch, "", q, "m")
	requireQueueLen(t, ch, q, 1)
	require.NoError(t, getOne(t, ch, q).Reject(false))
	// Dropped silently; the channel is fine.
	requireQueueLen(t, ch, q, 0)
	requireUsable(t, ch)
}

func TestDeadLetterToDefaultExchange(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	target := declareQueue(t, b, ch, "target", nil)
	q := declareQueue(t, b, ch, "q", amqp091.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": target})
	publish(t, ch, "", q, "m")
	requireQueueLen(t, ch, q, 1)
	require.NoError(t, getOne(t, ch, q).Reject(false))
	requireQueueLen(t, ch, target, 1)
	m := getOne(t, ch, target)
	require.Equal(t, "", m.Exchange)
	require.Equal(t, target, m.RoutingKey)
	requireDeath(t, death{Count: 1, Reason: "rejected", Queue: q, Exchange: "", RoutingKeys: []string{q}}, xDeath(t, m)[0])
}

func TestDeadLetterNotOnDelete(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	dlx, dlq := deadLetterTarget(t, b, ch, "d")
	q := declareQueue(t, b, ch, "q", amqp091.Table{"x-dead-letter-exchange": dlx})
	publish(t, ch, "", q, "m")
	publish(t, ch, "", q, "n")
	requireQueueLen(t, ch, q, 2)
	_, err := ch.QueueDelete(q, false, false, false)
	require.NoError(t, err)
	requireQueueLenStays(t, ch, dlq, 0, 300*time.Millisecond)
}
