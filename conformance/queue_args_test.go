package conformance

import (
	"fmt"
	"sort"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// --- argument validation ------------------------------------------------------

func TestQueueArgsInvalid(t *testing.T) {
	b := startBroker(t)
	// Texts as RabbitMQ 3.10.8 writes them; %s is the queue name.
	const invalid = "PRECONDITION_FAILED - invalid arg '%s' for queue '%s' in vhost '/': "
	for _, tc := range []struct {
		name string
		arg  string
		val  interface{}
		tail string // after "invalid arg ... in vhost '/': "
	}{
		{"max-priority too large", "x-max-priority", int32(256), "{max_value_exceeded,256}"},
		{"max-priority negative", "x-max-priority", int32(-1), "{value_negative,-1}"},
		{"max-priority string", "x-max-priority", "a", `"expected integer, got longstr"`},
		{"max-priority numeric string", "x-max-priority", "10", `"expected integer, got longstr"`},
		{"max-priority bool", "x-max-priority", true, `"expected integer, got bool"`},
		{"message-ttl negative", "x-message-ttl", int32(-1), "{value_negative,-1}"},
		{"message-ttl string", "x-message-ttl", "abc", `"expected integer, got longstr"`},
		{"message-ttl double", "x-message-ttl", 1.5, `"expected integer, got double"`},
		{"message-ttl above ten years", "x-message-ttl", int64(315360000001), "{value_too_large,315360000001}"},
		{"expires zero", "x-expires", int32(0), "{value_zero,0}"},
		{"expires negative", "x-expires", int32(-1), "{value_negative,-1}"},
		{"expires string", "x-expires", "x", `"expected integer, got longstr"`},
		{"expires above ten years", "x-expires", int64(315360000001), "{value_too_large,315360000001}"},
		{"max-length negative", "x-max-length", int32(-1), "{value_negative,-1}"},
		{"max-length string", "x-max-length", "x", `"expected integer, got longstr"`},
		{"max-length double", "x-max-length", 1.5, `"expected integer, got double"`},
		{"max-length-bytes negative", "x-max-length-bytes", int32(-1), "{value_negative,-1}"},
		{"max-length-bytes string", "x-max-length-bytes", "x", `"expected integer, got longstr"`},
		{"overflow unknown", "x-overflow", "foo", "invalid_overflow"},
		{"overflow integer", "x-overflow", int32(1), "{unacceptable_type,signedint}"},
		{"dead-letter-routing-key integer", "x-dead-letter-routing-key", int32(1), "{unacceptable_type,signedint}"},
		{"single-active-consumer string", "x-single-active-consumer", "true", "{unacceptable_type,longstr}"},
		{"single-active-consumer integer", "x-single-active-consumer", int32(1), "{unacceptable_type,signedint}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ch := b.channel(t)
			name := uniqueName(t, "q")
			_, err := ch.QueueDeclare(name, false, false, false, false, amqp091.Table{tc.arg: tc.val})
			requireAMQPError(t, err, amqp091.PreconditionFailed, fmt.Sprintf(invalid, tc.arg, name)+tc.tail)
			requireExactReason(t, err, fmt.Sprintf(invalid, tc.arg, name)+tc.tail)
			requireQueueGone(t, b, name)
		})
	}

	// Other shapes of the same error.
	for _, tc := range []struct {
		name string
		args amqp091.Table
		text string // %[1]s is the queue name
	}{
		{"dead-letter-exchange integer", amqp091.Table{"x-dead-letter-exchange": int32(1)},
			"PRECONDITION_FAILED - invalid type 'signedint' for arg 'x-dead-letter-exchange' in queue '%[1]s' in vhost '/'"},
		{"dead-letter-exchange bytes", amqp091.Table{"x-dead-letter-exchange": []byte("x")},
			"PRECONDITION_FAILED - invalid type 'binary' for arg 'x-dead-letter-exchange' in queue '%[1]s' in vhost '/'"},
		{"dead-letter-routing-key without exchange", amqp091.Table{"x-dead-letter-routing-key": "k"},
			"PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for queue '%[1]s' in vhost '/': routing_key_but_no_dlx_defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ch := b.channel(t)
			name := uniqueName(t, "q")
			_, err := ch.QueueDeclare(name, false, false, false, false, tc.args)
			requireExactReason(t, err, fmt.Sprintf(tc.text, name))
			requireQueueGone(t, b, name)
		})
	}
}

