package conformance

import (
	"strconv"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
	"github.com/warrenmq/warren/amqp"
)

// The delayed-message plugin is not installed on the RabbitMQ these tests
// are checked against; its source (rabbitmq-delayed-message-exchange 3.10)
// defines the behaviour pinned here, so these tests need Warren.

// delayedExchange declares an x-delayed-message exchange routing as kind,
// with a queue bound to it by key.
func delayedExchange(t *testing.T, b *testBroker, ch *amqp091.Channel, kind, key string, durable bool) (x, q string) {
	t.Helper()
	x = uniqueName(t, "delayed")
	require.NoError(t, ch.ExchangeDeclare(x, "x-delayed-message", durable, false, false, false, amqp091.Table{"x-delayed-type": kind}))
	b.cleanupExchange(t, x)
	q = uniqueName(t, "q")
	_, err := ch.QueueDeclare(q, durable, false, false, false, nil)
	require.NoError(t, err)
	b.cleanupQueue(t, q)
	require.NoError(t, ch.QueueBind(q, key, x, false, nil))
	return x, q
}

func skipWithoutDelayedPlugin(t *testing.T, b *testBroker) {
	if b.External {
		t.Skip("RabbitMQ here has no rabbitmq_delayed_message_exchange")
	}
}

// TestDelayedDeliversWhenDue: a message with a positive x-delay reaches its
// queue no sooner than the delay, in due order, with x-delay set to the
// negative delay (signedint), as the plugin leaves it.
func TestDelayedDeliversWhenDue(t *testing.T) {
	b := startBroker(t)
	skipWithoutDelayedPlugin(t, b)
	_, ch := b.channel(t)
	x, q := delayedExchange(t, b, ch, "direct", "k", false)
	d := consume(t, ch, q, nil)
	start := time.Now()
	for _, delay := range []any{int32(600), int64(200), "400", 300.7} {
		publishMsg(t, ch, x, "k", amqp091.Publishing{Headers: amqp091.Table{"x-delay": delay}, Body: []byte(strconv.Quote(time.Now().String()))})
	}
	var got []any
	for range 4 {
		m := recv(t, d)
		got = append(got, m.Headers["x-delay"])
	}
	// Due times are whole milliseconds, as the plugin's: up to 1 ms early.
	require.GreaterOrEqual(t, time.Since(start), 599*time.Millisecond)
	require.Equal(t, []any{int32(-200), int32(-300), int32(-400), int32(-600)}, got)
}

// TestDelayedImmediate: no x-delay, zero, negative, too long or of another
// type routes at once, header untouched.
func TestDelayedImmediate(t *testing.T) {
	b := startBroker(t)
	skipWithoutDelayedPlugin(t, b)
	_, ch := b.channel(t)
	x, q := delayedExchange(t, b, ch, "direct", "k", false)
	for _, h := range []amqp091.Table{nil, {"x-delay": int32(0)}, {"x-delay": int32(-5)}, {"x-delay": int64(1) << 33}, {"x-delay": true}} {
		publishMsg(t, ch, x, "k", amqp091.Publishing{Headers: h, Body: []byte("now")})
	}
	requireQueueLen(t, ch, q, 5)
	m := getOne(t, ch, q)
	require.Nil(t, m.Headers)
	m = getOne(t, ch, q)
	require.Equal(t, int32(0), m.Headers["x-delay"])
}

// TestDelayedRoutesAsItsType: when due, the message is routed by the
// x-delayed-type's logic: topic patterns, headers, fanout.
func TestDelayedRoutesAsItsType(t *testing.T) {
	b := startBroker(t)
	skipWithoutDelayedPlugin(t, b)
	_, ch := b.channel(t)
	x, q := delayedExchange(t, b, ch, "topic", "orders.*.eu", false)
	d := consume(t, ch, q, nil)
	publishMsg(t, ch, x, "orders.new.us", amqp091.Publishing{Headers: amqp091.Table{"x-delay": int32(50)}, Body: []byte("us")})
	publishMsg(t, ch, x, "orders.new.eu", amqp091.Publishing{Headers: amqp091.Table{"x-delay": int32(100)}, Body: []byte("eu")})
	require.Equal(t, "eu", string(recv(t, d).Body))
	requireNoDelivery(t, d)
}

