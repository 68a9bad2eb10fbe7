package conformance

import (
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

func TestTxPublish(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)
	_, observer := b.channel(t)

	require.NoError(t, ch.Tx())
	publish(t, ch, "", q, "1")
	publish(t, ch, "", q, "2")
	// Nothing is visible before the commit, even once the channel has
	// answered a later synchronous method.
	syncChannel(t, ch, q)
	requireQueueLen(t, observer, q, 0)
	require.NoError(t, ch.TxCommit())
	requireQueueLen(t, observer, q, 2)

	publish(t, ch, "", q, "3")
	require.NoError(t, ch.TxRollback())
	requireQueueLen(t, observer, q, 2)

	// The channel stays transactional after commit and rollback.
	publish(t, ch, "", q, "4")
	syncChannel(t, ch, q)
	requireQueueLen(t, observer, q, 2)
	require.NoError(t, ch.TxCommit())
	requireQueueLen(t, observer, q, 3)
	require.Equal(t, []string{"1", "2", "4"}, drain(t, observer, q))

	// Uncommitted publishes are dropped when the channel closes.
	publish(t, ch, "", q, "5")
	require.NoError(t, ch.Close())
	requireQueueLen(t, observer, q, 0)
}

// TestTxAck: a rolled-back ack is forgotten and the message stays
// unacknowledged (RabbitMQ does not requeue it on rollback); it comes back
// only when the channel closes.
func TestTxAck(t *testing.T) {
	b := startBroker(t)
	for _, commit := range []bool{true, false} {
		name := "rollback"
		if commit {
			name = "commit"
		}
		t.Run(name, func(t *testing.T) {
			_, ch := b.channel(t)
			q := declareQueue(t, b, ch, "q", nil)
			_, observer := b.channel(t)
			publish(t, ch, "", q, "m")
			requireQueueLen(t, observer, q, 1)

			require.NoError(t, ch.Tx())
			require.NoError(t, getOne(t, ch, q).Ack(false))
			if commit {
				require.NoError(t, ch.TxCommit())
			} else {
				require.NoError(t, ch.TxRollback())
			}
			requireQueueLen(t, observer, q, 0)
			require.NoError(t, ch.Close())
			if commit {
				requireQueueLen(t, observer, q, 0)
				return
			}
			requireQueueLen(t, observer, q, 1)
			m, ok, err := observer.Get(q, true)
			require.NoError(t, err)
			require.True(t, ok)
			require.True(t, m.Redelivered)
		})
	}
}

func TestTxWithoutSelect(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []struct {
		name string
		run  func(ch *amqp091.Channel) error
	}{
		{"commit", (*amqp091.Channel).TxCommit},
		{"rollback", (*amqp091.Channel).TxRollback},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, ch := b.channel(t)
			other, err := conn.Channel()
			require.NoError(t, err)
			requireAMQPError(t, tc.run(ch), amqp091.PreconditionFailed, "PRECONDITION_FAILED - channel is not transactional")
			requireUsable(t, other)
		})
	}
}

// syncChannel makes a round trip on ch, so every method sent before it has
// been handled by the server.
func syncChannel(t testing.TB, ch *amqp091.Channel, q string) {
	t.Helper()
	_, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
	require.NoError(t, err)
}
