package conformance

import (
	"fmt"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// TestConsumeServerGeneratedTag uses raw frames: amqp091-go invents a tag
// itself when given an empty one.
func TestConsumeServerGeneratedTag(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)

	r := dialRaw(t, b)
	r.handshake()
	r.openChannel(1)
	r.send(methodFrame(1, 60, 20, short(0), shortStr(q), shortStr(""), octet(0), emptyTable())) // basic.consume
	f := r.readMethod(60, 21)                                                                   // consume-ok
	// The payload is class, method, then the consumer tag as a shortstr.
	tag := string(f.Payload[5 : 5+int(f.Payload[4])])
	require.True(t, strings.HasPrefix(tag, "amq.ctag-"), tag)

	// Deliveries carry that tag.
	publish(t, ch, "", q, "m")
	f = r.readMethod(60, 60) // basic.deliver
	require.Equal(t, tag, string(f.Payload[5:5+int(f.Payload[4])]))
}

func TestConsumeDuplicateTag(t *testing.T) {
	b := startBroker(t)
	conn, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)
	closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
	_, err := ch.Consume(q, "dup", false, false, false, false, nil)
	require.NoError(t, err)
	_, err = ch.Consume(q, "dup", false, false, false, false, nil)
	// A connection error, not a channel error.
	requireAMQPError(t, err, amqp091.NotAllowed, "NOT_ALLOWED - attempt to reuse consumer tag 'dup'")
	requireClosedWith(t, closed, amqp091.NotAllowed, "NOT_ALLOWED - attempt to reuse consumer tag 'dup'")
	requireConnUsable(t, b.dial(t))

	// The same tag on another channel is fine.
	c2 := b.dial(t)
	ch1, err := c2.Channel()
	require.NoError(t, err)
	ch2, err := c2.Channel()
	require.NoError(t, err)
	_, err = ch1.Consume(q, "dup", false, false, false, false, nil)
	require.NoError(t, err)
	_, err = ch2.Consume(q, "dup", false, false, false, false, nil)
	require.NoError(t, err)
}

func TestConsumeExclusive(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)

	t.Run("exclusive first", func(t *testing.T) {
		q := declareQueue(t, b, ch, "q", nil)
		_, err := ch.Consume(q, "", false, true, false, false, nil)
		require.NoError(t, err)
		conn, other := b.channel(t)
		_, err = other.Consume(q, "", false, false, false, false, nil)
		requireAMQPError(t, err, amqp091.AccessRefused, "ACCESS_REFUSED - queue '"+q+"' in vhost '/' in exclusive use")
		requireConnUsable(t, conn)
	})
	t.Run("exclusive second", func(t *testing.T) {
		q := declareQueue(t, b, ch, "q", nil)
		_, err := ch.Consume(q, "", false, false, false, false, nil)
		require.NoError(t, err)
		conn, other := b.channel(t)
		_, err = other.Consume(q, "", false, true, false, false, nil)
		requireAMQPError(t, err, amqp091.AccessRefused, "ACCESS_REFUSED - queue '"+q+"' in vhost '/' in exclusive use")
		requireConnUsable(t, conn)
	})
	requireUsable(t, ch)
}

func TestConsumeNoAck(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)
	d, err := ch.Consume(q, "c", true, false, false, false, nil)
	require.NoError(t, err)
	for i := range 3 {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	for i := range 3 {
		m := recv(t, d)
		require.Equal(t, fmt.Sprint(i), string(m.Body))
		require.Equal(t, uint64(i+1), m.DeliveryTag)
		require.Equal(t, "c", m.ConsumerTag)
		require.False(t, m.Redelivered)
		require.Equal(t, q, m.RoutingKey)
		require.Equal(t, "", m.Exchange)
	}
	// Nothing is waiting for an ack: closing the channel requeues nothing.
	require.NoError(t, ch.Close())
	_, ch2 := b.channel(t)
	requireQueueLen(t, ch2, q, 0)
}