// TestDelayedMandatoryReturned: the plugin's route answers nothing for a
// delayed message, so a mandatory publish is returned at once (312
// NO_ROUTE) and still delivered when due; its confirm is an ack.
func TestDelayedMandatoryReturned(t *testing.T) {
	b := startBroker(t)
	skipWithoutDelayedPlugin(t, b)
	_, ch := b.channel(t)
	x, q := delayedExchange(t, b, ch, "fanout", "", false)
	returns := ch.NotifyReturn(make(chan amqp091.Return, 1))
	require.NoError(t, ch.Confirm(false))
	dc, err := ch.PublishWithDeferredConfirm(x, "k", true, false, amqp091.Publishing{Headers: amqp091.Table{"x-delay": int32(200)}, Body: []byte("later")})
	require.NoError(t, err)
	select {
	case r := <-returns:
		require.Equal(t, uint16(amqp091.NoRoute), r.ReplyCode)
		require.Equal(t, "NO_ROUTE", r.ReplyText)
	case <-time.After(timeout):
		t.Fatal("no basic.return")
	}
	require.True(t, dc.Wait())
	requireQueueLen(t, ch, q, 1)
	require.Equal(t, int32(-200), getOne(t, ch, q).Headers["x-delay"])
}

// TestDelayedDeclareErrors: the plugin's answers for a missing or bad
// x-delayed-type.
func TestDelayedDeclareErrors(t *testing.T) {
	b := startBroker(t)
	skipWithoutDelayedPlugin(t, b)
	for _, tc := range []struct {
		name string
		args amqp091.Table
		code int
		text string
	}{
		{"missing", nil, amqp091.PreconditionFailed, "PRECONDITION_FAILED - Invalid argument, 'x-delayed-type' must be an existing exchange type"},
		{"not a string", amqp091.Table{"x-delayed-type": int32(1)}, amqp091.PreconditionFailed, "PRECONDITION_FAILED - Invalid argument, 'x-delayed-type' must be an existing exchange type"},
		{"itself", amqp091.Table{"x-delayed-type": "x-delayed-message"}, amqp091.PreconditionFailed, "PRECONDITION_FAILED - Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'"},
		{"unknown", amqp091.Table{"x-delayed-type": "nope"}, amqp091.CommandInvalid, "COMMAND_INVALID - unknown exchange type 'nope'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ch := b.channel(t)
			closed := notifyClose(ch)
			err := ch.ExchangeDeclare(uniqueName(t, "x"), "x-delayed-message", false, true, false, false, tc.args)
			requireAMQPError(t, err, tc.code, tc.text)
			requireClosedWith(t, closed, tc.code, tc.text)
		})
	}
}

// TestDelayedBadDelayClosesConnection: an x-delay string that is not an
// integer crashes the plugin's route, and RabbitMQ closes the connection
// with 541 INTERNAL_ERROR.
func TestDelayedBadDelayClosesConnection(t *testing.T) {
	b := startBroker(t)
	skipWithoutDelayedPlugin(t, b)
	conn, ch := b.channel(t)
	x, _ := delayedExchange(t, b, ch, "direct", "k", false)
	closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
	require.NoError(t, ch.Publish(x, "k", false, false, amqp091.Publishing{Headers: amqp091.Table{"x-delay": "soon"}}))
	select {
	case err := <-closed:
		require.NotNil(t, err)
		require.Equal(t, amqp091.InternalError, err.Code)
	case <-time.After(timeout):
		t.Fatal("connection not closed")
	}
}

// TestDelayedSurvivesRestart: a persistent message to a durable delayed
// exchange is confirmed once on disk, survives a restart, and is delivered
// when due; one that fell due while the broker was down is delivered at
// start.
func TestDelayedSurvivesRestart(t *testing.T) {
	b := newRestartableBroker(t)
	ch := b.channel()
	require.NoError(t, ch.ExchangeDeclare("sched", "x-delayed-message", true, false, false, false, amqp091.Table{"x-delayed-type": "direct"}))
	_, err := ch.QueueDeclare("due", true, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind("due", "k", "sched", false, nil))
	require.NoError(t, ch.Confirm(false))
	// The second is due long after a restart, even a slow one under load,
	// so the queue holds only the first when the broker is back.
	for _, delay := range []int32{300, 3000} {
		dc, err := ch.PublishWithDeferredConfirm("sched", "k", false, false, amqp091.Publishing{
			DeliveryMode: amqp091.Persistent, Headers: amqp091.Table{"x-delay": delay}, Body: []byte(strconv.Itoa(int(delay))),
		})
		require.NoError(t, err)
		require.True(t, dc.Wait())
	}
	// A transient one is lost with the restart, as in the plugin (its
	// Mnesia table is on disk, but Warren keeps only persistent messages).
	require.NoError(t, ch.Publish("sched", "k", false, false, amqp091.Publishing{Headers: amqp091.Table{"x-delay": int32(300)}, Body: []byte("transient")}))
	b.stop()
	time.Sleep(500 * time.Millisecond) // the first falls due while down
	b.start()
	ch = b.channel()
	requireQueueLen(t, ch, "due", 1)
	m := getOne(t, ch, "due")
	require.Equal(t, "300", string(m.Body))
	require.Equal(t, int32(-300), m.Headers["x-delay"])
	require.NoError(t, m.Ack(false))
	requireQueueLen(t, ch, "due", 1)
	m = getOne(t, ch, "due")
	require.Equal(t, "3000", string(m.Body))
	require.NoError(t, m.Ack(false))
	_, err = ch.QueueDeclarePassive("due", true, false, false, false, nil) // the acks are in
	require.NoError(t, err)
	// Delivered messages are gone from the exchange: another restart
	// brings nothing back.
	b.restart()
	ch = b.channel()
	time.Sleep(200 * time.Millisecond)
	requireQueueLen(t, ch, "due", 0)
}