func TestQueueArgsValid(t *testing.T) {
	b := startBroker(t)
	// Edge values RabbitMQ accepts. Integer arguments take any integer type.
	for _, args := range []amqp091.Table{
		{"x-max-priority": int32(0)},
		{"x-max-priority": int32(255)},
		{"x-max-priority": uint8(5)},
		{"x-max-priority": int64(5)},
		{"x-message-ttl": int32(0)},
		{"x-message-ttl": int64(315360000000)},
		{"x-expires": int64(315360000000)},
		{"x-max-length": int32(0)},
		{"x-max-length-bytes": int32(0)},
		{"x-overflow": "drop-head"},
		{"x-overflow": "reject-publish"},
		{"x-overflow": "reject-publish-dlx"},
		{"x-dead-letter-exchange": ""},
		{"x-dead-letter-exchange": "no-such-exchange-is-fine", "x-dead-letter-routing-key": "k"},
		{"x-single-active-consumer": false},
		{"x-single-active-consumer": true},
		{"x-unknown-argument": "ignored"},
	} {
		t.Run(fmt.Sprint(args), func(t *testing.T) {
			_, ch := b.channel(t)
			declareQueue(t, b, ch, "q", args)
		})
	}
}

func TestQueueArgsInequivalent(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	name := declareQueue(t, b, ch, "q", amqp091.Table{"x-max-priority": int32(10)})

	// The same value in another integer type is equivalent.
	_, err := ch.QueueDeclare(name, false, false, false, false, amqp091.Table{"x-max-priority": int64(10)})
	require.NoError(t, err)

	_, err = ch.QueueDeclare(name, false, false, false, false, amqp091.Table{"x-max-priority": int32(5)})
	requireExactReason(t, err, "PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue '"+name+"' in vhost '/': received '5' but current is '10'")

	_, ch = b.channel(t)
	_, err = ch.QueueDeclare(name, false, false, false, false, nil)
	requireExactReason(t, err, "PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue '"+name+"' in vhost '/': received none but current is the value '10' of type 'signedint'")
}

func TestQueueArgsInvalidExpiration(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []struct{ expiration, text string }{
		{"abc", "PRECONDITION_FAILED - invalid expiration 'abc': no_integer"},
		{"-1", "PRECONDITION_FAILED - invalid expiration '-1': {value_negative,-1}"},
		{"1.5", `PRECONDITION_FAILED - invalid expiration '1.5': {leftover_string,".5"}`},
		{" 5", "PRECONDITION_FAILED - invalid expiration ' 5': no_integer"},
	} {
		t.Run(tc.expiration, func(t *testing.T) {
			_, ch := b.channel(t)
			q := declareQueue(t, b, ch, "q", nil)
			closed := notifyClose(ch)
			publishMsg(t, ch, "", q, amqp091.Publishing{Expiration: tc.expiration, Body: []byte("m")})
			select {
			case e := <-closed:
				require.NotNil(t, e)
				requireExactReason(t, e, tc.text)
			case <-time.After(timeout):
				t.Fatal("channel not closed")
			}
			_, ch2 := b.channel(t)
			requireQueueLen(t, ch2, q, 0)
		})
	}

	// "0" and the empty string are valid (no expiration).
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)
	publishMsg(t, ch, "", q, amqp091.Publishing{Expiration: "", Body: []byte("a")})
	publishMsg(t, ch, "", q, amqp091.Publishing{Expiration: "4294967296", Body: []byte("b")})
	requireQueueLen(t, ch, q, 2)
}

// --- priority queues ------------------------------------------------------------

