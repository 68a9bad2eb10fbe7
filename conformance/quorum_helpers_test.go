package conformance

import (
	"errors"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// quorumUnsupported is the tail of the 406 a broker without quorum queues
// answers to `x-queue-type: quorum` (Warren before issue 12, and RabbitMQ's
// own text for an unknown type).
const quorumUnsupported = "unsupported queue type 'quorum'"

// startQuorumBroker starts a broker for a quorum queue test and skips the test
// when the broker refuses quorum queues: the tests pin RabbitMQ 3.10.8's
// behaviour and run against Warren as soon as it declares them.
func startQuorumBroker(t *testing.T) *testBroker {
	t.Helper()
	b := startBroker(t)
	if reason := quorumSupport(t, b.URL); reason != "" {
		t.Skip(reason)
	}
	return b
}

// quorumSupport declares and deletes a quorum queue on its own connection.
// It returns a skip reason when the broker answers 406 "unsupported queue
// type", "" when the declare works, and fails the test on anything else.
func quorumSupport(t testing.TB, url string) string {
	t.Helper()
	conn, err := amqp091.DialConfig(url, amqp091.Config{Dial: amqp091.DefaultDial(timeout)})
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	name := uniqueName(t, "quorum-probe")
	_, err = ch.QueueDeclare(name, true, false, false, false, amqp091.Table{"x-queue-type": "quorum"})
	var ae *amqp091.Error
	if errors.As(err, &ae) && ae.Code == amqp091.PreconditionFailed && strings.Contains(ae.Reason, quorumUnsupported) {
		return "the broker refuses quorum queues: " + ae.Reason
	}
	require.NoError(t, err, "declaring a quorum queue")
	_, err = ch.QueueDelete(name, false, false, false)
	require.NoError(t, err)
	return ""
}

// quorumArgs is {x-queue-type: quorum} plus extra.
func quorumArgs(extra amqp091.Table) amqp091.Table {
	args := amqp091.Table{"x-queue-type": "quorum"}
	for k, v := range extra {
		args[k] = v
	}
	return args
}

// declareQuorum declares a durable quorum queue with a unique name and the
// extra arguments, and deletes it when the test ends.
func declareQuorum(t testing.TB, b *testBroker, ch *amqp091.Channel, suffix string, extra amqp091.Table) string {
	t.Helper()
	name := uniqueName(t, suffix)
	_, err := ch.QueueDeclare(name, true, false, false, false, quorumArgs(extra))
	require.NoError(t, err)
	b.cleanupQueue(t, name)
	return name
}

// getEventually polls basic.get until a message comes: a quorum queue
// applies returns and enqueues through its log, so a message nacked or
// published a moment ago may not be ready yet.
func getEventually(t testing.TB, ch *amqp091.Channel, queue string, autoAck bool) amqp091.Delivery {
	t.Helper()
	var m amqp091.Delivery
	require.Eventually(t, func() bool {
		var ok bool
		var err error
		m, ok, err = ch.Get(queue, autoAck)
		require.NoError(t, err)
		return ok
	}, timeout, 10*time.Millisecond, "no message in %s", queue)
	return m
}

// deliveryCount returns the x-delivery-count header, checking that it is a
// long-long ('l', int64 in amqp091-go) as RabbitMQ 3.10 writes it; present
// is false when the header is absent.
func deliveryCount(t testing.TB, m amqp091.Delivery) (count int64, present bool) {
	t.Helper()
	v, ok := m.Headers["x-delivery-count"]
	if !ok {
		return 0, false
	}
	n, isLong := v.(int64)
	require.True(t, isLong, "x-delivery-count is %T (%v), want a long-long", v, v)
	return n, true
}

// requireDeliveryCount checks the x-delivery-count header of m.
func requireDeliveryCount(t testing.TB, m amqp091.Delivery, want int64) {
	t.Helper()
	n, ok := deliveryCount(t, m)
	require.True(t, ok, "no x-delivery-count in %v (body %q)", m.Headers, m.Body)
	require.Equal(t, want, n, "x-delivery-count of %q", m.Body)
}

// requireNoDeliveryCount checks that m carries no x-delivery-count header.
func requireNoDeliveryCount(t testing.TB, m amqp091.Delivery) {
	t.Helper()
	_, ok := m.Headers["x-delivery-count"]
	require.False(t, ok, "x-delivery-count in %v (body %q)", m.Headers, m.Body)
}

// publishEachConfirmed publishes each body on a confirm-mode channel and
// waits for its ack before the next: a quorum queue's overflow state
// changes only after an enqueue is applied, so pipelined publishes could
// race it.
func publishEachConfirmed(t testing.TB, ch *amqp091.Channel, queue string, bodies ...string) {
	t.Helper()
	for _, body := range bodies {
		publishConfirmed(t, ch, "", queue, amqp091.Publishing{Body: []byte(body)})
	}
}

// confirmOf publishes one message on a confirm-mode channel and returns
// whether the broker acked it (false: basic.nack).
func confirmOf(t testing.TB, ch *amqp091.Channel, queue, body string) bool {
	t.Helper()
	dc, err := ch.PublishWithDeferredConfirm("", queue, false, false, amqp091.Publishing{Body: []byte(body)})
	require.NoError(t, err)
	select {
	case <-dc.Done():
		return dc.Acked()
	case <-time.After(timeout):
		t.Fatalf("no confirm for %q", body)
		return false
	}
}

// recvBodies reads n deliveries and returns their bodies, acking none.
func recvBodies(t testing.TB, d <-chan amqp091.Delivery, n int) ([]string, []amqp091.Delivery) {
	t.Helper()
	bodies := make([]string, 0, n)
	ms := make([]amqp091.Delivery, 0, n)
	for range n {
		m := recv(t, d)
		bodies = append(bodies, string(m.Body))
		ms = append(ms, m)
	}
	return bodies, ms
}
