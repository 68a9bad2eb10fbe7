package conformance

// Node-wide connection limits and the handshake timeout. RabbitMQ refuses a
// connection over connection_max at connection.open with
// "NOT_ALLOWED - connection refused: node connection limit (N) is reached",
// and drops a client that has not completed the handshake within
// handshake_timeout (10 s by default). These tests need Warren's
// configuration and skip against an external broker.

import (
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp"
)

func TestLimitsMaxConnections(t *testing.T) {
	b := startBroker(t, func(c *amqp.Config) { c.MaxConnections = 2 })
	b.skipIfExternal(t)

	first := b.dial(t)
	second := b.dial(t)

	r := requireOpenRefused(t, b, "NOT_ALLOWED - connection refused: node connection limit (2) is reached")
	r.requireEOF()

	_, err := amqp091.DialConfig(b.URL, amqp091.Config{Dial: amqp091.DefaultDial(timeout)})
	require.Error(t, err)
	requireConnUsable(t, first)

	// Closing one makes room for another; refused clients did not use a slot.
	require.NoError(t, second.Close())
	require.Eventually(t, func() bool {
		c, err := amqp091.DialConfig(b.URL, amqp091.Config{Dial: amqp091.DefaultDial(timeout)})
		if err != nil {
			return false
		}
		t.Cleanup(func() { _ = c.Close() })
		return true
	}, timeout, 20*time.Millisecond)
}

func TestLimitsHandshakeTimeout(t *testing.T) {
	const ht = 300 * time.Millisecond
	b := startBroker(t, func(c *amqp.Config) { c.HandshakeTimeout = ht })
	b.skipIfExternal(t)

	for _, tc := range []struct {
		name string
		say  func(r *rawConn)
	}{
		{"silent", func(r *rawConn) {}},
		{"header only", func(r *rawConn) { r.write([]byte(protocolHeader)); r.readMethod(10, 10) }},
		{"stops before open", func(r *rawConn) { r.login("guest", "guest", func(tn *tune) { tn.Heartbeat = 0 }) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, b)
			start := time.Now()
			tc.say(r)
			r.requireEOF()
			took := time.Since(start)
			require.GreaterOrEqual(t, took, ht-50*time.Millisecond)
			require.Less(t, took, ht+2*time.Second)
		})
	}

	// A client that completes the handshake is not affected once open.
	conn := b.dial(t)
	time.Sleep(2 * ht)
	requireConnUsable(t, conn)
}

func TestLimitsDefaults(t *testing.T) {
	require.Equal(t, 10*time.Second, amqp.DefaultConfig().HandshakeTimeout)
	require.Equal(t, 0, amqp.DefaultConfig().MaxConnections)
}

// TestLimitsPerVhost: RabbitMQ's per-vhost limits, with its texts.
func TestLimitsPerVhost(t *testing.T) {
	b := startBroker(t, func(c *amqp.Config) {
		c.VHostLimits.MaxConnections = 2
		c.VHostLimits.MaxQueues = 2
	})
	b.skipIfExternal(t)
	_, ch := b.channel(t)
	for i := range 2 {
		_, err := ch.QueueDeclare(fmt.Sprintf("q%d", i), false, false, false, false, nil)
		require.NoError(t, err)
	}
	_, err := ch.QueueDeclare("q2", false, false, false, false, nil)
	requireAMQPError(t, err, amqp091.PreconditionFailed, "PRECONDITION_FAILED - cannot declare queue 'q2': queue limit in vhost '/' (2) is reached")
	// Redeclaring an existing queue is not a new queue.
	_, ch2 := b.channel(t)
	_, err = ch2.QueueDeclare("q0", false, false, false, false, nil)
	require.NoError(t, err)

	// Two connections are open (b.channel twice); a third is refused.
	requireOpenRefused(t, b, "NOT_ALLOWED - access to vhost '/' refused for user 'guest': connection limit (2) is reached")
}

// requireOpenRefused logs in as guest on a raw connection and checks that
// connection.open is answered with connection.close 530 NOT_ALLOWED and
// exactly text. It returns the connection, whose close-ok has been sent.
func requireOpenRefused(t testing.TB, b *testBroker, text string) *rawConn {
	t.Helper()
	r := dialRaw(t, b)
	r.login("guest", "guest", func(tn *tune) { tn.Heartbeat = 0 })
	r.openVhost("/")
	code, got := r.expectConnectionClose()
	require.Equal(t, uint16(amqp091.NotAllowed), code)
	require.Equal(t, text, got)
	return r
}