// priorityFixture publishes interleaved priorities to a queue with
// x-max-priority 9 and returns the order RabbitMQ hands them out: higher
// priority first, FIFO within a priority, priorities above the maximum counted
// as the maximum, no priority counted as 0.
func priorityFixture(t *testing.T, b *testBroker, ch *amqp091.Channel) (string, []string) {
	t.Helper()
	q := declareQueue(t, b, ch, "prio", amqp091.Table{"x-max-priority": int32(9)})
	type msg struct {
		body string
		prio int
	}
	var sent []msg
	for round := range 3 {
		for _, p := range []uint8{3, 0, 9, 5, 1, 8, 2, 7, 4, 6} {
			body := fmt.Sprintf("p%d-r%d", p, round)
			publishMsg(t, ch, "", q, amqp091.Publishing{Priority: p, Body: []byte(body)})
			sent = append(sent, msg{body, int(p)})
		}
		above := fmt.Sprintf("p200-r%d", round)
		publishMsg(t, ch, "", q, amqp091.Publishing{Priority: 200, Body: []byte(above)})
		sent = append(sent, msg{above, 9})
		none := fmt.Sprintf("none-r%d", round)
		publishMsg(t, ch, "", q, amqp091.Publishing{Body: []byte(none)})
		sent = append(sent, msg{none, 0})
	}
	sort.SliceStable(sent, func(i, j int) bool { return sent[i].prio > sent[j].prio })
	want := make([]string, len(sent))
	for i, m := range sent {
		want[i] = m.body
	}
	requireQueueLen(t, ch, q, len(want))
	return q, want
}

func TestPriorityGetOrder(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q, want := priorityFixture(t, b, ch)
	require.Equal(t, want, drain(t, ch, q))
}

func TestPriorityConsumeOrder(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q, want := priorityFixture(t, b, ch)
	d := consume(t, ch, q, nil)
	var got []string
	for range want {
		m := recv(t, d)
		got = append(got, string(m.Body))
		require.NoError(t, m.Ack(false))
	}
	require.Equal(t, want, got)
}

func TestPriorityRequeueKeepsOrder(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q, want := priorityFixture(t, b, ch)
	ms := getN(t, ch, q, len(want))
	// Requeue in reverse order of delivery: each message goes back to its
	// place by priority, FIFO within a priority by original position.
	for i := len(ms) - 1; i >= 0; i-- {
		require.NoError(t, ms[i].Nack(false, true))
	}
	requireQueueLen(t, ch, q, len(want))
	var got []string
	for range want {
		m := getOne(t, ch, q)
		require.True(t, m.Redelivered)
		got = append(got, string(m.Body))
		require.NoError(t, m.Ack(false))
	}
	require.Equal(t, want, got)
}

func TestPriorityNewHighOvertakesRequeued(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "prio", amqp091.Table{"x-max-priority": int32(5)})
	publishMsg(t, ch, "", q, amqp091.Publishing{Priority: 1, Body: []byte("low")})
	requireQueueLen(t, ch, q, 1)
	m := getOne(t, ch, q)
	publishMsg(t, ch, "", q, amqp091.Publishing{Priority: 5, Body: []byte("high")})
	publishMsg(t, ch, "", q, amqp091.Publishing{Body: []byte("none")})
	requireQueueLen(t, ch, q, 2)
	require.NoError(t, m.Reject(true))
	requireQueueLen(t, ch, q, 3)
	require.Equal(t, []string{"high", "low", "none"}, drain(t, ch, q))
}

// --- message TTL ------------------------------------------------------------

func TestTTLQueue(t *testing.T) {
	b := startBroker(t)
	ch := confirmChannel(t, b)
	q := declareQueue(t, b, ch, "q", amqp091.Table{"x-message-ttl": int32(100)})
	publishConfirmed(t, ch, "", q, amqp091.Publishing{Body: []byte("m")})
	requireQueueLen(t, ch, q, 0)
	requireEmpty(t, ch, q)

	// A consumer arriving later gets nothing.
	publishConfirmed(t, ch, "", q, amqp091.Publishing{Body: []byte("m2")})
	requireQueueLen(t, ch, q, 0)
	requireNoDelivery(t, consume(t, ch, q, nil))
}

