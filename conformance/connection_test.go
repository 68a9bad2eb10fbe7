package conformance

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp"
)

func TestConnectionServerProperties(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)

	props := conn.Properties
	require.NotEmpty(t, props["product"], "product")
	require.NotEmpty(t, props["version"], "version")

	caps, ok := props["capabilities"].(amqp091.Table)
	require.True(t, ok, "capabilities is a table: %#v", props["capabilities"])
	for _, c := range []string{
		"publisher_confirms",
		"exchange_exchange_bindings",
		"basic.nack",
		"consumer_cancel_notify",
		"connection.blocked",
		"consumer_priorities",
		"authentication_failure_close",
		"per_consumer_qos",
		"direct_reply_to",
	} {
		require.Equal(t, true, caps[c], "capability %s", c)
	}
}

func TestConnectionTuneNegotiation(t *testing.T) {
	b := startBroker(t)

	t.Run("server values", func(t *testing.T) {
		r := dialRaw(t, b)
		tn := r.handshake()
		require.NotZero(t, tn.ChannelMax)
		require.GreaterOrEqual(t, tn.FrameMax, uint32(4096), "frame_max at least frame-min-size")
	})

	t.Run("client asks for less", func(t *testing.T) {
		conn, err := amqp091.DialConfig(b.URL, amqp091.Config{ChannelMax: 7, FrameSize: 8192, Dial: amqp091.DefaultDial(timeout)})
		require.NoError(t, err)
		defer conn.Close()
		require.Equal(t, uint16(7), conn.Config.ChannelMax)
		require.Equal(t, 8192, conn.Config.FrameSize)

		// A message larger than one frame is split into bodies of at most
		// frame_max-8 bytes and still arrives whole.
		ch, err := conn.Channel()
		require.NoError(t, err)
		q := declareQueue(t, b, ch, "q", nil)
		body := strings.Repeat("x", 50000)
		publish(t, ch, "", q, body)
		requireQueueLen(t, ch, q, 1)
		require.Equal(t, []string{body}, drain(t, ch, q))
	})
}

func TestConnectionBadProtocolHeader(t *testing.T) {
	b := startBroker(t)
	for _, header := range []string{
		"AMQP\x00\x00\x08\x00", // 0-8
		"AMQP\x01\x01\x00\x0a", // 0-10
		"HTTP/1.1",
	} {
		t.Run(strings.ToValidUTF8(header, "?"), func(t *testing.T) {
			r := dialRaw(t, b)
			r.write([]byte(header))
			got := make([]byte, 8)
			_, err := io.ReadFull(r.conn, got)
			require.NoError(t, err)
			require.Equal(t, protocolHeader, string(got))
			r.requireEOF()
		})
	}
}

func TestConnectionUnknownVhost(t *testing.T) {
	b := startBroker(t)
	u, err := amqp091.ParseURI(b.URL)
	require.NoError(t, err)
	u.Vhost = "nope-" + uniqueName(t, "vhost")
	_, err = amqp091.DialConfig(u.String(), amqp091.Config{Dial: amqp091.DefaultDial(timeout)})
	// amqp091-go reports any close during connection.open as its own
	// ErrVhost (403); the server's real answer is checked below.
	requireAMQPError(t, err, amqp091.AccessRefused, "")

	r := dialRaw(t, b)
	r.login("guest", "guest", func(tn *tune) { tn.Heartbeat = 0 })
	r.openVhost(u.Vhost)
	code, text := r.expectConnectionClose()
	require.Equal(t, uint16(amqp091.NotAllowed), code, text)
	require.Equal(t, "NOT_ALLOWED - vhost "+u.Vhost+" not found", text)
	r.requireEOF()

	// The broker still serves others.
	requireConnUsable(t, b.dial(t))
}

func TestConnectionBadPassword(t *testing.T) {
	b := startBroker(t)
	u, err := amqp091.ParseURI(b.URL)
	require.NoError(t, err)
	u.Password = "wrong"
	_, err = amqp091.DialConfig(u.String(), amqp091.Config{Dial: amqp091.DefaultDial(timeout)})
	// amqp091-go turns the server's close into its own ErrCredentials.
	requireAMQPError(t, err, amqp091.AccessRefused, "")

	r := dialRaw(t, b)
	r.sendStartOK("guest", "wrong")
	code, text := r.expectConnectionClose()
	require.Equal(t, uint16(amqp091.AccessRefused), code, text)
	require.Equal(t, "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.", text)
	r.requireEOF()

	requireConnUsable(t, b.dial(t))
}

