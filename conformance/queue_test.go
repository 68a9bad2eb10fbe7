package conformance

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

func TestQueueServerNamed(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(q.Name, "amq.gen-"), q.Name)
	require.Zero(t, q.Messages)
	require.Zero(t, q.Consumers)

	q2, err := ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)
	require.NotEqual(t, q.Name, q2.Name)

	// The default exchange reaches it by its generated name.
	publish(t, ch, "", q.Name, "m")
	requireQueueLen(t, ch, q.Name, 1)
}

func TestQueueDeclareOkCounts(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	name := declareQueue(t, b, ch, "q", nil)
	for i := range 3 {
		publish(t, ch, "", name, fmt.Sprint(i))
	}
	requireQueueLen(t, ch, name, 3)

	_, other := b.channel(t)
	require.NoError(t, other.Qos(1, 0, false))
	_, err := other.Consume(name, "", false, false, false, false, nil)
	require.NoError(t, err)
	_, err = other.Consume(name, "", false, false, false, false, nil)
	require.NoError(t, err)

	// Declare-ok counts ready messages only, not unacknowledged ones.
	require.Eventually(t, func() bool {
		q, err := ch.QueueDeclare(name, false, false, false, false, nil)
		require.NoError(t, err)
		return q.Consumers == 2 && q.Messages == 1
	}, timeout, 20*time.Millisecond)
}

func TestQueueErrors(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, ch *amqp091.Channel) (error, int, string)
	}{
		{"passive declare of a missing queue", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			name := uniqueName(t, "q")
			_, err := ch.QueueDeclarePassive(name, false, false, false, false, nil)
			return err, amqp091.NotFound, "NOT_FOUND - no queue '" + name + "' in vhost '/'"
		}},
		{"reserved amq. prefix", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			name := "amq." + uniqueName(t, "q")
			_, err := ch.QueueDeclare(name, false, true, false, false, nil)
			return err, amqp091.AccessRefused, "ACCESS_REFUSED - queue name '" + name + "' contains reserved prefix 'amq.*'"
		}},
		{"redeclare as durable", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			name := declareQueue(t, b, ch, "q", nil)
			_, err := ch.QueueDeclare(name, true, false, false, false, nil)
			return err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'durable' for queue '" + name + "' in vhost '/': received 'true' but current is 'false'"
		}},
		{"redeclare as auto-delete", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			name := declareQueue(t, b, ch, "q", nil)
			_, err := ch.QueueDeclare(name, false, true, false, false, nil)
			return err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue '" + name + "' in vhost '/': received 'true' but current is 'false'"
		}},
		{"redeclare with a new argument", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			name := declareQueue(t, b, ch, "q", nil)
			_, err := ch.QueueDeclare(name, false, false, false, false, amqp091.Table{"x-max-length": int32(10)})
			return err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '" + name + "' in vhost '/': received the value '10' of type 'signedint' but current is none"
		}},
		{"delete if-unused with a consumer", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			name := declareQueue(t, b, ch, "q", nil)
			_, other := b.channel(t)
			_, err := other.Consume(name, "", false, false, false, false, nil)
			require.NoError(t, err)
			_, err = ch.QueueDelete(name, true, false, false)
			return err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - queue '" + name + "' in vhost '/' in use"
		}},
		{"delete if-empty with messages", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			name := declareQueue(t, b, ch, "q", nil)
			publish(t, ch, "", name, "m")
			requireQueueLen(t, ch, name, 1)
			_, err := ch.QueueDelete(name, false, true, false)
			return err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - queue '" + name + "' in vhost '/' not empty"
		}},
		{"purge a missing queue", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			name := uniqueName(t, "q")
			_, err := ch.QueuePurge(name, false)
			return err, amqp091.NotFound, "NOT_FOUND - no queue '" + name + "' in vhost '/'"
		}},
		{"consume from a missing queue", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			name := uniqueName(t, "q")
			_, err := ch.Consume(name, "", false, false, false, false, nil)
			return err, amqp091.NotFound, "NOT_FOUND - no queue '" + name + "' in vhost '/'"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, ch := b.channel(t)
			other, err := conn.Channel()
			require.NoError(t, err)
			err, code, text := tc.run(t, ch)
			requireAMQPError(t, err, code, text)
			require.Eventually(t, ch.IsClosed, timeout, 10*time.Millisecond)
			requireUsable(t, other)
		})
	}
}