func TestTTLPerMessage(t *testing.T) {
	b := startBroker(t)
	ch := confirmChannel(t, b)
	q := declareQueue(t, b, ch, "q", nil)
	publishConfirmed(t, ch, "", q, amqp091.Publishing{Expiration: "100", Body: []byte("short")})
	publishConfirmed(t, ch, "", q, amqp091.Publishing{Body: []byte("forever")})
	requireQueueLen(t, ch, q, 1)
	m := getOne(t, ch, q)
	require.Equal(t, "forever", string(m.Body))
	require.Equal(t, "", m.Expiration)
}

func TestTTLExpirationPropertyDelivered(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)
	publishMsg(t, ch, "", q, amqp091.Publishing{Expiration: "60000", Body: []byte("m")})
	requireQueueLen(t, ch, q, 1)
	// The expiration property reaches the consumer unchanged.
	m := getOne(t, ch, q)
	require.Equal(t, "60000", m.Expiration)
}

func TestTTLLowerWins(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []struct {
		name       string
		queueTTL   int32
		expiration string
	}{
		{"queue lower", 100, "60000"},
		{"message lower", 60000, "100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := confirmChannel(t, b)
			q := declareQueue(t, b, ch, "q", amqp091.Table{"x-message-ttl": tc.queueTTL})
			publishConfirmed(t, ch, "", q, amqp091.Publishing{Expiration: tc.expiration, Body: []byte("m")})
			requireQueueLen(t, ch, q, 0)
			requireEmpty(t, ch, q)
		})
	}
}

func TestTTLZero(t *testing.T) {
	b := startBroker(t)
	t.Run("no consumer", func(t *testing.T) {
		_, ch := b.channel(t)
		dlx, dlq := deadLetterTarget(t, b, ch, "zero")
		q := declareQueue(t, b, ch, "q", amqp091.Table{"x-message-ttl": int32(0), "x-dead-letter-exchange": dlx})
		publish(t, ch, "", q, "m")
		requireQueueLen(t, ch, dlq, 1)
		requireQueueLen(t, ch, q, 0)
		m := getOne(t, ch, dlq)
		require.Equal(t, "m", string(m.Body))
		require.Equal(t, "expired", xDeath(t, m)[0]["reason"])
	})
	t.Run("consumer ready", func(t *testing.T) {
		_, ch := b.channel(t)
		q := declareQueue(t, b, ch, "q", amqp091.Table{"x-message-ttl": int32(0)})
		d := consume(t, ch, q, nil)
		publish(t, ch, "", q, "m")
		require.Equal(t, "m", string(recv(t, d).Body))
	})
	t.Run("per-message zero", func(t *testing.T) {
		_, ch := b.channel(t)
		q := declareQueue(t, b, ch, "q", nil)
		publishMsg(t, ch, "", q, amqp091.Publishing{Expiration: "0", Body: []byte("gone")})
		d := consume(t, ch, q, nil)
		publishMsg(t, ch, "", q, amqp091.Publishing{Expiration: "0", Body: []byte("delivered")})
		require.Equal(t, "delivered", string(recv(t, d).Body))
		requireNoDelivery(t, d)
	})
}

// TestTTLExpiresInTheMiddle is Warren's own behaviour: RabbitMQ's classic
// queues expire messages only when they reach the head of the queue.
func TestTTLExpiresInTheMiddle(t *testing.T) {
	b := startBroker(t)
	b.skipIfExternal(t)
	_, ch := b.channel(t)
	dlx, dlq := deadLetterTarget(t, b, ch, "mid")
	q := declareQueue(t, b, ch, "q", amqp091.Table{"x-dead-letter-exchange": dlx})
	publish(t, ch, "", q, "head")
	publishMsg(t, ch, "", q, amqp091.Publishing{Expiration: "50", Body: []byte("middle")})
	publish(t, ch, "", q, "tail")

	requireQueueLen(t, ch, dlq, 1)
	requireQueueLen(t, ch, q, 2)
	m := getOne(t, ch, dlq)
	require.Equal(t, "middle", string(m.Body))
	requireDeath(t, death{Count: 1, Reason: "expired", Queue: q, Exchange: "", RoutingKeys: []string{q}, OriginalExpiration: "50"}, xDeath(t, m)[0])
	require.Equal(t, []string{"head", "tail"}, drain(t, ch, q))
}

