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

// Streams (`x-queue-type: stream`) over AMQP 0-9-1 as RabbitMQ 3.10.8 serves
// them. The tests pin RabbitMQ's behaviour (WARREN_TEST_AMQP_URL) and skip
// on a broker that refuses the type, as Warren does until streams are wired
// (issue 17; the semantics are in package stream).

// startStreamBroker starts a broker and skips the test when it refuses
// streams.
func startStreamBroker(t *testing.T) *testBroker {
	t.Helper()
	b := startBroker(t)
	conn, err := amqp091.DialConfig(b.URL, amqp091.Config{Dial: amqp091.DefaultDial(timeout)})
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	name := uniqueName(t, "stream-probe")
	_, err = ch.QueueDeclare(name, true, false, false, false, amqp091.Table{"x-queue-type": "stream"})
	var ae *amqp091.Error
	if errors.As(err, &ae) && ae.Code == amqp091.PreconditionFailed && strings.Contains(ae.Reason, "queue type 'stream'") {
		t.Skip("missing: the broker refuses streams: " + ae.Reason)
	}
	require.NoError(t, err, "declaring a stream")
	_, err = ch.QueueDelete(name, false, false, false)
	require.NoError(t, err)
	return b
}

func streamArgs(extra amqp091.Table) amqp091.Table {
	args := amqp091.Table{"x-queue-type": "stream"}
	for k, v := range extra {
		args[k] = v
	}
	return args
}

func TestStreamDeclare(t *testing.T) {
	b := startStreamBroker(t)
	const refused = "PRECONDITION_FAILED - invalid arg '%s' for queue '%s' in vhost '/' of queue type rabbit_stream_queue"
	const invalid = "PRECONDITION_FAILED - invalid arg '%s' for queue '%s' in vhost '/': %s"
	for _, tc := range []struct {
		name                           string
		durable, autoDelete, exclusive bool
		args                           amqp091.Table
		code                           int
		text                           string // %[1]s is the queue
	}{
		{name: "durable", durable: true},
		{name: "limits", durable: true, args: amqp091.Table{"x-max-length-bytes": int64(1 << 30), "x-max-age": "7D", "x-stream-max-segment-size-bytes": int64(1 << 20), "x-initial-cluster-size": int64(1)}},
		{name: "age 12h", durable: true, args: amqp091.Table{"x-max-age": "12h"}},
		{name: "non-durable", code: 406, text: "PRECONDITION_FAILED - invalid property 'non-durable' for queue '%[1]s' in vhost '/'"},
		{name: "auto-delete", durable: true, autoDelete: true, code: 406, text: "PRECONDITION_FAILED - invalid property 'auto-delete' for queue '%[1]s' in vhost '/'"},
		{name: "exclusive", durable: true, exclusive: true, code: 406, text: "PRECONDITION_FAILED - invalid property 'exclusive-owner' for queue '%[1]s' in vhost '/'"},
		{name: "exclusive auto-delete", durable: true, exclusive: true, autoDelete: true, code: 406, text: "PRECONDITION_FAILED - invalid property 'auto-delete' for queue '%[1]s' in vhost '/'"},
		{name: "ttl", durable: true, args: amqp091.Table{"x-message-ttl": int64(10)}, code: 406, text: fmt.Sprintf(refused, "x-message-ttl", "%[1]s")},
		{name: "max-length", durable: true, args: amqp091.Table{"x-max-length": int64(10)}, code: 406, text: fmt.Sprintf(refused, "x-max-length", "%[1]s")},
		{name: "priority", durable: true, args: amqp091.Table{"x-max-priority": int64(3)}, code: 406, text: fmt.Sprintf(refused, "x-max-priority", "%[1]s")},
		{name: "dead-letter", durable: true, args: amqp091.Table{"x-dead-letter-exchange": "x"}, code: 406, text: fmt.Sprintf(refused, "x-dead-letter-exchange", "%[1]s")},
		{name: "zero age", durable: true, args: amqp091.Table{"x-max-age": "0s"}, code: 406, text: fmt.Sprintf(invalid, "x-max-age", "%[1]s", "invalid_max_age")},
		{name: "negative bytes", durable: true, args: amqp091.Table{"x-max-length-bytes": int64(-1)}, code: 406, text: fmt.Sprintf(invalid, "x-max-length-bytes", "%[1]s", "{value_negative,-1}")},
		{name: "zero cluster size", durable: true, args: amqp091.Table{"x-initial-cluster-size": int64(0)}, code: 406, text: fmt.Sprintf(invalid, "x-initial-cluster-size", "%[1]s", "{value_zero,0}")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ch := b.channel(t)
			name := uniqueName(t, "s")
			b.cleanupQueue(t, name)
			_, err := ch.QueueDeclare(name, tc.durable, tc.autoDelete, tc.exclusive, false, streamArgs(tc.args))
			if tc.code == 0 {
				require.NoError(t, err)
				q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
				require.NoError(t, err)
				require.Equal(t, 0, q.Messages)
				return
			}
			requireAMQPError(t, err, tc.code, "")
			requireExactReason(t, err, fmt.Sprintf(tc.text, name))
		})
	}
	t.Run("server-named", func(t *testing.T) {
		_, ch := b.channel(t)
		_, err := ch.QueueDeclare("", true, false, false, false, streamArgs(nil))
		requireExactReason(t, err, "PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_stream_queue")
	})
	t.Run("redeclare", func(t *testing.T) {
		_, ch := b.channel(t)
		name := uniqueName(t, "s")
		b.cleanupQueue(t, name)
		_, err := ch.QueueDeclare(name, true, false, false, false, streamArgs(nil))
		require.NoError(t, err)
		_, err = ch.QueueDeclare(name, true, false, false, false, streamArgs(nil))
		require.NoError(t, err)
		for _, c := range []struct {
			args amqp091.Table
			text string
		}{
			{nil, "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '%s' in vhost '/': received none but current is the value 'stream' of type 'longstr'"},
			{amqp091.Table{"x-queue-type": "quorum"}, "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '%s' in vhost '/': received 'quorum' but current is 'stream'"},
			{streamArgs(amqp091.Table{"x-max-age": "1h"}), "PRECONDITION_FAILED - inequivalent arg 'x-max-age' for queue '%s' in vhost '/': received the value '1h' of type 'longstr' but current is none"},
		} {
			_, ch := b.channel(t)
			_, err := ch.QueueDeclare(name, true, false, false, false, c.args)
			requireExactReason(t, err, fmt.Sprintf(c.text, name))
		}
	})
}