func TestConsumeCancel(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)
	d, err := ch.Consume(q, "c", false, false, false, false, nil)
	require.NoError(t, err)
	publish(t, ch, "", q, "1")
	m := recv(t, d)
	require.NoError(t, ch.Cancel("c", false))
	select {
	case _, ok := <-d:
		require.False(t, ok, "delivery channel closes after cancel")
	case <-time.After(timeout):
		t.Fatal("delivery channel not closed")
	}
	publish(t, ch, "", q, "2")
	requireQueueLen(t, ch, q, 1)
	// The delivery made before the cancel can still be acknowledged.
	require.NoError(t, m.Ack(false))
	require.Equal(t, []string{"2"}, drain(t, ch, q))

	// Cancelling an unknown tag is not an error.
	require.NoError(t, ch.Cancel("no-such-consumer", false))
	requireUsable(t, ch)
}

func TestConsumeCancelNotifyOnQueueDelete(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)
	cancels := ch.NotifyCancel(make(chan string, 1))
	d, err := ch.Consume(q, "c", false, false, false, false, nil)
	require.NoError(t, err)

	_, other := b.channel(t)
	_, err = other.QueueDelete(q, false, false, false)
	require.NoError(t, err)
	select {
	case tag := <-cancels:
		require.Equal(t, "c", tag)
	case <-time.After(timeout):
		t.Fatal("no basic.cancel from the server")
	}
	select {
	case _, ok := <-d:
		require.False(t, ok)
	case <-time.After(timeout):
		t.Fatal("delivery channel not closed")
	}
	requireUsable(t, ch)
}

func TestConsumeGet(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)

	_, ok, err := ch.Get(q, false)
	require.NoError(t, err)
	require.False(t, ok, "get-empty")

	for i := range 3 {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	requireQueueLen(t, ch, q, 3)
	for i := range 3 {
		m, ok, err := ch.Get(q, false)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, fmt.Sprint(i), string(m.Body))
		require.Equal(t, uint32(2-i), m.MessageCount, "messages left after this one")
		require.Equal(t, uint64(i+1), m.DeliveryTag)
		require.Equal(t, q, m.RoutingKey)
	}
	_, ok, err = ch.Get(q, false)
	require.NoError(t, err)
	require.False(t, ok)
}

// getN fetches n messages without acking and returns them.
func getN(t testing.TB, ch *amqp091.Channel, q string, n int) []amqp091.Delivery {
	t.Helper()
	var out []amqp091.Delivery
	for range n {
		out = append(out, getOne(t, ch, q))
	}
	return out
}

