package conformance

import (
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp"
)

// smallBudget makes durable queues keep most of a backlog on disk.
func smallBudget(c *amqp.Config) { c.QueueMemoryBudget = 64 << 10 }

// publishAllConfirmed publishes bodies to exchange/key, persistent unless
// transient says otherwise, and waits for every confirm.
func publishAllConfirmed(t *testing.T, ch *amqp091.Channel, exchange, key string, bodies []string, transient func(i int) bool) {
	t.Helper()
	require.NoError(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, len(bodies)))
	for i, body := range bodies {
		mode := amqp091.Persistent
		if transient != nil && transient(i) {
			mode = amqp091.Transient
		}
		require.NoError(t, ch.Publish(exchange, key, false, false, amqp091.Publishing{DeliveryMode: mode, Body: []byte(body)}))
	}
	for range bodies {
		require.True(t, recvConfirm(t, confirms).Ack)
	}
}

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(prefix, i)
	}
	return out
}

// consumeAll consumes n messages with manual acks and returns their bodies.
func consumeAll(t *testing.T, ch *amqp091.Channel, queue string, n int, redelivered bool) []string {
	t.Helper()
	require.NoError(t, ch.Qos(500, 0, false))
	ds, err := ch.Consume(queue, "", false, false, false, false, nil)
	require.NoError(t, err)
	var got []string
	for len(got) < n {
		select {
		case d := <-ds:
			got = append(got, string(d.Body))
			require.Equal(t, redelivered, d.Redelivered, "message %d", len(got))
			require.NoError(t, d.Ack(false))
		case <-time.After(10 * time.Second):
			t.Fatalf("received %d of %d", len(got), n)
		}
	}
	// A synchronous method on the same channel returns after the acks
	// before it were handled.
	require.NoError(t, ch.Qos(500, 0, false))
	return got
}

// A backlog larger than the memory budget stays on disk and comes back in
// order, through a restart, fanned out to several durable queues; transient
// messages queued behind it keep their place until the restart drops them.
func TestPagedBacklog(t *testing.T) {
	b := newRestartableBroker(t, smallBudget)
	ch := b.channel()
	require.NoError(t, ch.ExchangeDeclare("orders", "fanout", true, false, false, false, nil))
	for _, q := range []string{"inventory", "fraud"} {
		_, err := ch.QueueDeclare(q, true, false, false, false, nil)
		require.NoError(t, err)
		require.NoError(t, ch.QueueBind(q, "", "orders", false, nil))
	}
	const n = 20000
	bodies := numbered("order-", n)
	transient := func(i int) bool { return i%1000 == 999 }
	publishAllConfirmed(t, ch, "orders", "", bodies, transient)
	for _, q := range []string{"inventory", "fraud"} {
		info, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
		require.NoError(t, err)
		require.Equal(t, n, info.Messages)
	}
	got := consumeAll(t, b.channel(), "inventory", n, false)
	require.Equal(t, bodies, got, "in order, transient ones included")

	b.restart()
	ch = b.channel()
	var persistent []string
	for i, body := range bodies {
		if !transient(i) {
			persistent = append(persistent, body)
		}
	}
	info, err := ch.QueueDeclarePassive("fraud", true, false, false, false, nil)
	require.NoError(t, err)
	require.Equal(t, len(persistent), info.Messages, "transient messages do not survive a restart")
	info, err = ch.QueueDeclarePassive("inventory", true, false, false, false, nil)
	require.NoError(t, err)
	require.Zero(t, info.Messages)
	got = consumeAll(t, ch, "fraud", len(persistent), true)
	require.Equal(t, persistent, got)

	b.restart()
	ch = b.channel()
	info, err = ch.QueueDeclarePassive("fraud", true, false, false, false, nil)
	require.NoError(t, err)
	assert.Zero(t, info.Messages, "acked messages stay gone")
}

// Purging a paged backlog removes the part on disk too.
func TestPagedPurge(t *testing.T) {
	b := newRestartableBroker(t, smallBudget)
	ch := b.channel()
	_, err := ch.QueueDeclare("backlog", true, false, false, false, nil)
	require.NoError(t, err)
	const n = 10000
	publishAllConfirmed(t, ch, "", "backlog", numbered("m", n), nil)
	purged, err := ch.QueuePurge("backlog", false)
	require.NoError(t, err)
	require.Equal(t, n, purged)
	publishAllConfirmed(t, ch, "", "backlog", []string{"after"}, nil)

	b.restart()
	ch = b.channel()
	require.Equal(t, []string{"after"}, consumeAll(t, ch, "backlog", 1, true))
}

// Messages consumed without acknowledgement are settled as they leave: they
// do not come back after a restart.
func TestNoAckRemovesStoredMessages(t *testing.T) {
	b := newRestartableBroker(t)
	ch := b.channel()
	_, err := ch.QueueDeclare("q", true, false, false, false, nil)
	require.NoError(t, err)
	publishAllConfirmed(t, ch, "", "q", []string{"got", "consumed"}, nil)
	m, ok, err := ch.Get("q", true)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "got", string(m.Body))
	ds, err := ch.Consume("q", "", true, false, false, false, nil)
	require.NoError(t, err)
	require.Equal(t, "consumed", string(recv(t, ds).Body))

	b.restart()
	ch = b.channel()
	info, err := ch.QueueDeclarePassive("q", true, false, false, false, nil)
	require.NoError(t, err)
	require.Zero(t, info.Messages)
}

// A transient queue pages its backlog out too once the budget is spent, and
// keeps it in order; nothing of it survives a restart.
func TestPagedTransientQueue(t *testing.T) {
	b := newRestartableBroker(t, smallBudget)
	ch := b.channel()
	_, err := ch.QueueDeclare("scratch", false, false, false, false, amqp091.Table{"x-max-priority": int32(2)})
	require.NoError(t, err)
	const n = 20000
	var bodies []string
	for prio := uint8(0); prio <= 2; prio++ {
		for i := range n / 4 {
			body := fmt.Sprintf("p%d-%d", prio, i)
			bodies = append(bodies, body)
			require.NoError(t, ch.Publish("", "scratch", false, false, amqp091.Publishing{Priority: prio, Body: []byte(body)}))
		}
	}
	info, err := ch.QueueDeclarePassive("scratch", false, false, false, false, amqp091.Table{"x-max-priority": int32(2)})
	require.NoError(t, err)
	require.Equal(t, len(bodies), info.Messages)
	got := consumeAll(t, ch, "scratch", len(bodies), false)
	var want []string
	for prio := 2; prio >= 0; prio-- {
		want = append(want, bodies[prio*(n/4):(prio+1)*(n/4)]...)
	}
	require.Equal(t, want, got, "highest priority first, in order within a priority")
}
