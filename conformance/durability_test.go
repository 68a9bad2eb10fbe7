package conformance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/amqp/amqptest"
	"github.com/warrenmq/warren/vhost"
)

// restartableBroker runs an in-process Warren on one data directory across
// restarts. Against an external broker the test is skipped: it cannot be
// restarted from here.
type restartableBroker struct {
	t    *testing.T
	dir  string
	opts []func(*amqp.Config)
	srv  *amqptest.Server // nil while stopped
}

func newRestartableBroker(t *testing.T, opts ...func(*amqp.Config)) *restartableBroker {
	t.Helper()
	if os.Getenv(externalURLEnv) != "" {
		t.Skip("needs an in-process Warren (restarts it on the same data directory)")
	}
	b := &restartableBroker{t: t, dir: t.TempDir(), opts: opts}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *restartableBroker) start() {
	opts := append([]func(*amqp.Config){func(c *amqp.Config) { c.DataDir = b.dir }}, b.opts...)
	b.srv = amqptest.NewServer(b.t, opts...)
}

func (b *restartableBroker) stop() {
	if b.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(b.t, b.srv.Shutdown(ctx))
	b.srv = nil
}

func (b *restartableBroker) restart() {
	b.stop()
	b.start()
}

func (b *restartableBroker) channel() *amqp091.Channel {
	return dialChannel(b.t, b.srv.URL)
}

// TestRestartKeepsDurableState declares durable and transient topology,
// publishes persistent and transient messages, restarts, and checks exactly
// what survived: durable definitions with their arguments, bindings between
// durable ends, and persistent messages in durable queues, in order.
func TestRestartKeepsDurableState(t *testing.T) {
	b := newRestartableBroker(t)
	ch := b.channel()
	require.NoError(t, ch.Confirm(false))

	require.NoError(t, ch.ExchangeDeclare("durable.x", "topic", true, false, false, false, amqp091.Table{"alternate-exchange": "ae"}))
	require.NoError(t, ch.ExchangeDeclare("transient.x", "fanout", false, false, false, false, nil))
	args := amqp091.Table{"x-max-priority": int32(5), "x-message-ttl": int64(600000)}
	_, err := ch.QueueDeclare("durable.q", true, false, false, false, args)
	require.NoError(t, err)
	_, err = ch.QueueDeclare("transient.q", false, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind("durable.q", "order.*", "durable.x", false, nil))
	require.NoError(t, ch.QueueBind("transient.q", "", "transient.x", false, nil))
	require.NoError(t, ch.QueueBind("transient.q", "#", "durable.x", false, nil)) // a transient end: not kept

	publishN := func(exchange, key string, mode uint8, prio uint8, bodies ...string) {
		for _, body := range bodies {
			publishConfirmed(t, ch, exchange, key, amqp091.Publishing{DeliveryMode: mode, Priority: prio, Body: []byte(body)})
		}
	}
	publishN("durable.x", "order.placed", amqp091.Persistent, 1, "p1", "p2")
	publishN("durable.x", "order.placed", amqp091.Transient, 1, "t1")
	publishN("durable.x", "order.placed", amqp091.Persistent, 4, "p3-high")
	publishN("", "transient.q", amqp091.Persistent, 0, "lost-with-queue")

	// One message delivered but not acked comes back redelivered; one acked
	// message does not come back.
	m := getOne(t, ch, "durable.q")
	require.Equal(t, "p3-high", string(m.Body))
	m2 := getOne(t, ch, "durable.q")
	require.Equal(t, "p1", string(m2.Body))
	require.NoError(t, m2.Ack(false))
	// A synchronous call behind the ack: the ack has been handled when it returns.
	_, err = ch.QueueDeclarePassive("durable.q", true, false, false, false, nil)
	require.NoError(t, err)

	b.restart()
	ch = b.channel()

	require.NoError(t, ch.ExchangeDeclarePassive("durable.x", "topic", true, false, false, false, nil))
	// Equivalence still holds with the stored arguments' types.
	require.NoError(t, ch.ExchangeDeclare("durable.x", "topic", true, false, false, false, amqp091.Table{"alternate-exchange": "ae"}))
	q, err := ch.QueueDeclare("durable.q", true, false, false, false, args)
	require.NoError(t, err)
	require.Equal(t, 2, q.Messages, "p3-high (unacked at restart) and p2; t1 was transient, p1 acked")

	for _, gone := range []string{"transient.x"} {
		err := b.channel().ExchangeDeclarePassive(gone, "fanout", false, false, false, false, nil)
		requireAMQPError(t, err, amqp091.NotFound, "")
	}
	_, err = b.channel().QueueDeclarePassive("transient.q", false, false, false, false, nil)
	requireAMQPError(t, err, amqp091.NotFound, "")

	var got []string
	for range 2 {
		m := getOne(t, ch, "durable.q")
		require.True(t, m.Redelivered, "recovered messages are marked redelivered")
		got = append(got, fmt.Sprintf("%s/%d", m.Body, m.Priority))
		require.NoError(t, m.Ack(false))
	}
	require.Equal(t, []string{"p3-high/4", "p2/1"}, got, "priority order survives the restart")

	// The binding between durable ends survived, the one to a transient queue did not.
	require.NoError(t, ch.Publish("durable.x", "order.shipped", false, false, amqp091.Publishing{Body: []byte("after")}))
	requireQueueLen(t, ch, "durable.q", 1)

	// Acked messages stay acked across another restart.
	_, ok, err := ch.Get("durable.q", true)
	require.NoError(t, err)
	require.True(t, ok)
	b.restart()
	q, err = b.channel().QueueDeclarePassive("durable.q", true, false, false, false, nil)
	require.NoError(t, err)
	require.Zero(t, q.Messages)
}

