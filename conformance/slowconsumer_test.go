package conformance

import (
	"net"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// TestSlowConsumerDoesNotStallOthers: a consumer whose client stops reading
// its socket (no-ack, so prefetch does not limit it) fills only its own
// connection's bounded outbound buffer; the queue goes on serving the other
// consumer, the publisher is not held, and other connections work.
func TestSlowConsumerDoesNotStallOthers(t *testing.T) {
	b := startBroker(t)
	b.skipIfExternal(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)

	// The stuck consumer: a raw client that consumes with no-ack and then
	// never reads again, with a small receive buffer so TCP pushes back soon.
	r := dialRaw(t, b)
	if tc, ok := r.conn.(*net.TCPConn); ok {
		require.NoError(t, tc.SetReadBuffer(4096))
	}
	r.handshake()
	r.openChannel(1)
	r.send(methodFrame(1, 60, 20, short(0), shortStr(q), shortStr("stuck"), octet(0b010), emptyTable())) // basic.consume no-ack
	r.readMethod(60, 21)                                                                                 // consume-ok, then silence

	// The healthy consumer, on its own connection.
	_, good := b.channel(t)
	deliveries, err := good.Consume(q, "", true, false, false, false, nil)
	require.NoError(t, err)

	const n = 40000
	body := make([]byte, 1024)
	received := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range deliveries {
			received++
			// Round-robin alone would give it half. The stuck consumer
			// holds only its bounded buffer (1 MiB queued, one batch in the
			// blocked write, and what the kernel's socket buffers take: a
			// few thousand of these messages), so most go here.
			if received == n*3/4 {
				return
			}
		}
	}()
	for range n {
		require.NoError(t, ch.Publish("", q, false, false, amqp091.Publishing{Body: body}))
	}
	select {
	case <-done:
	case <-time.After(2 * timeout):
		t.Fatalf("healthy consumer stalled after %d deliveries", received)
	}
	// Other connections are unaffected.
	requireConnUsable(t, b.dial(t))
}