func TestConsumeAckNackReject(t *testing.T) {
	b := startBroker(t)

	for _, tc := range []struct {
		name string
		// settle settles some of the five fetched messages 0..4.
		settle func(t *testing.T, ch *amqp091.Channel, ms []amqp091.Delivery)
		// ready is the queue afterwards, in order; the messages that were
		// requeued are marked with a "*" for Redelivered.
		ready []string
	}{
		{"ack single", func(t *testing.T, ch *amqp091.Channel, ms []amqp091.Delivery) {
			require.NoError(t, ch.Ack(ms[1].DeliveryTag, false))
		}, []string{"0*", "2*", "3*", "4*"}},
		{"ack multiple", func(t *testing.T, ch *amqp091.Channel, ms []amqp091.Delivery) {
			require.NoError(t, ch.Ack(ms[2].DeliveryTag, true))
		}, []string{"3*", "4*"}},
		{"ack multiple with 0 acks all", func(t *testing.T, ch *amqp091.Channel, ms []amqp091.Delivery) {
			require.NoError(t, ch.Ack(0, true))
		}, nil},
		{"reject requeue", func(t *testing.T, ch *amqp091.Channel, ms []amqp091.Delivery) {
			require.NoError(t, ch.Reject(ms[2].DeliveryTag, true))
			require.NoError(t, ch.Ack(0, true))
		}, []string{"2*"}},
		{"reject drop", func(t *testing.T, ch *amqp091.Channel, ms []amqp091.Delivery) {
			require.NoError(t, ch.Reject(ms[2].DeliveryTag, false))
			require.NoError(t, ch.Ack(0, true))
		}, nil},
		{"nack multiple requeue", func(t *testing.T, ch *amqp091.Channel, ms []amqp091.Delivery) {
			require.NoError(t, ch.Nack(ms[2].DeliveryTag, true, true))
			require.NoError(t, ch.Ack(0, true))
		}, []string{"0*", "1*", "2*"}},
		{"nack multiple drop", func(t *testing.T, ch *amqp091.Channel, ms []amqp091.Delivery) {
			require.NoError(t, ch.Nack(ms[2].DeliveryTag, true, false))
			require.NoError(t, ch.Ack(0, true))
		}, nil},
		{"requeue goes back to the original position", func(t *testing.T, ch *amqp091.Channel, ms []amqp091.Delivery) {
			// Requeue 3 then 1: the queue is ordered by publish order again.
			require.NoError(t, ch.Reject(ms[3].DeliveryTag, true))
			require.NoError(t, ch.Reject(ms[1].DeliveryTag, true))
			require.NoError(t, ch.Ack(0, true))
		}, []string{"1*", "3*", "5", "6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ch := b.channel(t)
			q := declareQueue(t, b, ch, "q", nil)
			for i := range 7 {
				publish(t, ch, "", q, fmt.Sprint(i))
			}
			requireQueueLen(t, ch, q, 7)
			ms := getN(t, ch, q, 5)
			tc.settle(t, ch, ms)
			// Whatever is still unacked goes back when the channel closes.
			require.NoError(t, ch.Close())

			_, ch2 := b.channel(t)
			var got []string
			for {
				m, ok, err := ch2.Get(q, true)
				require.NoError(t, err)
				if !ok {
					break
				}
				s := string(m.Body)
				if m.Redelivered {
					s += "*"
				}
				got = append(got, s)
			}
			want := tc.ready
			if tc.name != "requeue goes back to the original position" {
				want = append(append([]string(nil), tc.ready...), "5", "6")
			}
			require.Equal(t, want, got)
		})
	}
}

func TestConsumeBadAcks(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []struct {
		name string
		run  func(ch *amqp091.Channel, tag uint64) error
		text string
	}{
		{"unknown tag", func(ch *amqp091.Channel, tag uint64) error { return ch.Ack(tag+41, false) }, "PRECONDITION_FAILED - unknown delivery tag 42"},
		{"unknown tag multiple", func(ch *amqp091.Channel, tag uint64) error { return ch.Ack(tag+41, true) }, "PRECONDITION_FAILED - unknown delivery tag 42"},
		{"double ack", func(ch *amqp091.Channel, tag uint64) error {
			require.NoError(t, ch.Ack(tag, false))
			return ch.Ack(tag, false)
		}, "PRECONDITION_FAILED - unknown delivery tag 1"},
		{"nack unknown", func(ch *amqp091.Channel, tag uint64) error { return ch.Nack(tag+41, false, true) }, "PRECONDITION_FAILED - unknown delivery tag 42"},
		{"reject unknown", func(ch *amqp091.Channel, tag uint64) error { return ch.Reject(tag+41, true) }, "PRECONDITION_FAILED - unknown delivery tag 42"},
		{"ack after no-ack get", func(ch *amqp091.Channel, tag uint64) error {
			require.NoError(t, ch.Ack(tag, false))
			m, ok, err := ch.Get(declareQueueOn(t, b, ch), true)
			require.NoError(t, err)
			require.True(t, ok)
			return ch.Ack(m.DeliveryTag, false)
		}, "PRECONDITION_FAILED - unknown delivery tag 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, ch := b.channel(t)
			other, err := conn.Channel()
			require.NoError(t, err)
			q := declareQueue(t, b, ch, "q", nil)
			publish(t, ch, "", q, "m")
			requireQueueLen(t, ch, q, 1)
			m, ok, err := ch.Get(q, false)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, uint64(1), m.DeliveryTag)

			closed := notifyClose(ch)
			require.NoError(t, tc.run(ch, m.DeliveryTag)) // acks are asynchronous
			requireClosedWith(t, closed, amqp091.PreconditionFailed, tc.text)
			requireUsable(t, other)
		})
	}
}

