package conformance

import (
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// publishMsg publishes p and fails the test on error.
func publishMsg(t testing.TB, ch *amqp091.Channel, exchange, key string, p amqp091.Publishing) {
	t.Helper()
	require.NoError(t, ch.Publish(exchange, key, false, false, p))
}

// consume starts a consumer with a client-chosen tag and returns its deliveries.
func consume(t testing.TB, ch *amqp091.Channel, queue string, args amqp091.Table) <-chan amqp091.Delivery {
	t.Helper()
	d, err := ch.Consume(queue, "", false, false, false, false, args)
	require.NoError(t, err)
	return d
}

// getOne fetches one message without acking and fails if the queue is empty.
func getOne(t testing.TB, ch *amqp091.Channel, queue string) amqp091.Delivery {
	t.Helper()
	m, ok, err := ch.Get(queue, false)
	require.NoError(t, err)
	require.True(t, ok, "queue %s is empty", queue)
	return m
}

// requireEmpty checks that basic.get finds nothing.
func requireEmpty(t testing.TB, ch *amqp091.Channel, queue string) {
	t.Helper()
	m, ok, err := ch.Get(queue, true)
	require.NoError(t, err)
	require.False(t, ok, "queue %s should be empty, got %q", queue, m.Body)
}

// requireQueueLenStays checks that a queue holds n ready messages for all of
// d. It is for the few tests that must see that something does not happen.
func requireQueueLenStays(t testing.TB, ch *amqp091.Channel, queue string, n int, d time.Duration) {
	t.Helper()
	require.Never(t, func() bool {
		q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
		require.NoError(t, err)
		return q.Messages != n
	}, d, 20*time.Millisecond, "queue %s should keep %d messages", queue, n)
}

// deadLetterTarget declares a fanout exchange and a queue bound to it. A
// queue with x-dead-letter-exchange set to the exchange dead-letters into the
// queue whatever the routing key.
func deadLetterTarget(t testing.TB, b *testBroker, ch *amqp091.Channel, suffix string) (exchange, queue string) {
	t.Helper()
	exchange = declareExchange(t, b, ch, amqp091.ExchangeFanout, suffix+"-dlx", nil)
	queue = declareQueue(t, b, ch, suffix+"-dlq", nil)
	require.NoError(t, ch.QueueBind(queue, "", exchange, false, nil))
	return exchange, queue
}

// xDeath returns the x-death header of m, checking it is an array of tables.
func xDeath(t testing.TB, m amqp091.Delivery) []amqp091.Table {
	t.Helper()
	raw, ok := m.Headers["x-death"]
	require.True(t, ok, "no x-death header in %v", m.Headers)
	arr, ok := raw.([]interface{})
	require.True(t, ok, "x-death is %T, want an array", raw)
	out := make([]amqp091.Table, 0, len(arr))
	for _, e := range arr {
		tbl, ok := e.(amqp091.Table)
		require.True(t, ok, "x-death entry is %T, want a table", e)
		out = append(out, tbl)
	}
	return out
}

// death is the expected content of one x-death entry.
type death struct {
	Count              int64
	Reason             string
	Queue              string
	Exchange           string
	RoutingKeys        []string
	OriginalExpiration string // "" when the entry must not have one
}

// requireDeath checks one x-death entry field by field, with the types
// RabbitMQ 3.10 writes: count long-long ('l'), time timestamp ('T'),
// routing-keys an array of long strings.
func requireDeath(t testing.TB, want death, got amqp091.Table) {
	t.Helper()
	keys := []string{"count", "reason", "queue", "time", "exchange", "routing-keys"}
	if want.OriginalExpiration != "" {
		keys = append(keys, "original-expiration")
	}
	gotKeys := make([]string, 0, len(got))
	for k := range got {
		gotKeys = append(gotKeys, k)
	}
	require.ElementsMatch(t, keys, gotKeys, "x-death entry fields: %v", got)

	require.Equal(t, want.Count, got["count"], "count (an int64)")
	require.Equal(t, want.Reason, got["reason"], "reason")
	require.Equal(t, want.Queue, got["queue"], "queue")
	require.Equal(t, want.Exchange, got["exchange"], "exchange")
	rks := make([]interface{}, len(want.RoutingKeys))
	for i, k := range want.RoutingKeys {
		rks[i] = k
	}
	require.Equal(t, rks, got["routing-keys"], "routing-keys")
	ts, ok := got["time"].(time.Time)
	require.True(t, ok, "time is %T, want a timestamp", got["time"])
	require.WithinDuration(t, time.Now(), ts, time.Minute, "time")
	if want.OriginalExpiration != "" {
		require.Equal(t, want.OriginalExpiration, got["original-expiration"], "original-expiration")
	}
}

// requireFirstDeath checks the x-first-death-* headers.
func requireFirstDeath(t testing.TB, m amqp091.Delivery, reason, queue, exchange string) {
	t.Helper()
	require.Equal(t, reason, m.Headers["x-first-death-reason"], "x-first-death-reason in %v", m.Headers)
	require.Equal(t, queue, m.Headers["x-first-death-queue"], "x-first-death-queue")
	require.Equal(t, exchange, m.Headers["x-first-death-exchange"], "x-first-death-exchange")
}

// requireExactReason checks that err is an *amqp091.Error whose
// reply text is exactly text.
func requireExactReason(t testing.TB, err error, text string) {
	t.Helper()
	require.Error(t, err)
	var ae *amqp091.Error
	require.ErrorAs(t, err, &ae)
	require.Equal(t, text, ae.Reason)
}

// confirmChannel opens a channel in confirm mode, for tests that must know a
// message is in its queue before they look (with a TTL, the queue length
// alone cannot tell "not there yet" from "already expired").
func confirmChannel(t testing.TB, b *testBroker) *amqp091.Channel {
	t.Helper()
	_, ch := b.channel(t)
	require.NoError(t, ch.Confirm(false))
	return ch
}

// publishConfirmed publishes on a confirm-mode channel and waits for the ack.
func publishConfirmed(t testing.TB, ch *amqp091.Channel, exchange, key string, p amqp091.Publishing) {
	t.Helper()
	dc, err := ch.PublishWithDeferredConfirm(exchange, key, false, false, p)
	require.NoError(t, err)
	select {
	case <-dc.Done():
		require.True(t, dc.Acked(), "publish nacked")
	case <-time.After(timeout):
		t.Fatal("no confirm")
	}
}

// requireQueueExpires waits until a queue is deleted by its x-expires. It
// polls less often than every expires: RabbitMQ counts a passive declare as
// use of the queue and restarts the expiry timer.
func requireQueueExpires(t testing.TB, b *testBroker, name string, expires time.Duration) {
	t.Helper()
	waitQueueGone(t, b, name, 2*expires)
}