// --- queue expiry (x-expires) -------------------------------------------------

func TestExpiresUnused(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", amqp091.Table{"x-expires": int32(200)})
	publish(t, ch, "", q, "messages do not keep it alive")
	requireQueueExpires(t, b, q, 200*time.Millisecond)
}

func TestExpiresWithConsumer(t *testing.T) {
	b := startBroker(t)
	conn, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", amqp091.Table{"x-expires": int32(200)})
	d := consume(t, ch, q, nil)

	// Three times the expiry without touching the queue (a passive declare
	// would restart its timer).
	for range 3 {
		requireNoDelivery(t, d)
	}
	_, probe := b.channel(t)
	_, err := probe.QueueDeclarePassive(q, false, false, false, false, nil)
	require.NoError(t, err, "queue with a consumer expired")

	// Without its consumer it expires.
	require.NoError(t, conn.Close())
	requireQueueExpires(t, b, q, 200*time.Millisecond)
}

func TestExpiresActivityResetsTimer(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []struct {
		name  string
		touch func(t *testing.T, ch *amqp091.Channel, q string)
	}{
		{"basic.get", func(t *testing.T, ch *amqp091.Channel, q string) {
			_, _, err := ch.Get(q, true)
			require.NoError(t, err)
		}},
		{"redeclare", func(t *testing.T, ch *amqp091.Channel, q string) {
			_, err := ch.QueueDeclare(q, false, false, false, false, amqp091.Table{"x-expires": int32(300)})
			require.NoError(t, err)
		}},
		{"passive declare", func(t *testing.T, ch *amqp091.Channel, q string) {
			_, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
			require.NoError(t, err)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ch := b.channel(t)
			q := declareQueue(t, b, ch, "q", amqp091.Table{"x-expires": int32(300)})
			// Touch the queue every 100 ms for 900 ms, three times its expiry.
			deadline := time.Now().Add(900 * time.Millisecond)
			for time.Now().Before(deadline) {
				tc.touch(t, ch, q)
				<-time.After(100 * time.Millisecond)
			}
			_, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
			require.NoError(t, err, "queue expired although it was used")
			requireQueueExpires(t, b, q, 300*time.Millisecond)
		})
	}
}

func TestExpiresPublishDoesNotReset(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", amqp091.Table{"x-expires": int32(300)})
	// Publishing every 50 ms does not keep the queue.
	start := time.Now()
	conn := b.dial(t)
	for {
		pch, err := conn.Channel()
		require.NoError(t, err)
		publish(t, pch, "", q, "m")
		_ = pch.Close()
		if time.Since(start) > 900*time.Millisecond {
			break
		}
		<-time.After(50 * time.Millisecond)
	}
	requireQueueExpires(t, b, q, 300*time.Millisecond)
}

// --- length limits ----------------------------------------------------------

func TestMaxLengthDropHead(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	dlx, dlq := deadLetterTarget(t, b, ch, "len")
	q := declareQueue(t, b, ch, "q", amqp091.Table{"x-max-length": int32(2), "x-dead-letter-exchange": dlx})
	for _, body := range []string{"1", "2", "3"} {
		publish(t, ch, "", q, body)
	}
	requireQueueLen(t, ch, dlq, 1)
	require.Equal(t, []string{"2", "3"}, drain(t, ch, q))
	m := getOne(t, ch, dlq)
	require.Equal(t, "1", string(m.Body))
	d := xDeath(t, m)
	require.Len(t, d, 1)
	requireDeath(t, death{Count: 1, Reason: "maxlen", Queue: q, Exchange: "", RoutingKeys: []string{q}}, d[0])
	requireFirstDeath(t, m, "maxlen", q, "")
}

