package conformance

import (
	"strings"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// contentHeader encodes a content header frame payload.
func contentHeader(class uint16, size uint64) []byte {
	hdr := append(short(class), short(0)...) // weight 0
	for i := 7; i >= 0; i-- {
		hdr = append(hdr, byte(size>>(8*i)))
	}
	return append(hdr, short(0)...) // no properties
}

// Malformed content after basic.publish closes the connection with
// RabbitMQ's code and text (rabbit_command_assembler).
func TestReviewContentErrors(t *testing.T) {
	b := startBroker(t)
	publishFrame := methodFrame(1, 60, 40, short(0), shortStr(""), shortStr("k"), octet(0))
	for _, tc := range []struct {
		name   string
		send   func(r *rawConn)
		code   uint16
		prefix string
	}{
		{
			name: "content header for another class",
			send: func(r *rawConn) {
				r.send(publishFrame)
				r.send(rawFrame{Type: frameHeader, Channel: 1, Payload: contentHeader(50, 1)})
			},
			code:   amqp091.UnexpectedFrame,
			prefix: "UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead",
		},
		{
			name: "second content header",
			send: func(r *rawConn) {
				r.send(publishFrame)
				r.send(rawFrame{Type: frameHeader, Channel: 1, Payload: contentHeader(60, 2)})
				r.send(rawFrame{Type: frameHeader, Channel: 1, Payload: contentHeader(60, 2)})
			},
			code:   amqp091.UnexpectedFrame,
			prefix: "UNEXPECTED_FRAME - expected content body, got non content body frame instead",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, b)
			r.handshake()
			r.openChannel(1)
			tc.send(r)
			code, text := r.expectConnectionClose()
			require.Equal(t, tc.code, code, "reply text %q", text)
			require.True(t, strings.HasPrefix(text, tc.prefix), "reply text %q does not start with %q", text, tc.prefix)
		})
	}
	requireConnUsable(t, b.dial(t))
}