// declareQueueOn declares a queue holding one message.
func declareQueueOn(t *testing.T, b *testBroker, ch *amqp091.Channel) string {
	q := declareQueue(t, b, ch, "q2", nil)
	publish(t, ch, "", q, "x")
	requireQueueLen(t, ch, q, 1)
	return q
}

func TestConsumeUnackedRequeuedOnClose(t *testing.T) {
	b := startBroker(t)
	for _, closeConn := range []bool{false, true} {
		t.Run(fmt.Sprintf("connection=%v", closeConn), func(t *testing.T) {
			conn, ch := b.channel(t)
			q := declareQueue(t, b, ch, "q", nil)
			for i := range 3 {
				publish(t, ch, "", q, fmt.Sprint(i))
			}
			d, err := ch.Consume(q, "", false, false, false, false, nil)
			require.NoError(t, err)
			for range 3 {
				recv(t, d)
			}
			require.NoError(t, ch.Ack(1, false))
			if closeConn {
				require.NoError(t, conn.Close())
			} else {
				require.NoError(t, ch.Close())
			}

			_, ch2 := b.channel(t)
			requireQueueLen(t, ch2, q, 2)
			d2, err := ch2.Consume(q, "", false, false, false, false, nil)
			require.NoError(t, err)
			for _, want := range []string{"1", "2"} {
				m := recv(t, d2)
				require.Equal(t, want, string(m.Body))
				require.True(t, m.Redelivered)
			}
		})
	}
}

// countDeliveries collects deliveries until none arrive for a short while.
func countDeliveries(t testing.TB, ds ...<-chan amqp091.Delivery) ([]int, []amqp091.Delivery) {
	t.Helper()
	counts := make([]int, len(ds))
	var all []amqp091.Delivery
	for {
		got := false
		for i, d := range ds {
			select {
			case m := <-d:
				counts[i]++
				all = append(all, m)
				got = true
			case <-time.After(300 * time.Millisecond):
			}
		}
		if !got {
			return counts, all
		}
	}
}

func TestConsumeQos(t *testing.T) {
	b := startBroker(t)

	for _, tc := range []struct {
		name     string
		qos      func(ch *amqp091.Channel)
		want     int // messages delivered to both consumers together
		perCount int // -1: any split
	}{
		{"per consumer", func(ch *amqp091.Channel) { require.NoError(t, ch.Qos(2, 0, false)) }, 4, 2},
		{"global per channel", func(ch *amqp091.Channel) { require.NoError(t, ch.Qos(3, 0, true)) }, 3, -1},
		{"both limits", func(ch *amqp091.Channel) {
			require.NoError(t, ch.Qos(5, 0, true))
			require.NoError(t, ch.Qos(2, 0, false))
		}, 4, 2},
		{"global tighter", func(ch *amqp091.Channel) {
			require.NoError(t, ch.Qos(2, 0, false))
			require.NoError(t, ch.Qos(3, 0, true))
		}, 3, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ch := b.channel(t)
			q := declareQueue(t, b, ch, "q", nil)
			for i := range 10 {
				publish(t, ch, "", q, fmt.Sprint(i))
			}
			requireQueueLen(t, ch, q, 10)
			tc.qos(ch)
			d1, err := ch.Consume(q, "", false, false, false, false, nil)
			require.NoError(t, err)
			d2, err := ch.Consume(q, "", false, false, false, false, nil)
			require.NoError(t, err)

			counts, ms := countDeliveries(t, d1, d2)
			require.Equal(t, tc.want, counts[0]+counts[1], "counts %v", counts)
			if tc.perCount >= 0 {
				require.Equal(t, []int{tc.perCount, tc.perCount}, counts)
			}
			// One ack frees one slot.
			require.NoError(t, ms[0].Ack(false))
			counts, _ = countDeliveries(t, d1, d2)
			require.Equal(t, 1, counts[0]+counts[1])
		})
	}
}

