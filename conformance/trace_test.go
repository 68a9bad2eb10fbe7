package conformance

import (
	"net/http"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// TestFirehose: with tracing on (PUT /api/vhosts/{vhost} {"tracing": true},
// as rabbitmqctl trace_on), every publish and delivery is copied to
// amq.rabbitmq.trace with RabbitMQ 3.10's routing keys and headers (checked
// against rabbitmqctl trace_on on RabbitMQ 3.10.8); off, nothing is.
func TestFirehose(t *testing.T) {
	b := newAdminBroker(t)
	_, ch := b.mustDial("guest", "guest", "/")
	require.NoError(t, ch.ExchangeDeclarePassive("amq.rabbitmq.trace", "topic", true, false, true, false, nil))
	_, err := ch.QueueDeclare("firehose", false, false, true, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind("firehose", "#", "amq.rabbitmq.trace", false, nil))
	_, err = ch.QueueDeclare("work", false, false, false, false, nil)
	require.NoError(t, err)

	b.mustDo(http.StatusNoContent, "PUT", "/api/vhosts/%2F", map[string]any{"tracing": true})
	code, body := b.call("GET", "/api/vhosts/%2F", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, string(body), `"tracing":true`)

	require.NoError(t, ch.Publish("", "work", false, false, amqp091.Publishing{
		Headers: amqp091.Table{"h": "v"}, ContentType: "text/plain", DeliveryMode: 2, Priority: 3,
		Timestamp: time.Unix(1700000000, 0), MessageId: "m1", Body: []byte("hello")}))
	require.NoError(t, ch.Publish("amq.direct", "nowhere", false, false, amqp091.Publishing{Body: []byte("lost")}))
	d, ok, err := ch.Get("work", false)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, d.Nack(false, true))
	ds, err := ch.Consume("work", "", false, false, false, false, nil)
	require.NoError(t, err)
	d = <-ds
	require.NoError(t, d.Ack(false))

	traces := consumeN(t, ch, "firehose", 4)
	pub, lost, get, deliver := traces[0], traces[1], traces[2], traces[3]
	require.Equal(t, "amq.rabbitmq.trace", pub.Exchange)
	require.Equal(t, "publish.", pub.RoutingKey)
	require.Equal(t, "hello", string(pub.Body))
	h := pub.Headers
	require.Equal(t, "", h["exchange_name"])
	require.Equal(t, []any{"work"}, h["routing_keys"])
	require.Equal(t, []any{"work"}, h["routed_queues"])
	require.Equal(t, "/", h["vhost"])
	require.Equal(t, "guest", h["user"])
	require.Equal(t, int32(1), h["channel"])
	require.Contains(t, h["connection"], " -> ")
	require.IsType(t, "", h["node"])
	require.Equal(t, amqp091.Table{"content_type": "text/plain", "delivery_mode": int32(2), "priority": int32(3),
		"timestamp": int32(1700000000), "message_id": "m1", "headers": amqp091.Table{"h": "v"}}, h["properties"])
	require.NotContains(t, h, "redelivered")

	require.Equal(t, "publish.amq.direct", lost.RoutingKey)
	require.Contains(t, lost.Headers, "routed_queues")
	require.Empty(t, lost.Headers["routed_queues"])
	require.Equal(t, amqp091.Table{}, lost.Headers["properties"])

	for i, tr := range []amqp091.Delivery{get, deliver} {
		require.Equal(t, "deliver.work", tr.RoutingKey)
		require.Equal(t, "hello", string(tr.Body))
		require.Equal(t, int32(i), tr.Headers["redelivered"])
		require.Equal(t, []any{"work"}, tr.Headers["routing_keys"])
		require.Equal(t, "", tr.Headers["exchange_name"])
		require.NotContains(t, tr.Headers, "routed_queues")
	}

	// Consuming the firehose itself is not traced (no loop), and clients
	// may not publish to it.
	q, err := ch.QueueDeclarePassive("firehose", false, false, true, false, nil)
	require.NoError(t, err)
	require.Zero(t, q.Messages)
	_, ch2 := b.mustDial("guest", "guest", "/")
	closed := notifyClose(ch2)
	require.NoError(t, ch2.Publish("amq.rabbitmq.trace", "x", false, false, amqp091.Publishing{}))
	requireClosedWith(t, closed, 403, "ACCESS_REFUSED - cannot publish to internal exchange 'amq.rabbitmq.trace'")

	b.mustDo(http.StatusNoContent, "PUT", "/api/vhosts/%2F", map[string]any{"tracing": false})
	require.NoError(t, ch.Publish("", "work", false, false, amqp091.Publishing{Body: []byte("untraced")}))
	d = <-ds
	require.Equal(t, "untraced", string(d.Body))
	require.NoError(t, d.Ack(false))
	time.Sleep(50 * time.Millisecond)
	q, err = ch.QueueDeclarePassive("firehose", false, false, true, false, nil)
	require.NoError(t, err)
	require.Zero(t, q.Messages, "tracing is off")
	_, body = b.call("GET", "/api/vhosts/%2F", nil)
	require.True(t, strings.Contains(string(body), `"tracing":false`))
}
