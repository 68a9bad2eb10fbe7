package conformance

// Differences from RabbitMQ 3.10.8 found by sending the same bytes to both;
// each test here passes against both (WARREN_TEST_AMQP_URL).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// closeFrame is a connection.close or channel.close as received.
type closeFrame struct {
	Channel       uint16
	Code          uint16
	Text          string
	Class, Method uint16
}

// expectClose reads frames until a connection.close or channel.close,
// answers a connection.close with close-ok, and returns it.
func (r *rawConn) expectClose() closeFrame {
	r.t.Helper()
	for {
		f := r.read()
		if f.Type != frameMethod || len(f.Payload) < 4 {
			continue
		}
		class, method := binary.BigEndian.Uint16(f.Payload), binary.BigEndian.Uint16(f.Payload[2:])
		if !(class == 10 && method == 50) && !(class == 20 && method == 40) {
			continue
		}
		p := f.Payload[4:]
		n := int(p[2])
		c := closeFrame{
			Channel: f.Channel, Code: binary.BigEndian.Uint16(p), Text: string(p[3 : 3+n]),
			Class: binary.BigEndian.Uint16(p[3+n:]), Method: binary.BigEndian.Uint16(p[5+n:]),
		}
		if class == 10 {
			r.send(methodFrame(0, 10, 51))
		}
		return c
	}
}

// requireSilentDrop checks that the server sends nothing and closes the
// socket, and returns how long that took.
func (r *rawConn) requireSilentDrop() time.Duration {
	r.t.Helper()
	start := time.Now()
	var b [1]byte
	n, err := r.conn.Read(b[:])
	require.Zero(r.t, n, "the server sent something: %x", b[:n])
	var ne net.Error
	require.False(r.t, errors.As(err, &ne) && ne.Timeout(), "the server did not close the socket")
	return time.Since(start)
}

// TestWireLoginRefused: RabbitMQ answers a refused login with
// connection.close 403 only to a client whose capabilities include
// authentication_failure_close; any other client, and any client with an
// unknown mechanism or a malformed response, hears nothing and is dropped
// after a delay (3 s, against password guessing).
func TestWireLoginRefused(t *testing.T) {
	b := startBroker(t)
	capabilities := func(value byte) []byte {
		inner := append(shortStr("authentication_failure_close"), 't', value)
		outer := append(shortStr("capabilities"), 'F')
		outer = append(append(outer, long(uint32(len(inner)))...), inner...)
		return append(long(uint32(len(outer))), outer...)
	}
	const refused = "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile."
	for _, tc := range []struct {
		name      string
		props     []byte
		mechanism string
		response  string
		close     bool // connection.close 403 rather than a silent drop
	}{
		{"wrong password, capability", capabilities(1), "PLAIN", "\x00guest\x00wrong", true},
		{"unknown user, capability", capabilities(1), "PLAIN", "\x00nobody-" + uniqueName(t, "u") + "\x00x", true},
		{"wrong password, no capabilities", emptyTable(), "PLAIN", "\x00guest\x00wrong", false},
		{"wrong password, capability false", capabilities(0), "PLAIN", "\x00guest\x00wrong", false},
		{"unknown mechanism, capability", capabilities(1), "FOO", "\x00guest\x00guest", false},
		{"malformed PLAIN response, capability", capabilities(1), "PLAIN", "garbage", false},
		{"malformed AMQPLAIN response, capability", capabilities(1), "AMQPLAIN", "garbage", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // the silent drops take 3 s each
			r := dialRaw(t, b)
			r.write([]byte(protocolHeader))
			r.readMethod(10, 10)
			r.send(methodFrame(0, 10, 11, tc.props, shortStr(tc.mechanism), longStr(tc.response), shortStr("en_US")))
			if tc.close {
				c := r.expectClose()
				require.Equal(t, closeFrame{Code: 403, Text: refused}, c)
				r.requireEOF()
				return
			}
			took := r.requireSilentDrop()
			require.Greater(t, took, 2500*time.Millisecond, "dropped after RabbitMQ's 3 s delay")
		})
	}
}

// TestWirePassiveDeclareDefaultExchange: the default exchange cannot be
// declared, not even passively.
func TestWirePassiveDeclareDefaultExchange(t *testing.T) {
	b := startBroker(t)
	for _, kind := range []string{"", "direct"} {
		t.Run("type "+kind, func(t *testing.T) {
			r := dialRaw(t, b)
			r.handshake()
			r.openChannel(1)
			r.send(methodFrame(1, 40, 10, short(0), shortStr(""), shortStr(kind), octet(1), emptyTable())) // passive
			require.Equal(t, closeFrame{Channel: 1, Code: 403, Text: "ACCESS_REFUSED - operation not permitted on the default exchange", Class: 40, Method: 10}, r.expectClose())
		})
	}
	_, ch := b.channel(t)
	requireAMQPError(t, ch.ExchangeDeclarePassive("", "direct", true, false, false, false, nil),
		amqp091.AccessRefused, "ACCESS_REFUSED - operation not permitted on the default exchange")
}