// declareStream declares a stream and publishes bodies with confirms, one
// at a time, so that each is its own chunk.
func declareStream(t *testing.T, b *testBroker, bodies ...string) string {
	t.Helper()
	_, ch := b.channel(t)
	name := uniqueName(t, "s")
	b.cleanupQueue(t, name)
	_, err := ch.QueueDeclare(name, true, false, false, false, streamArgs(nil))
	require.NoError(t, err)
	require.NoError(t, ch.Confirm(false))
	for _, body := range bodies {
		c, err := ch.PublishWithDeferredConfirm("", name, false, false, amqp091.Publishing{Body: []byte(body), Headers: amqp091.Table{"h": "v"}})
		require.NoError(t, err)
		ok, err := c.WaitContext(t.Context())
		require.NoError(t, err)
		require.True(t, ok)
	}
	return name
}

func consumeStream(t *testing.T, b *testBroker, name string, prefetch int, args amqp091.Table) (*amqp091.Channel, <-chan amqp091.Delivery) {
	t.Helper()
	_, ch := b.channel(t)
	require.NoError(t, ch.Qos(prefetch, 0, false))
	d, err := ch.Consume(name, "", false, false, false, false, args)
	require.NoError(t, err)
	return ch, d
}

func TestStreamOffsets(t *testing.T) {
	b := startStreamBroker(t)
	all := []string{"m0", "m1", "m2", "m3", "m4"}
	name := declareStream(t, b, all...)
	for _, tc := range []struct {
		name   string
		offset any
		want   []string
	}{
		{"first", "first", all},
		{"last", "last", all[4:]},
		{"numeric", int64(3), all[3:]},
		{"numeric int32", int32(3), all[3:]},
		{"negative", int64(-1), all},
		{"old timestamp", time.Now().Add(-time.Hour), all},
		{"interval", "1h", all},
		{"next", "next", nil},
		{"beyond the end", int64(100), nil},
		{"future timestamp", time.Now().Add(time.Hour), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, d := consumeStream(t, b, name, 100, amqp091.Table{"x-stream-offset": tc.offset})
			var first int64 = -1
			for _, want := range tc.want {
				m := recv(t, d)
				require.Equal(t, want, string(m.Body))
				off, ok := m.Headers["x-stream-offset"].(int64)
				require.True(t, ok, "x-stream-offset %T", m.Headers["x-stream-offset"])
				require.Equal(t, "v", m.Headers["h"])
				require.False(t, m.Redelivered)
				if first < 0 {
					first = off
				}
				require.Equal(t, first+int64(m.DeliveryTag)-1, off)
			}
			requireNoDelivery(t, d)
		})
	}
	t.Run("default is next, and a consumer at the tail gets new messages", func(t *testing.T) {
		_, d := consumeStream(t, b, name, 100, nil)
		requireNoDelivery(t, d)
		_, ch := b.channel(t)
		publish(t, ch, "", name, "new")
		m := recv(t, d)
		require.Equal(t, "new", string(m.Body))
		require.Equal(t, int64(5), m.Headers["x-stream-offset"])
	})
}