func TestMaxLengthZero(t *testing.T) {
	b := startBroker(t)
	// Persistent messages in a durable queue are written before they are
	// queued; the limit must apply to them all the same.
	for _, durable := range []bool{false, true} {
		t.Run(fmt.Sprint("durable=", durable), func(t *testing.T) {
			_, ch := b.channel(t)
			q := uniqueName(t, "q")
			_, err := ch.QueueDeclare(q, durable, false, false, false, amqp091.Table{"x-max-length": int32(0)})
			require.NoError(t, err)
			b.cleanupQueue(t, q)
			mode := amqp091.Transient
			if durable {
				mode = amqp091.Persistent
			}
			publishMsg(t, ch, "", q, amqp091.Publishing{DeliveryMode: mode, Body: []byte("dropped")})
			requireQueueLen(t, ch, q, 0)

			// A waiting consumer still gets messages: they never enter the queue.
			d := consume(t, ch, q, nil)
			publishMsg(t, ch, "", q, amqp091.Publishing{DeliveryMode: mode, Body: []byte("delivered")})
			require.Equal(t, "delivered", string(recv(t, d).Body))
		})
	}
}

func TestMaxLengthBytes(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	dlx, dlq := deadLetterTarget(t, b, ch, "bytes")
	// Only bodies count: three 2-byte bodies in a 5-byte queue.
	q := declareQueue(t, b, ch, "q", amqp091.Table{"x-max-length-bytes": int32(5), "x-dead-letter-exchange": dlx})
	for _, body := range []string{"aa", "bb", "cc"} {
		publishMsg(t, ch, "", q, amqp091.Publishing{Body: []byte(body), Headers: amqp091.Table{"big-header": string(make([]byte, 100))}})
	}
	requireQueueLen(t, ch, dlq, 1)
	require.Equal(t, []string{"bb", "cc"}, drain(t, ch, q))
	m := getOne(t, ch, dlq)
	require.Equal(t, "aa", string(m.Body))
	require.Equal(t, "maxlen", xDeath(t, m)[0]["reason"])
}

func TestMaxLengthRejectPublish(t *testing.T) {
	b := startBroker(t)
	for _, overflow := range []string{"reject-publish", "reject-publish-dlx"} {
		t.Run(overflow, func(t *testing.T) {
			_, ch := b.channel(t)
			dlx, dlq := deadLetterTarget(t, b, ch, "rp")
			q := declareQueue(t, b, ch, "q", amqp091.Table{
				"x-max-length": int32(2), "x-overflow": overflow, "x-dead-letter-exchange": dlx,
			})
			require.NoError(t, ch.Confirm(false))
			confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 4))
			for i, body := range []string{"1", "2", "3"} {
				publish(t, ch, "", q, body)
				c := recvConfirm(t, confirms)
				require.Equal(t, uint64(i+1), c.DeliveryTag)
				require.Equal(t, i < 2, c.Ack, "confirm of %s", body)
			}
			require.Equal(t, []string{"1", "2"}, drain(t, ch, q))
			if overflow == "reject-publish" {
				requireQueueLenStays(t, ch, dlq, 0, 300*time.Millisecond)
				return
			}
			requireQueueLen(t, ch, dlq, 1)
			m := getOne(t, ch, dlq)
			require.Equal(t, "3", string(m.Body))
			d := xDeath(t, m)
			require.Len(t, d, 1)
			requireDeath(t, death{Count: 1, Reason: "maxlen", Queue: q, Exchange: "", RoutingKeys: []string{q}}, d[0])
		})
	}
}

func TestMaxLengthRejectPublishWithoutConfirms(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", amqp091.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"})
	publish(t, ch, "", q, "1")
	publish(t, ch, "", q, "2")
	// Silently dropped; the channel stays open.
	requireQueueLen(t, ch, q, 1)
	require.Equal(t, []string{"1"}, drain(t, ch, q))
	require.False(t, ch.IsClosed())
}

// --- delivery limit (Warren: any queue; RabbitMQ: quorum queues only) --------------

