package conformance

// Checked against RabbitMQ 3.10.8 by setting max_message_size to 1024 at
// run time: "PRECONDITION_FAILED - message size 1025 is larger than
// configured max size 1024" (a body of exactly the limit passes). These
// tests need Warren's configuration and skip against an external broker.

import (
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp"
)

func TestLimitsMaxMessageSize(t *testing.T) {
	b := startBroker(t, func(c *amqp.Config) { c.MaxMessageSize = 1024 })
	b.skipIfExternal(t)

	conn, ch := b.channel(t)
	other, err := conn.Channel()
	require.NoError(t, err)
	q := declareQueue(t, b, other, "q", nil)

	publish(t, ch, "", q, strings.Repeat("x", 1024))
	requireQueueLen(t, other, q, 1)

	closed := notifyClose(ch)
	publish(t, ch, "", q, strings.Repeat("x", 1025))
	requireClosedWith(t, closed, amqp091.PreconditionFailed, "PRECONDITION_FAILED - message size 1025 is larger than configured max size 1024")
	requireUsable(t, other)
	requireQueueLen(t, other, q, 1)
}

func TestLimitsTuneFromConfig(t *testing.T) {
	b := startBroker(t, func(c *amqp.Config) {
		c.FrameMax = 4096
		c.ChannelMax = 3
		c.Heartbeat = 7 * time.Second
	})
	b.skipIfExternal(t)

	r := dialRaw(t, b)
	tn := r.handshake()
	require.Equal(t, tune{ChannelMax: 3, FrameMax: 4096, Heartbeat: 7}, tn)

	// A client asking for more than the server offered gets what it was
	// offered.
	conn, err := amqp091.DialConfig(b.URL, amqp091.Config{FrameSize: 1 << 20, Dial: amqp091.DefaultDial(timeout)})
	require.NoError(t, err)
	defer conn.Close()
	require.Equal(t, 4096, conn.Config.FrameSize)
	require.Equal(t, uint16(3), conn.Config.ChannelMax)

	// Bodies are split to fit the small frames.
	ch, err := conn.Channel()
	require.NoError(t, err)
	q := declareQueue(t, b, ch, "q", nil)
	body := strings.Repeat("y", 20000)
	publish(t, ch, "", q, body)
	requireQueueLen(t, ch, q, 1)
	require.Equal(t, []string{body}, drain(t, ch, q))
}

func TestLimitsFrameTooLarge(t *testing.T) {
	b := startBroker(t, func(c *amqp.Config) { c.FrameMax = 4096 })
	b.skipIfExternal(t)

	r := dialRaw(t, b)
	r.handshake()
	r.openChannel(1)
	// RabbitMQ accepts payloads up to frame_max (not frame_max-8) and
	// names frame_max-8 in the error.
	r.send(rawFrame{Type: frameBody, Channel: 1, Payload: make([]byte, 4097)})
	code, text := r.expectConnectionClose()
	require.Equal(t, uint16(amqp091.FrameError), code, text)
	require.True(t, strings.HasPrefix(text, "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,4097,4088}"), text)
}