func TestConnectionClientClose(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclare("", false, false, true, false, nil)
	require.NoError(t, err)

	require.NoError(t, conn.Close())
	select {
	case e, ok := <-closed:
		require.False(t, ok && e != nil, "a clean close carries no error: %v", e)
	case <-time.After(timeout):
		t.Fatal("close not reported")
	}
	require.True(t, conn.IsClosed())

	// Its exclusive queue went with it.
	requireQueueGone(t, b, q.Name)
}

func TestConnectionChannelMax(t *testing.T) {
	b := startBroker(t)

	// The client library refuses locally past the negotiated maximum.
	conn, err := amqp091.DialConfig(b.URL, amqp091.Config{ChannelMax: 2, Dial: amqp091.DefaultDial(timeout)})
	require.NoError(t, err)
	defer conn.Close()
	for range 2 {
		_, err := conn.Channel()
		require.NoError(t, err)
	}
	_, err = conn.Channel()
	require.ErrorIs(t, err, amqp091.ErrChannelMax)

	// The server refuses a channel number above what tune-ok said.
	r := dialRaw(t, b)
	r.handshakeTune(func(tn *tune) { tn.ChannelMax = 2; tn.Heartbeat = 0 })
	// RabbitMQ counts open channels; it does not compare channel numbers.
	r.openChannel(1)
	r.openChannel(2)
	r.send(methodFrame(3, 20, 10, shortStr(""))) // a third channel
	code, text := r.expectConnectionClose()
	require.Equal(t, uint16(amqp091.NotAllowed), code, text)
	require.True(t, strings.HasPrefix(text, "NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)"), text)
}

// TestConnectionRawErrors sends one broken frame after a good handshake and
// checks the connection.close that comes back.
func TestConnectionRawErrors(t *testing.T) {
	b := startBroker(t)

	for _, tc := range []struct {
		name   string
		send   func(r *rawConn, tn tune)
		code   uint16
		prefix string
	}{
		{
			name: "frame larger than frame_max",
			send: func(r *rawConn, tn tune) {
				r.openChannel(1)
				// A payload of frame_max+1 octets. RabbitMQ tolerates a
				// payload up to frame_max itself (TestConnectionFrameMaxFudge).
				big := methodFrame(1, 60, 40, short(0), shortStr(""), shortStr("k"), octet(0))
				big.Payload = append(big.Payload, make([]byte, int(tn.FrameMax)+1-len(big.Payload))...)
				r.send(big)
			},
			code: amqp091.FrameError,
			// RabbitMQ reports the payload size and frame_max - 8 (though
			// it accepts up to frame_max); frame_max is 131072 by default
			// on both brokers.
			prefix: "FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,131073,131064}",
		},
		{
			name: "bad frame end",
			send: func(r *rawConn, tn tune) {
				b := methodFrame(1, 20, 10, shortStr("")).bytes()
				b[len(b)-1] = 0x00
				r.write(b)
			},
			code:   amqp091.FrameError,
			prefix: "FRAME_ERROR - type 1, all octets = <<0,20,0,10,0>>: {invalid_frame_end_marker,0}",
		},
		{
			name: "method on unopened channel",
			send: func(r *rawConn, tn tune) {
				r.send(methodFrame(5, 50, 10, short(0), shortStr("q"), octet(0), emptyTable())) // queue.declare
			},
			code:   amqp091.ChannelError,
			prefix: "CHANNEL_ERROR - expected 'channel.open'",
		},
		{
			name: "second channel.open",
			send: func(r *rawConn, tn tune) {
				r.openChannel(1)
				r.send(methodFrame(1, 20, 10, shortStr("")))
			},
			code:   amqp091.ChannelError,
			prefix: "CHANNEL_ERROR - second 'channel.open' seen",
		},
		{
			name: "content header without publish",
			send: func(r *rawConn, tn tune) {
				r.openChannel(1)
				hdr := append(short(60), short(0)...) // class basic, weight 0
				hdr = append(hdr, 0, 0, 0, 0, 0, 0, 0, 1)
				hdr = append(hdr, short(0)...) // no properties
				r.send(rawFrame{Type: frameHeader, Channel: 1, Payload: hdr})
			},
			code:   amqp091.UnexpectedFrame,
			prefix: "UNEXPECTED_FRAME - expected method frame, got non method frame instead",
		},
		{
			name: "body without publish",
			send: func(r *rawConn, tn tune) {
				r.openChannel(1)
				r.send(rawFrame{Type: frameBody, Channel: 1, Payload: []byte("x")})
			},
			code:   amqp091.UnexpectedFrame,
			prefix: "UNEXPECTED_FRAME - expected method frame, got non method frame instead",
		},
		{
			name: "method while expecting content",
			send: func(r *rawConn, tn tune) {
				r.openChannel(1)
				r.send(methodFrame(1, 60, 40, short(0), shortStr(""), shortStr("k"), octet(0))) // basic.publish
				r.send(methodFrame(1, 60, 40, short(0), shortStr(""), shortStr("k"), octet(0)))
			},
			code:   amqp091.UnexpectedFrame,
			prefix: "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead",
		},
		{
			name: "unknown frame type",
			send: func(r *rawConn, tn tune) {
				r.openChannel(1)
				r.send(rawFrame{Type: 7, Channel: 1, Payload: []byte("x")})
			},
			code:   amqp091.FrameError,
			prefix: "FRAME_ERROR - type 7, all octets = <<\"x\">>: unknown_frame",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, b)
			tn := r.handshake()
			tc.send(r, tn)
			code, text := r.expectConnectionClose()
			require.Equal(t, tc.code, code, "reply text %q", text)
			require.True(t, strings.HasPrefix(text, tc.prefix), "reply text %q does not start with %q", text, tc.prefix)
		})
	}

	// None of that hurt other connections.
	requireConnUsable(t, b.dial(t))
}