// TestConsumeQosAppliesToLaterConsumers: basic.qos with global=false changes
// the limit of consumers created afterwards only.
func TestConsumeQosAppliesToLaterConsumers(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)
	for i := range 10 {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	requireQueueLen(t, ch, q, 10)
	require.NoError(t, ch.Qos(1, 0, false))
	d1, err := ch.Consume(q, "", false, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.Qos(3, 0, false))
	d2, err := ch.Consume(q, "", false, false, false, false, nil)
	require.NoError(t, err)
	counts, _ := countDeliveries(t, d1, d2)
	require.Equal(t, []int{1, 3}, counts)
}

func TestConsumeRecover(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)
	d, err := ch.Consume(q, "", false, false, false, false, nil)
	require.NoError(t, err)
	publish(t, ch, "", q, "1")
	publish(t, ch, "", q, "2")
	first := recv(t, d)
	recv(t, d)
	require.NoError(t, first.Ack(false))

	require.NoError(t, ch.Recover(true))
	m := recv(t, d)
	require.Equal(t, "2", string(m.Body))
	require.True(t, m.Redelivered)
	require.Equal(t, uint64(3), m.DeliveryTag, "delivery tags keep counting")
	require.NoError(t, m.Ack(false))
	requireNoDelivery(t, d)
}

func TestConsumeRoundRobin(t *testing.T) {
	b := startBroker(t)

	t.Run("alternates", func(t *testing.T) {
		_, ch := b.channel(t)
		q := declareQueue(t, b, ch, "q", nil)
		_, c1 := b.channel(t)
		_, c2 := b.channel(t)
		d1, err := c1.Consume(q, "", true, false, false, false, nil)
		require.NoError(t, err)
		d2, err := c2.Consume(q, "", true, false, false, false, nil)
		require.NoError(t, err)
		for i := range 6 {
			publish(t, ch, "", q, fmt.Sprint(i))
		}
		var got1, got2 []string
		for range 3 {
			got1 = append(got1, string(recv(t, d1).Body))
			got2 = append(got2, string(recv(t, d2).Body))
		}
		require.Equal(t, []string{"0", "2", "4"}, got1)
		require.Equal(t, []string{"1", "3", "5"}, got2)
	})

	t.Run("skips a consumer at its prefetch limit", func(t *testing.T) {
		_, ch := b.channel(t)
		q := declareQueue(t, b, ch, "q", nil)
		_, c1 := b.channel(t)
		_, c2 := b.channel(t)
		require.NoError(t, c1.Qos(1, 0, false))
		d1 := consume(t, c1, q, nil)
		d2 := consume(t, c2, q, nil)
		for i := range 6 {
			publish(t, ch, "", q, fmt.Sprint(i))
		}
		counts, _ := countDeliveries(t, d1, d2)
		require.Equal(t, []int{1, 5}, counts)
	})
}

// TestConsumeChannelFlow: RabbitMQ 3.10 accepts channel.flow active=true and
// refuses active=false with a 540 NOT_IMPLEMENTED connection error.
func TestConsumeChannelFlow(t *testing.T) {
	b := startBroker(t)
	conn, ch := b.channel(t)
	require.NoError(t, ch.Flow(true))
	requireUsable(t, ch)

	closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
	err := ch.Flow(false)
	requireAMQPError(t, err, amqp091.NotImplemented, "NOT_IMPLEMENTED - active=false")
	requireClosedWith(t, closed, amqp091.NotImplemented, "NOT_IMPLEMENTED - active=false")
	requireConnUsable(t, b.dial(t))
}
