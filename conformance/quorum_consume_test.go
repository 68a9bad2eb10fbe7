package conformance

import (
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// More of what consumers of a quorum queue see in RabbitMQ 3.10.8, where it
// differs from a classic queue.

// TestQuorumExclusiveConsumeIgnored: basic.consume's exclusive flag is not
// enforced on a quorum queue (a classic queue answers 403 "in exclusive
// use"): exclusive and plain consumers coexist, in either order.
func TestQuorumExclusiveConsumeIgnored(t *testing.T) {
	b := startQuorumBroker(t)
	_, ch := b.channel(t)
	q := declareQuorum(t, b, ch, "q", nil)
	for i, exclusive := range []bool{false, true, true, false} {
		_, c := b.channel(t)
		_, err := c.Consume(q, "", false, exclusive, false, false, nil)
		require.NoError(t, err, "consumer %d (exclusive=%v)", i, exclusive)
	}
	ok, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
	require.NoError(t, err)
	require.Equal(t, 4, ok.Consumers)
}

// TestQuorumPublisherDeliveryCount: an x-delivery-count header set by the
// publisher reaches a consumer's first delivery untouched (its own type);
// the queue's count replaces it on a redelivery, and on basic.get from the
// first.
func TestQuorumPublisherDeliveryCount(t *testing.T) {
	b := startQuorumBroker(t)
	_, ch := b.channel(t)
	q := declareQuorum(t, b, ch, "q", nil)
	require.NoError(t, ch.Confirm(false))
	p := amqp091.Publishing{Body: []byte("a"), Headers: amqp091.Table{"x-delivery-count": int32(7)}}
	publishConfirmed(t, ch, "", q, p)
	publishConfirmed(t, ch, "", q, p)

	m := getOne(t, ch, q)
	requireDeliveryCount(t, m, 0)
	require.NoError(t, m.Ack(false))

	d := consume(t, ch, q, nil)
	m = recv(t, d)
	require.Equal(t, int32(7), m.Headers["x-delivery-count"], "the publisher's header on a first delivery")
	require.NoError(t, m.Nack(false, true))
	m = recv(t, d)
	requireDeliveryCount(t, m, 1)
	require.NoError(t, m.Ack(false))
}

// TestQuorumCancelKeepsUnacked: after basic.cancel the consumer's unacked
// messages stay with it (they can still be acked or returned), and until
// they are settled the cancelled consumer still counts in declare-ok.
func TestQuorumCancelKeepsUnacked(t *testing.T) {
	b := startQuorumBroker(t)
	_, ch := b.channel(t)
	q := declareQuorum(t, b, ch, "q", nil)
	require.NoError(t, ch.Confirm(false))
	publishEachConfirmed(t, ch, q, "1", "2", "3")

	_, c := b.channel(t)
	d, err := c.Consume(q, "c", false, false, false, false, nil)
	require.NoError(t, err)
	_, ms := recvBodies(t, d, 3)
	require.NoError(t, c.Cancel("c", false))
	requireQueueLenStays(t, ch, q, 0, 200*time.Millisecond)
	counts := func() (int, int) {
		ok, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
		require.NoError(t, err)
		return ok.Messages, ok.Consumers
	}
	ready, consumers := counts()
	require.Equal(t, []int{0, 1}, []int{ready, consumers})

	require.NoError(t, ms[0].Ack(false))
	require.NoError(t, ms[1].Nack(false, true))
	requireQueueLen(t, ch, q, 1)
	ready, consumers = counts()
	require.Equal(t, []int{1, 1}, []int{ready, consumers}, "one message still unacked")
	m := getOne(t, ch, q)
	require.Equal(t, "2", string(m.Body))
	requireDeliveryCount(t, m, 1)
	require.NoError(t, m.Ack(false))

	require.NoError(t, ms[2].Ack(false))
	require.Eventually(t, func() bool { _, c := counts(); return c == 0 }, timeout, 10*time.Millisecond)
	// The channel is still fine.
	requireUsable(t, c)
}

// TestQuorumKeepsTransientMessages: a quorum queue keeps every message it
// confirmed across a restart, delivery mode 1 included (RabbitMQ documents
// that quorum queues persist all messages). Warren only: the shared RabbitMQ
// node cannot be restarted.
func TestQuorumKeepsTransientMessages(t *testing.T) {
	b := newRestartableBroker(t)
	if reason := quorumSupport(t, b.srv.URL); reason != "" {
		t.Skip(reason)
	}
	ch := b.channel()
	_, err := ch.QueueDeclare("quorum-restart", true, false, false, false, quorumArgs(nil))
	require.NoError(t, err)
	require.NoError(t, ch.Confirm(false))
	publishConfirmed(t, ch, "", "quorum-restart", amqp091.Publishing{Body: []byte("transient"), DeliveryMode: amqp091.Transient})
	publishConfirmed(t, ch, "", "quorum-restart", amqp091.Publishing{Body: []byte("persistent"), DeliveryMode: amqp091.Persistent})
	m := getOne(t, ch, "quorum-restart")
	require.NoError(t, m.Nack(false, true))
	requireQueueLen(t, ch, "quorum-restart", 2)

	b.restart()
	ch = b.channel()
	_, err = ch.QueueDeclare("quorum-restart", true, false, false, false, amqp091.Table{"x-queue-type": "classic"})
	requireAMQPError(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'x-queue-type'")
	ch = b.channel()
	m = getOne(t, ch, "quorum-restart")
	require.Equal(t, "persistent", string(m.Body), "the returned message went to the back")
	m = getOne(t, ch, "quorum-restart")
	require.Equal(t, "transient", string(m.Body))
	requireDeliveryCount(t, m, 1)
	requireEmpty(t, ch, "quorum-restart")
}