// TestConnectionFrameMaxFudge: frame_max counts the whole frame, so the
// largest payload is frame_max-8, but RabbitMQ lets payloads up to frame_max
// through (its FRAME_SIZE_FUDGE, for clients that got this wrong).
func TestConnectionFrameMaxFudge(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)

	r := dialRaw(t, b)
	tn := r.handshake()
	r.openChannel(1)
	r.send(methodFrame(1, 60, 40, short(0), shortStr(""), shortStr(q), octet(0))) // basic.publish
	hdr := append(short(60), short(0)...)
	hdr = append(hdr, 0, 0, 0, 0)
	hdr = append(hdr, long(tn.FrameMax)...) // body size
	hdr = append(hdr, short(0)...)          // no properties
	r.send(rawFrame{Type: frameHeader, Channel: 1, Payload: hdr})
	r.send(rawFrame{Type: frameBody, Channel: 1, Payload: make([]byte, tn.FrameMax)})
	requireQueueLen(t, ch, q, 1)
	m, ok, err := ch.Get(q, true)
	require.NoError(t, err)
	require.True(t, ok)
	require.Len(t, m.Body, int(tn.FrameMax))
}

// TestConnectionUnknownMethod: RabbitMQ 3.10 cannot decode an unknown
// class or method id; its reader process crashes and the socket is reset
// without any connection.close. Warren may do better (503 COMMAND_INVALID or
// 540 NOT_IMPLEMENTED) but must end the connection either way.
func TestConnectionUnknownMethod(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []struct {
		name          string
		class, method uint16
	}{
		{"unknown class", 999, 1},
		{"unknown queue method", 50, 99},
		{"unknown basic method", 60, 99},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, b)
			r.handshake()
			r.openChannel(1)
			r.send(methodFrame(1, tc.class, tc.method))
			code, text, closed := r.readCloseOrEOF()
			if !closed {
				require.Contains(t, []uint16{amqp091.CommandInvalid, amqp091.NotImplemented}, code, text)
			}
		})
	}
	requireConnUsable(t, b.dial(t))
}

func TestConnectionHeartbeatTimeout(t *testing.T) {
	b := startBroker(t, func(c *amqp.Config) { c.Heartbeat = time.Second })

	r := dialRaw(t, b)
	start := time.Now()
	r.handshakeTune(func(tn *tune) { tn.Heartbeat = 1 })
	// Stay silent. The server sends heartbeats and, hearing nothing back,
	// drops the connection after about two intervals.
	require.NoError(t, r.conn.SetReadDeadline(time.Now().Add(6*time.Second)))
	buf := make([]byte, 512)
	for {
		_, err := r.conn.Read(buf)
		if err != nil {
			var ne net.Error
			if ok := asNetError(err, &ne); ok && ne.Timeout() {
				t.Fatalf("still connected after %s", time.Since(start))
			}
			break
		}
	}
	require.Less(t, time.Since(start), 5*time.Second)
}

func asNetError(err error, ne *net.Error) bool {
	e, ok := err.(net.Error)
	if ok {
		*ne = e
	}
	return ok
}