// TestWireSingleActiveConsumerHandover: cancelling the active consumer
// makes the next one active, but RabbitMQ 3.10 does not hand it the waiting
// messages then (basic.cancel does not run the queue), nor when the
// cancelled consumer's messages are acked or rejected: only when something
// runs the queue again: a requeue, a new consumer, or the cancelled
// consumer's channel closing.
func TestWireSingleActiveConsumerHandover(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []struct {
		name string
		// settle does something with the two messages the cancelled
		// consumer holds; next is what the waiting consumer then gets.
		settle func(t *testing.T, m1, m2 amqp091.Delivery, chA *amqp091.Channel)
		next   []string
		// then, after chA closes.
		then []string
	}{
		{"ack one by one", func(t *testing.T, m1, m2 amqp091.Delivery, _ *amqp091.Channel) {
			require.NoError(t, m1.Ack(false))
			require.NoError(t, m2.Ack(false))
		}, nil, []string{"m3", "m4"}},
		{"ack multiple", func(t *testing.T, _, m2 amqp091.Delivery, _ *amqp091.Channel) {
			require.NoError(t, m2.Ack(true))
		}, nil, []string{"m3", "m4"}},
		{"reject", func(t *testing.T, m1, m2 amqp091.Delivery, _ *amqp091.Channel) {
			require.NoError(t, m1.Reject(false))
			require.NoError(t, m2.Reject(false))
		}, nil, []string{"m3", "m4"}},
		{"nothing", func(*testing.T, amqp091.Delivery, amqp091.Delivery, *amqp091.Channel) {},
			nil, []string{"m1*", "m2*", "m3", "m4"}},
		{"nack with requeue", func(t *testing.T, m1, _ amqp091.Delivery, _ *amqp091.Channel) {
			require.NoError(t, m1.Nack(false, true))
		}, []string{"m1*", "m3", "m4"}, []string{"m2*"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, pub := b.channel(t)
			q := declareQueue(t, b, pub, "sac", amqp091.Table{"x-single-active-consumer": true})
			_, chA := b.channel(t)
			require.NoError(t, chA.Qos(2, 0, false))
			dA, err := chA.Consume(q, "a", false, false, false, false, nil)
			require.NoError(t, err)
			_, chB := b.channel(t)
			dB, err := chB.Consume(q, "b", false, false, false, false, nil)
			require.NoError(t, err)
			for i := 1; i <= 4; i++ {
				publish(t, pub, "", q, fmt.Sprintf("m%d", i))
			}
			m1, m2 := recv(t, dA), recv(t, dA)
			require.Equal(t, []string{"m1", "m2"}, []string{string(m1.Body), string(m2.Body)})
			// All four are in: a publish would run the queue (and crashes
			// RabbitMQ 3.10.8's queue in this state).
			requireQueueLen(t, pub, q, 2)

			require.NoError(t, chA.Cancel("a", false))
			requireNoDelivery(t, dB)
			tc.settle(t, m1, m2, chA)
			got := func(want []string) {
				t.Helper()
				for _, w := range want {
					m := recv(t, dB)
					require.Equal(t, fmt.Sprintf("%s redelivered=%t", w[:2], len(w) > 2), fmt.Sprintf("%s redelivered=%t", m.Body, m.Redelivered))
				}
				requireNoDelivery(t, dB)
			}
			got(tc.next)
			require.NoError(t, chA.Close())
			got(tc.then)
		})
	}

	t.Run("new consumer", func(t *testing.T) {
		_, pub := b.channel(t)
		q := declareQueue(t, b, pub, "sac", amqp091.Table{"x-single-active-consumer": true})
		_, chA := b.channel(t)
		require.NoError(t, chA.Qos(1, 0, false))
		dA, err := chA.Consume(q, "a", false, false, false, false, nil)
		require.NoError(t, err)
		_, chB := b.channel(t)
		dB, err := chB.Consume(q, "b", false, false, false, false, nil)
		require.NoError(t, err)
		publish(t, pub, "", q, "m1")
		publish(t, pub, "", q, "m2")
		recv(t, dA)
		requireQueueLen(t, pub, q, 1)
		require.NoError(t, chA.Cancel("a", false))
		requireNoDelivery(t, dB)
		_, chC := b.channel(t)
		_, err = chC.Consume(q, "c", false, false, false, false, nil)
		require.NoError(t, err)
		require.Equal(t, "m2", string(recv(t, dB).Body), "the new consumer waits; the active one gets the backlog")
	})
}