func TestDeliveryLimit(t *testing.T) {
	b := startBroker(t)
	b.skipIfExternal(t)
	conn, ch := b.channel(t)
	dlx, dlq := deadLetterTarget(t, b, ch, "limit")
	q := declareQueue(t, b, ch, "q", amqp091.Table{"x-delivery-limit": int32(2), "x-dead-letter-exchange": dlx})
	publish(t, ch, "", q, "m")

	// First delivery: no x-delivery-count. Each return adds one, whether by
	// nack, reject or a closed channel. basic.get keeps the deliveries in
	// the test's hands (a consumer would get each requeue straight back).
	m := getOne(t, ch, q)
	_, has := m.Headers["x-delivery-count"]
	require.False(t, has, "first delivery has x-delivery-count: %v", m.Headers)
	require.NoError(t, m.Nack(false, true))

	m = getOne(t, ch, q)
	require.True(t, m.Redelivered)
	require.Equal(t, int64(1), m.Headers["x-delivery-count"])
	require.NoError(t, ch.Close()) // returned by the channel's close

	ch3, err := conn.Channel()
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var ok bool
		m, ok, err = ch3.Get(q, false)
		require.NoError(t, err)
		return ok
	}, timeout, 10*time.Millisecond)
	require.Equal(t, int64(2), m.Headers["x-delivery-count"])
	require.NoError(t, m.Nack(false, true)) // third return: over the limit

	requireQueueLen(t, ch3, dlq, 1)
	requireQueueLen(t, ch3, q, 0)
	m = getOne(t, ch3, dlq)
	require.Equal(t, "m", string(m.Body))
	d := xDeath(t, m)
	require.Len(t, d, 1)
	requireDeath(t, death{Count: 1, Reason: "delivery_limit", Queue: q, Exchange: "", RoutingKeys: []string{q}}, d[0])
	requireFirstDeath(t, m, "delivery_limit", q, "")
}

func TestDeliveryLimitRejectedArgumentOnRabbitMQ(t *testing.T) {
	b := startBroker(t)
	if !b.External {
		t.Skip("documents RabbitMQ's classic queues, which refuse x-delivery-limit")
	}
	_, ch := b.channel(t)
	name := uniqueName(t, "q")
	_, err := ch.QueueDeclare(name, false, false, false, false, amqp091.Table{"x-delivery-limit": int32(2)})
	requireExactReason(t, err, "PRECONDITION_FAILED - invalid arg 'x-delivery-limit' for queue '"+name+"' in vhost '/' of queue type rabbit_classic_queue")
}

// --- single active consumer -------------------------------------------------

func TestSingleActiveConsumer(t *testing.T) {
	b := startBroker(t)
	for _, how := range []string{"cancel", "close channel"} {
		t.Run(how, func(t *testing.T) {
			_, ch := b.channel(t)
			q := declareQueue(t, b, ch, "q", amqp091.Table{"x-single-active-consumer": true})
			_, ch1 := b.channel(t)
			_, ch2 := b.channel(t)
			d1, err := ch1.Consume(q, "first", false, false, false, false, nil)
			require.NoError(t, err)
			d2 := consume(t, ch2, q, nil)

			for i := range 4 {
				publish(t, ch, "", q, fmt.Sprint(i))
			}
			for i := range 4 {
				m := recv(t, d1)
				require.Equal(t, fmt.Sprint(i), string(m.Body))
				if i < 2 {
					require.NoError(t, m.Ack(false))
				}
			}
			requireNoDelivery(t, d2)

			var want []string
			if how == "cancel" {
				// Cancelling keeps the unacked messages on ch1.
				require.NoError(t, ch1.Cancel("first", false))
			} else {
				require.NoError(t, ch1.Close())
				want = []string{"2", "3"} // requeued to the new active consumer
			}
			publish(t, ch, "", q, "4")
			want = append(want, "4")
			for _, w := range want {
				m := recv(t, d2)
				require.Equal(t, w, string(m.Body))
				require.Equal(t, w != "4", m.Redelivered)
				require.NoError(t, m.Ack(false))
			}
			requireNoDelivery(t, d2)
		})
	}
}