// TestRestartFanoutSharesOneBody: a persistent message fanned out to several
// durable queues is stored once; each queue gets it back after a restart,
// and acking it in one queue leaves the others' copies.
func TestRestartFanoutSharesOneBody(t *testing.T) {
	b := newRestartableBroker(t)
	ch := b.channel()
	require.NoError(t, ch.ExchangeDeclare("fan", "fanout", true, false, false, false, nil))
	for _, q := range []string{"a", "b", "c"} {
		_, err := ch.QueueDeclare(q, true, false, false, false, nil)
		require.NoError(t, err)
		require.NoError(t, ch.QueueBind(q, "", "fan", false, nil))
	}
	require.NoError(t, ch.Confirm(false))
	publishConfirmed(t, ch, "fan", "", amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte("shared")})

	require.NoError(t, getOne(t, ch, "a").Ack(false))
	_, err := ch.QueueDeclarePassive("a", true, false, false, false, nil) // the ack is handled
	require.NoError(t, err)

	b.restart()
	ch = b.channel()
	for q, want := range map[string]int{"a": 0, "b": 1, "c": 1} {
		info, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
		require.NoError(t, err)
		require.Equal(t, want, info.Messages, q)
	}
	m, ok, err := ch.Get("c", true)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "shared", string(m.Body))
}

// TestRestartExpiredWhileDown: TTL deadlines are absolute, so a message that
// expired while the broker was down is dead-lettered at start.
func TestRestartExpiredWhileDown(t *testing.T) {
	b := newRestartableBroker(t)
	ch := b.channel()
	_, err := ch.QueueDeclare("dlq", true, false, false, false, nil)
	require.NoError(t, err)
	_, err = ch.QueueDeclare("ttl", true, false, false, false, amqp091.Table{
		"x-message-ttl": int32(300), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq",
	})
	require.NoError(t, err)
	require.NoError(t, ch.Confirm(false))
	publishConfirmed(t, ch, "", "ttl", amqp091.Publishing{DeliveryMode: amqp091.Persistent, Body: []byte("late")})

	b.stop()
	time.Sleep(400 * time.Millisecond) // the TTL passes while the broker is down
	b.start()
	ch = b.channel()
	requireQueueLen(t, ch, "dlq", 1)
	requireQueueLen(t, ch, "ttl", 0)
	m, ok, err := ch.Get("dlq", true)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "expired", xDeath(t, m)[0]["reason"])
}

// TestStorageFailureNacksAndKeepsServing: when the disk write behind a
// persistent publish fails, the publisher gets basic.nack, the broker logs
// and stays up, and publishes succeed again once the disk does.
func TestStorageFailureNacksAndKeepsServing(t *testing.T) {
	var failing atomic.Bool
	b := newRestartableBroker(t, func(c *amqp.Config) {
		c.StorageFault = func() error {
			if failing.Load() {
				return errors.New("injected: no space left on device")
			}
			return nil
		}
	})
	ch := b.channel()
	_, err := ch.QueueDeclare("disk", true, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 10))
	publish := func(body string, mode uint8) bool {
		require.NoError(t, ch.Publish("", "disk", false, false, amqp091.Publishing{DeliveryMode: mode, Body: []byte(body)}))
		return recvConfirm(t, confirms).Ack
	}
	require.True(t, publish("before", amqp091.Persistent))
	failing.Store(true)
	require.False(t, publish("during", amqp091.Persistent), "a failed disk write is nacked")
	require.True(t, publish("transient", amqp091.Transient), "a transient message needs no disk")
	failing.Store(false)
	require.True(t, publish("after", amqp091.Persistent))

	// The channel and other connections are fine.
	requireUsable(t, dialChannel(t, b.srv.URL))
	requireQueueLen(t, ch, "disk", 4) // a nack means "may not be enqueued"; here it stays queued

	// What was confirmed is on disk; the nacked message is not.
	b.restart()
	require.Equal(t, []string{"before", "after"}, drain(t, b.channel(), "disk"))
}

// TestRestartKeepsPolicies: policies are stored and shape the queues they
// match after a restart.
func TestRestartKeepsPolicies(t *testing.T) {
	b := newRestartableBroker(t)
	_, err := b.srv.VHost("/").Apply(vhost.SetPolicy{Name: "cap", Pattern: `^capped\.`, Definition: map[string]any{"max-length": int64(1)}})
	require.NoError(t, err)
	b.restart()
	ch := b.channel()
	_, err = ch.QueueDeclare("capped.q", true, false, false, false, nil)
	require.NoError(t, err)
	for _, body := range []string{"1", "2"} {
		require.NoError(t, ch.Publish("", "capped.q", false, false, amqp091.Publishing{Body: []byte(body)}))
	}
	require.Eventually(t, func() bool {
		q, err := ch.QueueDeclarePassive("capped.q", true, false, false, false, nil)
		return err == nil && q.Messages == 1
	}, timeout, 10*time.Millisecond, "the stored policy's max-length applies")
	require.Equal(t, []string{"2"}, drain(t, ch, "capped.q"), "max-length drops from the head")
	require.Len(t, b.srv.VHost("/").Policies(), 1)
}