// TestWireDirectReplyToDeliveryTags: a direct reply carries the channel's
// next delivery tag without using it up (rabbit_channel's deliver_reply
// does not advance next_tag): every reply between two deliveries has the
// same tag, and the next delivery takes it.
func TestWireDirectReplyToDeliveryTags(t *testing.T) {
	b := startBroker(t)
	_, srv := b.channel(t)
	rpc := declareQueue(t, b, srv, "rpc", nil)
	other := declareQueue(t, b, srv, "other", nil)
	requests, err := srv.Consume(rpc, "", true, false, false, false, nil)
	require.NoError(t, err)

	_, cli := b.channel(t)
	replies, err := cli.Consume(directReplyTo, "", true, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, cli.Publish("", rpc, false, false, amqp091.Publishing{ReplyTo: directReplyTo, Body: []byte("req")}))
	replyTo := recv(t, requests).ReplyTo
	reply := func(body string) uint64 {
		t.Helper()
		require.NoError(t, srv.Publish("", replyTo, false, false, amqp091.Publishing{Body: []byte(body)}))
		m := recv(t, replies)
		require.Equal(t, body, string(m.Body))
		return m.DeliveryTag
	}
	require.Equal(t, uint64(1), reply("r1"))
	require.Equal(t, uint64(1), reply("r2"), "the second reply has the same tag")

	publish(t, srv, "", other, "m")
	requireQueueLen(t, srv, other, 1)
	m, ok, err := cli.Get(other, false)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, uint64(1), m.DeliveryTag, "the next delivery takes the tag the replies showed")
	require.NoError(t, m.Ack(false))
	require.Equal(t, uint64(2), reply("r3"))
	requireUsable(t, cli)
}

// TestWireFrameErrors: frames RabbitMQ refuses, with its codes and texts,
// and the failing class and method it reports.
func TestWireFrameErrors(t *testing.T) {
	b := startBroker(t)
	const (
		notOpen   = "CHANNEL_ERROR - expected 'channel.open'"
		onChannel = "CHANNEL_ERROR - unexpected method in connection state running"
		nonMethod = "UNEXPECTED_FRAME - expected method frame, got non method frame instead"
	)
	for _, tc := range []struct {
		name  string
		open  bool // open channel 1 first
		frame rawFrame
		want  closeFrame
	}{
		{"heartbeat on channel 1", true, rawFrame{Type: frameHeartbeat, Channel: 1},
			closeFrame{Code: 505, Text: "UNEXPECTED_FRAME - type 8, all octets = <<>>"}},
		{"heartbeat on an unopened channel", false, rawFrame{Type: frameHeartbeat, Channel: 1},
			closeFrame{Code: 505, Text: "UNEXPECTED_FRAME - type 8, all octets = <<>>"}},
		{"heartbeat with a payload", false, rawFrame{Type: frameHeartbeat, Payload: []byte("xy")},
			closeFrame{Code: 501, Text: `FRAME_ERROR - type 8, all octets = <<"xy">>: unknown_frame`}},
		{"heartbeat with a long payload", false, rawFrame{Type: frameHeartbeat, Payload: []byte("0123456789abcdefghij")},
			closeFrame{Code: 501, Text: `FRAME_ERROR - type 8, first 16 octets = <<"0123456789abcdef">>: unknown_frame`}},
		{"heartbeat with a payload on channel 2", true, rawFrame{Type: frameHeartbeat, Channel: 2, Payload: []byte{0, 1, 200}},
			closeFrame{Code: 501, Text: "FRAME_ERROR - type 8, all octets = <<0,1,200>>: unknown_frame"}},
		{"channel.close on an unopened channel", false, methodFrame(3, 20, 40, short(200), shortStr("bye"), short(0), short(0)),
			closeFrame{Code: 504, Text: notOpen, Class: 20, Method: 40}},
		{"channel.close-ok on an unopened channel", false, methodFrame(3, 20, 41),
			closeFrame{Code: 504, Text: notOpen, Class: 20, Method: 41}},
		{"queue.declare on channel 0", false, methodFrame(0, 50, 10, short(0), shortStr("q"), octet(0), emptyTable()),
			closeFrame{Code: 504, Text: onChannel, Class: 50, Method: 10}},
		{"channel.open on channel 0", false, methodFrame(0, 20, 10, shortStr("")),
			closeFrame{Code: 504, Text: onChannel, Class: 20, Method: 10}},
		{"basic.qos on channel 0", false, methodFrame(0, 60, 10, long(0), short(1), octet(0)),
			closeFrame{Code: 504, Text: onChannel, Class: 60, Method: 10}},
		{"connection.open again", false, methodFrame(0, 10, 40, shortStr("/"), shortStr(""), octet(0)),
			closeFrame{Code: 504, Text: onChannel, Class: 10, Method: 40}},
		{"connection.tune-ok again", false, methodFrame(0, 10, 31, short(0), long(131072), short(0)),
			closeFrame{Code: 504, Text: onChannel, Class: 10, Method: 31}},
		{"connection.close-ok unasked", false, methodFrame(0, 10, 51),
			closeFrame{Code: 504, Text: onChannel, Class: 10, Method: 51}},
		{"connection.blocked from the client", false, methodFrame(0, 10, 60, shortStr("x")),
			closeFrame{Code: 504, Text: onChannel, Class: 10, Method: 60}},
		{"content header on channel 0", false, rawFrame{Type: frameHeader, Payload: contentHeader(60, 1)},
			closeFrame{Code: 505, Text: "UNEXPECTED_FRAME - type 2, all octets = <<0,60,0,0,0,0,0,0,0,0,0,1,0,0>>"}},
		{"content body on channel 0", false, rawFrame{Type: frameBody, Payload: []byte("x")},
			closeFrame{Code: 505, Text: `UNEXPECTED_FRAME - type 3, all octets = <<"x">>`}},
		{"content header on an unopened channel", false, rawFrame{Type: frameHeader, Channel: 5, Payload: contentHeader(60, 1)},
			closeFrame{Code: 505, Text: nonMethod}},
		{"content body on an unopened channel", false, rawFrame{Type: frameBody, Channel: 5, Payload: []byte("x")},
			closeFrame{Code: 505, Text: nonMethod}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, b)
			r.handshake()
			if tc.open {
				r.openChannel(1)
			}
			r.send(tc.frame)
			require.Equal(t, tc.want, r.expectClose())
			r.requireEOF()
		})
	}
	requireConnUsable(t, b.dial(t))
}

