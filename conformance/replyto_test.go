package conformance

import (
	"strings"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// directReplyTo is RabbitMQ's pseudo-queue for RPC replies without a reply
// queue.
const directReplyTo = "amq.rabbitmq.reply-to"

func TestDirectReplyTo(t *testing.T) {
	b := startBroker(t)

	// The server side of the RPC.
	_, srv := b.channel(t)
	rpcQueue := declareQueue(t, b, srv, "rpc", nil)
	requests, err := srv.Consume(rpcQueue, "", true, false, false, false, nil)
	require.NoError(t, err)

	// The client consumes from the pseudo-queue (no-ack) before publishing.
	_, cli := b.channel(t)
	replies, err := cli.Consume(directReplyTo, "", true, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, cli.Publish("", rpcQueue, false, false, amqp091.Publishing{
		ReplyTo: directReplyTo, CorrelationId: "c1", Body: []byte("ping"),
	}))

	req := recv(t, requests)
	require.Equal(t, "ping", string(req.Body))
	require.True(t, strings.HasPrefix(req.ReplyTo, directReplyTo+"."), "reply-to rewritten: %q", req.ReplyTo)
	require.Greater(t, len(req.ReplyTo), len(directReplyTo)+1)

	require.NoError(t, srv.Publish("", req.ReplyTo, true, false, amqp091.Publishing{
		CorrelationId: req.CorrelationId, Body: []byte("pong"),
	}))
	reply := recv(t, replies)
	require.Equal(t, "pong", string(reply.Body))
	require.Equal(t, "c1", reply.CorrelationId)
	require.Equal(t, req.ReplyTo, reply.RoutingKey)
	require.Equal(t, "", reply.Exchange)

	// The pseudo-queue is not a real queue: passive declare says it exists
	// with nothing in it.
	q, err := cli.QueueDeclarePassive(directReplyTo, false, false, false, false, nil)
	require.NoError(t, err)
	require.Zero(t, q.Messages)
}

func TestDirectReplyToErrors(t *testing.T) {
	b := startBroker(t)

	t.Run("consume with acks", func(t *testing.T) {
		conn, ch := b.channel(t)
		other, err := conn.Channel()
		require.NoError(t, err)
		_, err = ch.Consume(directReplyTo, "", false, false, false, false, nil)
		requireAMQPError(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - reply consumer cannot acknowledge")
		requireUsable(t, other)
	})

	t.Run("publish without consuming", func(t *testing.T) {
		conn, ch := b.channel(t)
		other, err := conn.Channel()
		require.NoError(t, err)
		q := declareQueue(t, b, other, "q", nil)
		closed := notifyClose(ch)
		require.NoError(t, ch.Publish("", q, false, false, amqp091.Publishing{ReplyTo: directReplyTo, Body: []byte("m")}))
		requireClosedWith(t, closed, amqp091.PreconditionFailed, "PRECONDITION_FAILED - fast reply consumer does not exist")
		requireUsable(t, other)
		requireQueueLen(t, other, q, 0)
	})

	t.Run("reply to a vanished client", func(t *testing.T) {
		// Replying to a direct reply-to name whose channel is gone is
		// silently dropped; the replier's channel stays open.
		_, ch := b.channel(t)
		returns := ch.NotifyReturn(make(chan amqp091.Return, 1))
		require.NoError(t, ch.Publish("", directReplyTo+".g1h2AA5yZXBseUA0MjQ0NTQ5NAAAJJ4AAAAAYmuTqg==", false, false, amqp091.Publishing{Body: []byte("m")}))
		requireUsable(t, ch)
		require.Empty(t, returns)
	})
}