func TestSingleActiveConsumerFirstStaysActive(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", amqp091.Table{"x-single-active-consumer": true})
	_, ch1 := b.channel(t)
	d1 := consume(t, ch1, q, nil)
	_, ch2 := b.channel(t)
	require.NoError(t, ch2.Qos(1, 0, false))
	d2 := consume(t, ch2, q, nil)
	// The active consumer keeps everything even when the other has capacity
	// and it is slow to ack.
	for i := range 3 {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	counts, _ := countDeliveries(t, d1, d2)
	require.Equal(t, []int{3, 0}, counts)
}

// --- consumer priorities ----------------------------------------------------

func TestConsumerPriority(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)

	_, low := b.channel(t)
	dLow := consume(t, low, q, amqp091.Table{"x-priority": int32(1)})
	_, high := b.channel(t)
	require.NoError(t, high.Qos(2, 0, false))
	dHigh := consume(t, high, q, amqp091.Table{"x-priority": int32(10)})

	// While the high-priority consumer has capacity it gets everything.
	publish(t, ch, "", q, "h1")
	h1 := recv(t, dHigh)
	publish(t, ch, "", q, "h2")
	recv(t, dHigh)
	require.Equal(t, "h1", string(h1.Body))

	// Blocked at its prefetch: the low one gets the rest.
	publish(t, ch, "", q, "l1")
	publish(t, ch, "", q, "l2")
	require.Equal(t, "l1", string(recv(t, dLow).Body))
	require.Equal(t, "l2", string(recv(t, dLow).Body))
	requireNoDelivery(t, dHigh)

	// Capacity again: back to the high one.
	require.NoError(t, h1.Ack(false))
	// The ack is asynchronous; a synchronous call behind it on the same
	// channel makes sure the broker has it before h3 is published.
	_, err := high.QueueDeclarePassive(q, false, false, false, false, nil)
	require.NoError(t, err)
	publish(t, ch, "", q, "h3")
	require.Equal(t, "h3", string(recv(t, dHigh).Body))
	requireNoDelivery(t, dLow)
}

func TestConsumerPriorityRoundRobinWithinPriority(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)
	_, c := b.channel(t)
	dLow := consume(t, c, q, nil) // default priority 0
	dA := consume(t, c, q, amqp091.Table{"x-priority": int32(5)})
	dB := consume(t, c, q, amqp091.Table{"x-priority": int32(5)})
	for i := range 4 {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	counts, _ := countDeliveries(t, dLow, dA, dB)
	require.Equal(t, []int{0, 2, 2}, counts)
}

func TestConsumerPriorityInvalid(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)
	_, err := ch.Consume(q, "", false, false, false, false, amqp091.Table{"x-priority": "high"})
	requireExactReason(t, err, "PRECONDITION_FAILED - invalid arg 'x-priority' for queue '"+q+"' in vhost '/': \"expected integer, got longstr\"")
}

// --- consumer ack timeout ---------------------------------------------------

// TestConsumerTimeout uses the per-queue x-consumer-timeout argument, which
// RabbitMQ only has from 3.12 (3.10 ignores it and applies the global
// consumer_timeout, checked on the channel tick, once a minute). The reply
// text and the requeue (redelivered=true) are RabbitMQ 3.10.8's, observed with
// consumer_timeout 500 and channel_tick_interval 200 set at run time.
func TestConsumerTimeout(t *testing.T) {
	b := startBroker(t)
	b.skipIfExternal(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", amqp091.Table{"x-consumer-timeout": int32(500)})
	publish(t, ch, "", q, "m")

	slowConn, slow := b.channel(t)
	closed := notifyClose(slow)
	m := recv(t, consume(t, slow, q, nil))
	require.False(t, m.Redelivered)
	requireClosedWith(t, closed, amqp091.PreconditionFailed,
		"PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. Timeout value used: 500 ms. This timeout value can be configured, see consumers doc guide to learn more")
	requireConnUsable(t, slowConn) // a channel error, not a connection error

	_, next := b.channel(t)
	m = recv(t, consume(t, next, q, nil))
	require.Equal(t, "m", string(m.Body))
	require.True(t, m.Redelivered)
	require.NoError(t, m.Ack(false))
}
