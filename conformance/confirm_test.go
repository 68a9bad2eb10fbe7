package conformance

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recvConfirm waits for one publisher confirm.
func recvConfirm(t testing.TB, c <-chan amqp091.Confirmation) amqp091.Confirmation {
	t.Helper()
	select {
	case cf, ok := <-c:
		require.True(t, ok, "confirm channel closed")
		return cf
	case <-time.After(timeout):
		t.Fatal("no confirm")
		return amqp091.Confirmation{}
	}
}

func TestConfirmAcksInOrder(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)
	require.NoError(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 200))

	// Routed, unroutable and to-a-fanout-with-no-queue all get acked.
	x := declareExchange(t, b, ch, "fanout", "x", nil)
	const n = 150
	for i := range n {
		switch i % 3 {
		case 0:
			publish(t, ch, "", q, fmt.Sprint(i))
		case 1:
			publish(t, ch, "", uniqueName(t, "missing"), fmt.Sprint(i))
		case 2:
			publish(t, ch, x, "", fmt.Sprint(i))
		}
	}
	for i := range n {
		cf := recvConfirm(t, confirms)
		require.Equal(t, uint64(i+1), cf.DeliveryTag)
		require.True(t, cf.Ack)
	}
	requireQueueLen(t, ch, q, n/3)
}

func TestConfirmTagsPerChannel(t *testing.T) {
	b := startBroker(t)
	conn, ch1 := b.channel(t)
	ch2, err := conn.Channel()
	require.NoError(t, err)
	q := declareQueue(t, b, ch1, "q", nil)
	for _, ch := range []*amqp091.Channel{ch1, ch2} {
		require.NoError(t, ch.Confirm(false))
	}
	d1, err := ch1.PublishWithDeferredConfirm("", q, false, false, amqp091.Publishing{Body: []byte("a")})
	require.NoError(t, err)
	d2, err := ch1.PublishWithDeferredConfirm("", q, false, false, amqp091.Publishing{Body: []byte("b")})
	require.NoError(t, err)
	d3, err := ch2.PublishWithDeferredConfirm("", q, false, false, amqp091.Publishing{Body: []byte("c")})
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 1}, []uint64{d1.DeliveryTag, d2.DeliveryTag, d3.DeliveryTag})
	for _, d := range []*amqp091.DeferredConfirmation{d1, d2, d3} {
		select {
		case <-d.Done():
			require.True(t, d.Acked())
		case <-time.After(timeout):
			t.Fatal("no confirm")
		}
	}
}

// TestConfirmRawTags reads the basic.ack frames themselves: delivery tags
// start at 1 on each channel, and with multiple=true an ack covers every
// tag up to its own. Persistent messages written in one group commit are
// confirmed by few frames, as RabbitMQ coalesces them.
func TestConfirmRawTags(t *testing.T) {
	b := startBroker(t)
	for _, persistent := range []bool{false, true} {
		t.Run(fmt.Sprint("persistent=", persistent), func(t *testing.T) {
			_, ch := b.channel(t)
			q := uniqueName(t, "q")
			_, err := ch.QueueDeclare(q, persistent, false, false, false, nil)
			require.NoError(t, err)
			b.cleanupQueue(t, q)

			r := dialRaw(t, b)
			r.handshake()
			r.openChannel(1)
			r.send(methodFrame(1, 85, 10, octet(0))) // confirm.select, nowait=false
			r.readMethod(85, 11)                     // select-ok
			const n = 20
			var burst []byte // one write, so that the publishes arrive together
			for i := range n {
				burst = append(burst, methodFrame(1, 60, 40, short(0), shortStr(""), shortStr(q), octet(0)).bytes()...) // basic.publish
				hdr := append(short(60), short(0)...)
				hdr = binary.BigEndian.AppendUint64(hdr, 1) // body size
				if persistent {
					hdr = append(hdr, short(0x1000)...) // delivery-mode present
					hdr = append(hdr, 2)
				} else {
					hdr = append(hdr, short(0)...) // no properties
				}
				burst = append(burst, rawFrame{Type: frameHeader, Channel: 1, Payload: hdr}.bytes()...)
				burst = append(burst, rawFrame{Type: frameBody, Channel: 1, Payload: []byte{byte('a' + i)}}.bytes()...)
			}
			r.write(burst)
			var confirmed uint64
			frames := 0
			for confirmed < n {
				f := r.readMethod(60, 80) // basic.ack
				frames++
				tag := binary.BigEndian.Uint64(f.Payload[4:])
				multiple := f.Payload[12]&1 == 1
				require.Greater(t, tag, confirmed, "acks only move forward")
				if !multiple {
					require.Equal(t, confirmed+1, tag, "a single ack confirms the next tag")
				}
				confirmed = tag
			}
			require.Equal(t, uint64(n), confirmed)
			if persistent {
				assert.LessOrEqual(t, frames, n/2, "confirms of one commit share a frame")
			}
			requireQueueLen(t, ch, q, n)
		})
	}
}

func TestConfirmMandatoryReturnBeforeAck(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	require.NoError(t, ch.Confirm(false))
	returns := ch.NotifyReturn(make(chan amqp091.Return, 1))
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 1))

	require.NoError(t, ch.Publish("", uniqueName(t, "missing"), true, false, amqp091.Publishing{Body: []byte("m")}))
	cf := recvConfirm(t, confirms)
	require.True(t, cf.Ack, "an unroutable message is acked, not nacked")
	require.Equal(t, uint64(1), cf.DeliveryTag)
	// The client library hands over frames in order, so the return that
	// preceded the ack is already waiting.
	select {
	case r := <-returns:
		require.Equal(t, uint16(amqp091.NoRoute), r.ReplyCode)
		require.Equal(t, "NO_ROUTE", r.ReplyText)
	default:
		t.Fatal("basic.return must come before basic.ack")
	}
}

// TestConfirmNackOnRejectPublish: a queue with x-overflow=reject-publish is
// the one way to get a basic.nack from RabbitMQ on demand.
func TestConfirmNackOnRejectPublish(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", amqp091.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"})
	require.NoError(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 3))
	for _, body := range []string{"1", "2", "3"} {
		publish(t, ch, "", q, body)
	}
	var acks []bool
	for range 3 {
		acks = append(acks, recvConfirm(t, confirms).Ack)
	}
	require.Equal(t, []bool{true, false, false}, acks)
	require.Equal(t, []string{"1"}, drain(t, ch, q))
}

func TestConfirmAndTxExclusive(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []struct {
		name  string
		first func(ch *amqp091.Channel) error
		then  func(ch *amqp091.Channel) error
		text  string
	}{
		{"confirm after tx", (*amqp091.Channel).Tx, func(ch *amqp091.Channel) error { return ch.Confirm(false) },
			"PRECONDITION_FAILED - cannot switch from tx to confirm mode"},
		{"tx after confirm", func(ch *amqp091.Channel) error { return ch.Confirm(false) }, (*amqp091.Channel).Tx,
			"PRECONDITION_FAILED - cannot switch from confirm to tx mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, ch := b.channel(t)
			other, err := conn.Channel()
			require.NoError(t, err)
			require.NoError(t, tc.first(ch))
			requireAMQPError(t, tc.then(ch), amqp091.PreconditionFailed, tc.text)
			requireUsable(t, other)
		})
	}

	// Selecting the same mode twice is fine.
	_, ch := b.channel(t)
	require.NoError(t, ch.Confirm(false))
	require.NoError(t, ch.Confirm(false))
	_, ch = b.channel(t)
	require.NoError(t, ch.Tx())
	require.NoError(t, ch.Tx())
}