// TestWireDeeplyNestedTables: RabbitMQ takes field tables and arrays nested
// as deep as a frame can carry, in arguments and in message headers.
func TestWireDeeplyNestedTables(t *testing.T) {
	b := startBroker(t)
	// nested is a table {x-nested: void wrapped in depth tables {a: ...},
	// or in depth arrays}, written outermost first: a level k deep holds
	// 1+7(k-1) bytes as a table ('F', size, key "a"), 1+5(k-1) as an array.
	nested := func(depth int, arrays bool) []byte {
		v := make([]byte, 0, 7*depth+16)
		for k := depth; k > 0; k-- {
			if arrays {
				v = append(append(v, 'A'), long(uint32(1+5*(k-1)))...)
			} else {
				v = append(append(append(v, 'F'), long(uint32(2+1+7*(k-1)))...), shortStr("a")...)
			}
		}
		e := append(shortStr("x-nested"), append(v, 'V')...)
		return append(long(uint32(len(e))), e...)
	}
	for _, tc := range []struct {
		name  string
		table []byte
	}{
		{"tables 15000 deep", nested(15000, false)},
		{"arrays 26000 deep", nested(26000, true)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, b)
			tn := r.handshake()
			require.Less(t, len(tc.table)+100, int(tn.FrameMax), "fits in a frame")
			r.openChannel(1)
			q := uniqueName(t, "q")
			r.send(methodFrame(1, 50, 10, short(0), shortStr(q), octet(0x08), tc.table)) // auto-delete
			r.readMethod(50, 11)

			// The same table as message headers arrives unchanged.
			props := append(short(0x2000), tc.table...) // headers only
			hdr := append(append(short(60), short(0)...), 0, 0, 0, 0, 0, 0, 0, 1)
			r.send(methodFrame(1, 60, 40, short(0), shortStr(""), shortStr(q), octet(0)))
			r.send(rawFrame{Type: frameHeader, Channel: 1, Payload: append(hdr, props...)})
			r.send(rawFrame{Type: frameBody, Channel: 1, Payload: []byte("x")})
			var got []byte
			require.Eventually(t, func() bool {
				r.send(methodFrame(1, 60, 70, short(0), shortStr(q), octet(1))) // basic.get, no-ack
				f := r.read()
				if binary.BigEndian.Uint16(f.Payload[2:]) == 72 { // get-empty
					return false
				}
				got = r.read().Payload[12:]
				r.read() // body
				return true
			}, timeout, 20*time.Millisecond)
			require.Equal(t, props, got)
			r.send(methodFrame(1, 50, 40, short(0), shortStr(q), octet(0))) // queue.delete
			r.readMethod(50, 41)
		})
	}
}
