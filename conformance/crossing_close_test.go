package conformance

import (
	"context"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// TestCrossingChannelClose: the client closes a channel while the server's
// channel.close for an error on it is on the way. Both sides then send
// close-ok; RabbitMQ keeps the channel until the client's close-ok, so that
// close-ok is no error and the connection's other channels go on (amqp091-go's
// TestChannelExceptionWithCloseIssue43 does the same).
func TestCrossingChannelClose(t *testing.T) {
	b := startBroker(t)
	for range 50 {
		conn := b.dial(t)
		c1, err := conn.Channel()
		require.NoError(t, err)
		c2, err := conn.Channel()
		require.NoError(t, err)
		require.NoError(t, c1.PublishWithContext(context.Background(), uniqueName(t, "missing"), "", false, false, amqp091.Publishing{}))
		_ = c1.Close() // crosses the server's 404 channel.close, or follows it
		name := uniqueName(t, "x")
		require.NoError(t, c2.ExchangeDeclare(name, "direct", false, true, false, false, nil))
		require.False(t, conn.IsClosed())
		require.NoError(t, conn.Close())
	}
}