func TestStreamCredit(t *testing.T) {
	b := startStreamBroker(t)
	name := declareStream(t, b, "m0", "m1", "m2", "m3")
	_, d := consumeStream(t, b, name, 2, amqp091.Table{"x-stream-offset": "first"})
	m0, m1 := recv(t, d), recv(t, d)
	require.Equal(t, "m1", string(m1.Body))
	requireNoDelivery(t, d) // held at the prefetch until an ack
	require.NoError(t, m1.Ack(true))
	require.Equal(t, "m2", string(recv(t, d).Body))
	require.Equal(t, "m3", string(recv(t, d).Body))
	_ = m0
	// Acks removed nothing: another consumer reads it all.
	_, d2 := consumeStream(t, b, name, 10, amqp091.Table{"x-stream-offset": "first"})
	for _, want := range []string{"m0", "m1", "m2", "m3"} {
		require.Equal(t, want, string(recv(t, d2).Body))
	}
}

func TestStreamRefusals(t *testing.T) {
	b := startStreamBroker(t)
	name := declareStream(t, b, "m0", "m1")
	const tail = " queue '%s' in vhost '/'"
	t.Run("no prefetch", func(t *testing.T) {
		_, ch := b.channel(t)
		_, err := ch.Consume(name, "", false, false, false, false, nil)
		requireExactReason(t, err, fmt.Sprintf("PRECONDITION_FAILED - consumer prefetch count is not set for 'queue '%s' in vhost '/''", name))
	})
	t.Run("global prefetch only", func(t *testing.T) {
		_, ch := b.channel(t)
		require.NoError(t, ch.Qos(10, 0, true))
		_, err := ch.Consume(name, "", false, false, false, false, nil)
		requireExactReason(t, err, fmt.Sprintf("PRECONDITION_FAILED - consumer prefetch count is not set for 'queue '%s' in vhost '/''", name))
	})
	for _, tc := range []struct {
		name string
		do   func(ch *amqp091.Channel) error
		text string
		code int
	}{
		{"no-ack", func(ch *amqp091.Channel) error {
			require.NoError(t, ch.Qos(10, 0, false))
			_, err := ch.Consume(name, "", true, false, false, false, nil)
			return err
		}, "NOT_IMPLEMENTED - automatic acknowledgement not supported by stream queues" + tail, 540},
		{"basic.get", func(ch *amqp091.Channel) error { _, _, err := ch.Get(name, false); return err },
			"NOT_IMPLEMENTED - basic.get not supported by stream queues" + tail, 540},
		{"purge", func(ch *amqp091.Channel) error { _, err := ch.QueuePurge(name, false); return err },
			"NOT_IMPLEMENTED - queue.purge not supported by stream queues" + tail, 540},
		{"bad offset", func(ch *amqp091.Channel) error {
			require.NoError(t, ch.Qos(10, 0, false))
			_, err := ch.Consume(name, "", false, false, false, false, amqp091.Table{"x-stream-offset": "bogus"})
			return err
		}, "INTERNAL_ERROR", 541},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, ch := b.channel(t)
			closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
			err := tc.do(ch)
			requireAMQPError(t, err, tc.code, "")
			text := tc.text
			if strings.Contains(text, "%s") {
				text = fmt.Sprintf(text, name)
			}
			requireExactReason(t, err, text)
			requireClosedWith(t, closed, tc.code, "") // 540 and 541 close the connection
		})
	}
	for _, nack := range []bool{true, false} {
		t.Run(fmt.Sprintf("nack %v", nack), func(t *testing.T) {
			conn, ch := b.channel(t)
			closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
			require.NoError(t, ch.Qos(10, 0, false))
			d, err := ch.Consume(name, "", false, false, false, false, amqp091.Table{"x-stream-offset": "first"})
			require.NoError(t, err)
			m := recv(t, d)
			if nack {
				require.NoError(t, m.Nack(false, true))
			} else {
				require.NoError(t, m.Reject(false))
			}
			requireClosedWith(t, closed, 540, "NOT_IMPLEMENTED - basic.nack and basic.reject not supported by stream queues"+fmt.Sprintf(tail, name))
		})
	}
}