// TestDelayedExchangeDeletedDropsMessages: deleting a delayed exchange
// drops what waits there.
func TestDelayedExchangeDeletedDropsMessages(t *testing.T) {
	b := startBroker(t)
	skipWithoutDelayedPlugin(t, b)
	_, ch := b.channel(t)
	x, q := delayedExchange(t, b, ch, "direct", "k", true)
	publishMsg(t, ch, x, "k", amqp091.Publishing{DeliveryMode: amqp091.Persistent, Headers: amqp091.Table{"x-delay": int32(200)}})
	require.NoError(t, ch.ExchangeDelete(x, false, false))
	time.Sleep(400 * time.Millisecond)
	requireQueueLen(t, ch, q, 0)
}

// TestDelayedPagedBacklog: with a memory budget far smaller than the
// backlog, delayed messages (persistent and transient, published in no
// particular due order) spill to disk and all arrive, in due order; the
// persistent ones also across a restart.
func TestDelayedPagedBacklog(t *testing.T) {
	b := newRestartableBroker(t, func(c *amqp.Config) { c.QueueMemoryBudget = 64 << 10 })
	ch := b.channel()
	require.NoError(t, ch.ExchangeDeclare("paged", "x-delayed-message", true, false, false, false, amqp091.Table{"x-delayed-type": "fanout"}))
	_, err := ch.QueueDeclare("out", true, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind("out", "", "paged", false, nil))
	require.NoError(t, ch.Confirm(false))
	const n = 3000
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, n))
	for i := range n {
		delay := 800 + (i*7919)%2000 // 800..2799 ms, scattered
		mode := amqp091.Transient
		if i%2 == 0 {
			mode = amqp091.Persistent
		}
		due := time.Now().UnixMilli() + int64(delay)
		require.NoError(t, ch.Publish("paged", "", false, false, amqp091.Publishing{
			DeliveryMode: mode, Headers: amqp091.Table{"x-delay": int32(delay)}, Body: []byte(strconv.FormatInt(due, 10)),
		}))
		if i%10 == 9 {
			// Confirmed in small groups, so the broker's clock reading
			// (its due time) trails the client's by little.
			for range 10 {
				require.True(t, (<-confirms).Ack)
			}
		}
	}
	d := consume(t, ch, "out", nil)
	var last int64
	for range n {
		m := recv(t, d)
		due, _ := strconv.ParseInt(string(m.Body), 10, 64)
		// The broker reads its clock after the client, which on a busy
		// machine under -race can be a good fraction of a second later, so
		// only clearly earlier due times may not come later.
		require.GreaterOrEqual(t, due+500, last, "out of due order")
		require.GreaterOrEqual(t, time.Now().UnixMilli()+3, due, "delivered early")
		last = max(last, due)
		require.NoError(t, m.Ack(false))
	}

	// Across a restart: the persistent half of a paged backlog.
	for i := range n {
		mode := amqp091.Transient
		if i%2 == 0 {
			mode = amqp091.Persistent
		}
		require.NoError(t, ch.Publish("paged", "", false, false, amqp091.Publishing{
			DeliveryMode: mode, Headers: amqp091.Table{"x-delay": int32(1000 + i%500)}, Body: []byte("r"),
		}))
	}
	for range n {
		require.True(t, (<-confirms).Ack)
	}
	b.restart()
	ch = b.channel()
	d = consume(t, ch, "out", nil)
	for range n / 2 {
		require.NoError(t, recv(t, d).Ack(false))
	}
	requireNoDelivery(t, d)
}