// TestQueueDeleteMissing: deleting a queue that does not exist succeeds with
// a count of 0 in RabbitMQ 3.10.
func TestQueueDeleteMissing(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	n, err := ch.QueueDelete(uniqueName(t, "q"), false, false, false)
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestQueueExclusiveLocked(t *testing.T) {
	b := startBroker(t)
	_, owner := b.channel(t)
	q, err := owner.QueueDeclare(uniqueName(t, "q"), false, false, true, false, nil)
	require.NoError(t, err)
	locked := "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '" + q.Name + "' in vhost '/'"

	for _, tc := range []struct {
		name string
		run  func(ch *amqp091.Channel) error
	}{
		{"declare", func(ch *amqp091.Channel) error {
			_, err := ch.QueueDeclare(q.Name, false, false, true, false, nil)
			return err
		}},
		{"passive declare", func(ch *amqp091.Channel) error {
			_, err := ch.QueueDeclarePassive(q.Name, false, false, true, false, nil)
			return err
		}},
		{"consume", func(ch *amqp091.Channel) error {
			_, err := ch.Consume(q.Name, "", false, false, false, false, nil)
			return err
		}},
		{"get", func(ch *amqp091.Channel) error {
			_, _, err := ch.Get(q.Name, false)
			return err
		}},
		{"purge", func(ch *amqp091.Channel) error {
			_, err := ch.QueuePurge(q.Name, false)
			return err
		}},
		{"delete", func(ch *amqp091.Channel) error {
			_, err := ch.QueueDelete(q.Name, false, false, false)
			return err
		}},
		{"bind", func(ch *amqp091.Channel) error {
			return ch.QueueBind(q.Name, "k", "amq.direct", false, nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ch := b.channel(t)
			requireAMQPError(t, tc.run(ch), amqp091.ResourceLocked, locked)
		})
	}

	// Publishing to it from elsewhere is allowed, and the owner still works.
	_, ch := b.channel(t)
	publish(t, ch, "", q.Name, "m")
	requireQueueLen(t, owner, q.Name, 1)
}

func TestQueueExclusiveDeletedWithConnection(t *testing.T) {
	b := startBroker(t)
	conn, ch := b.channel(t)
	q, err := ch.QueueDeclare(uniqueName(t, "q"), false, false, true, false, nil)
	require.NoError(t, err)
	b.cleanupQueue(t, q.Name)

	// Closing the channel is not enough: the queue belongs to the connection.
	require.NoError(t, ch.Close())
	_, check := b.channel(t)
	_, err = check.QueueDeclarePassive(q.Name, false, false, true, false, nil)
	requireAMQPError(t, err, amqp091.ResourceLocked, "")

	require.NoError(t, conn.Close())
	requireQueueGone(t, b, q.Name)
}

func TestQueueAutoDelete(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	name := uniqueName(t, "q")
	_, err := ch.QueueDeclare(name, false, true, false, false, nil)
	require.NoError(t, err)
	b.cleanupQueue(t, name)

	// Never consumed: an auto-delete queue stays.
	publish(t, ch, "", name, "m")
	requireQueueLen(t, ch, name, 1)

	_, err = ch.Consume(name, "c1", true, false, false, false, nil)
	require.NoError(t, err)
	_, err = ch.Consume(name, "c2", true, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.Cancel("c1", false))
	_, err = ch.QueueDeclarePassive(name, false, true, false, false, nil)
	require.NoError(t, err, "one consumer is left")

	require.NoError(t, ch.Cancel("c2", false))
	requireQueueGone(t, b, name)
}

func TestQueueAutoDeleteOnChannelClose(t *testing.T) {
	b := startBroker(t)
	conn, ch := b.channel(t)
	name := uniqueName(t, "q")
	_, err := ch.QueueDeclare(name, false, true, false, false, nil)
	require.NoError(t, err)
	b.cleanupQueue(t, name)
	consumer, err := conn.Channel()
	require.NoError(t, err)
	_, err = consumer.Consume(name, "", false, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, consumer.Close())
	requireQueueGone(t, b, name)
}

func TestQueueBindUnbind(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	x := declareExchange(t, b, ch, "direct", "x", nil)
	q := declareQueue(t, b, ch, "q", nil)

	require.NoError(t, ch.QueueBind(q, "k", x, false, nil))
	require.NoError(t, ch.QueueBind(q, "k", x, false, nil), "binding twice is idempotent")
	publish(t, ch, x, "k", "1")
	requireQueueLen(t, ch, q, 1)
	require.Equal(t, []string{"1"}, drain(t, ch, q), "one binding, one copy")

	require.NoError(t, ch.QueueUnbind(q, "k", x, nil))
	require.NoError(t, ch.QueueUnbind(q, "k", x, nil), "unbinding a missing binding is ok")
	publish(t, ch, x, "k", "2")
	publish(t, ch, "", q, "3")
	requireQueueLen(t, ch, q, 1)
	require.Equal(t, []string{"3"}, drain(t, ch, q))
}

func TestQueuePurgeAndDeleteCounts(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)
	for i := range 5 {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	requireQueueLen(t, ch, q, 5)

	// An unacknowledged message is neither purged nor counted.
	m, ok, err := ch.Get(q, false)
	require.NoError(t, err)
	require.True(t, ok)
	n, err := ch.QueuePurge(q, false)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	requireQueueLen(t, ch, q, 0)
	require.NoError(t, m.Reject(true))
	requireQueueLen(t, ch, q, 1)

	publish(t, ch, "", q, "more")
	requireQueueLen(t, ch, q, 2)
	n, err = ch.QueueDelete(q, false, false, false)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	requireQueueGone(t, b, q)
}

// requireQueueGone waits until a passive declare says 404.
func requireQueueGone(t testing.TB, b *testBroker, name string) {
	t.Helper()
	waitQueueGone(t, b, name, 20*time.Millisecond)
}

// waitQueueGone polls with a passive declare, every so often, until it says 404.
func waitQueueGone(t testing.TB, b *testBroker, name string, every time.Duration) {
	t.Helper()
	conn := b.dial(t)
	require.Eventually(t, func() bool {
		ch, err := conn.Channel()
		require.NoError(t, err)
		_, err = ch.QueueDeclarePassive(name, false, false, false, false, nil)
		if err == nil {
			_ = ch.Close()
			return false
		}
		// An exclusive queue whose connection is still being torn down
		// answers 405 until it is gone (RabbitMQ deletes it asynchronously
		// too): not gone yet, ask again.
		var ae *amqp091.Error
		if errors.As(err, &ae) && ae.Code == amqp091.ResourceLocked {
			return false
		}
		requireAMQPError(t, err, amqp091.NotFound, "NOT_FOUND - no queue '"+name+"' in vhost '/'")
		return true
	}, timeout, every, "queue %s should be deleted", name)
}
