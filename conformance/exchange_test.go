package conformance

import (
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

func TestExchangeDefaultRoutesByQueueName(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	q := declareQueue(t, b, ch, "q", nil)
	publish(t, ch, "", q, "hello")
	publish(t, ch, "", q+".other", "lost")
	requireQueueLen(t, ch, q, 1)
	require.Equal(t, []string{"hello"}, drain(t, ch, q))
}

func TestExchangePredeclared(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	for name, kind := range map[string]string{
		"amq.direct":  "direct",
		"amq.fanout":  "fanout",
		"amq.topic":   "topic",
		"amq.headers": "headers",
		"amq.match":   "headers",
	} {
		require.NoError(t, ch.ExchangeDeclarePassive(name, kind, true, false, false, false, nil), name)
	}
	// amq.* may be redeclared with its own properties.
	require.NoError(t, ch.ExchangeDeclare("amq.direct", "direct", true, false, false, false, nil))
}

// TestExchangeErrors checks channel errors of exchange methods: the code, the
// text, and that a second channel on the same connection keeps working.
func TestExchangeErrors(t *testing.T) {
	b := startBroker(t)

	for _, tc := range []struct {
		name string
		run  func(t *testing.T, ch *amqp091.Channel) (error, int, string)
	}{
		{"declare amq.foo", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			name := "amq." + uniqueName(t, "x")
			return ch.ExchangeDeclare(name, "direct", false, true, false, false, nil),
				amqp091.AccessRefused, "ACCESS_REFUSED - exchange name '" + name + "' contains reserved prefix 'amq.*'"
		}},
		{"passive declare of a missing exchange", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			name := uniqueName(t, "x")
			return ch.ExchangeDeclarePassive(name, "direct", false, false, false, false, nil),
				amqp091.NotFound, "NOT_FOUND - no exchange '" + name + "' in vhost '/'"
		}},
		{"redeclare with another type", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			name := declareExchange(t, b, ch, "direct", "x", nil)
			return ch.ExchangeDeclare(name, "fanout", false, false, false, false, nil),
				amqp091.PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'type' for exchange '" + name + "' in vhost '/': received 'fanout' but current is 'direct'"
		}},
		{"redeclare as durable", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			name := declareExchange(t, b, ch, "direct", "x", nil)
			return ch.ExchangeDeclare(name, "direct", true, false, false, false, nil),
				amqp091.PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange '" + name + "' in vhost '/': received 'true' but current is 'false'"
		}},
		{"delete if-unused with a binding", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			name := declareExchange(t, b, ch, "direct", "x", nil)
			q := declareQueue(t, b, ch, "q", nil)
			require.NoError(t, ch.QueueBind(q, "k", name, false, nil))
			return ch.ExchangeDelete(name, true, false),
				amqp091.PreconditionFailed, "PRECONDITION_FAILED - exchange '" + name + "' in vhost '/' in use"
		}},
		{"bind to the default exchange", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			q := declareQueue(t, b, ch, "q", nil)
			return ch.QueueBind(q, "k", "", false, nil),
				amqp091.AccessRefused, "ACCESS_REFUSED - operation not permitted on the default exchange"
		}},
		{"unbind from the default exchange", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			q := declareQueue(t, b, ch, "q", nil)
			return ch.QueueUnbind(q, q, "", nil),
				amqp091.AccessRefused, "ACCESS_REFUSED - operation not permitted on the default exchange"
		}},
		{"delete the default exchange", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			return ch.ExchangeDelete("", false, false),
				amqp091.AccessRefused, "ACCESS_REFUSED - operation not permitted on the default exchange"
		}},
		{"bind to a missing exchange", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			q := declareQueue(t, b, ch, "q", nil)
			name := uniqueName(t, "x")
			return ch.QueueBind(q, "k", name, false, nil),
				amqp091.NotFound, "NOT_FOUND - no exchange '" + name + "' in vhost '/'"
		}},
		{"bind a missing queue", func(t *testing.T, ch *amqp091.Channel) (error, int, string) {
			name := uniqueName(t, "q")
			return ch.QueueBind(name, "k", "amq.direct", false, nil),
				amqp091.NotFound, "NOT_FOUND - no queue '" + name + "' in vhost '/'"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, ch := b.channel(t)
			other, err := conn.Channel()
			require.NoError(t, err)
			err, code, text := tc.run(t, ch)
			requireAMQPError(t, err, code, text)
			require.Eventually(t, ch.IsClosed, timeout, 10*time.Millisecond)
			requireUsable(t, other)
		})
	}
}

// TestExchangeUnknownType: RabbitMQ treats an unknown exchange type as a
// connection error (503 COMMAND_INVALID), not a channel error.
func TestExchangeUnknownType(t *testing.T) {
	b := startBroker(t)
	conn, ch := b.channel(t)
	closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
	name := uniqueName(t, "x")
	err := ch.ExchangeDeclare(name, "no-such-type", false, true, false, false, nil)
	requireAMQPError(t, err, amqp091.CommandInvalid, "COMMAND_INVALID - unknown exchange type 'no-such-type'")
	requireClosedWith(t, closed, amqp091.CommandInvalid, "COMMAND_INVALID - unknown exchange type 'no-such-type'")
	requireConnUsable(t, b.dial(t))
}

// binding binds the test queue named by its suffix to the exchange.
type binding struct {
	queue string // queue name suffix
	key   string
	args  amqp091.Table
}

// message is one publish of a routing case.
type message struct {
	key     string
	headers amqp091.Table
	body    string
}

func TestExchangeRouting(t *testing.T) {
	b := startBroker(t)

	for _, tc := range []struct {
		kind     string
		bindings []binding
		messages []message
		want     map[string][]string // queue suffix -> bodies in order
	}{
		{
			kind:     "direct",
			bindings: []binding{{"a", "red", nil}, {"b", "red", nil}, {"b", "blue", nil}, {"c", "green", nil}},
			messages: []message{{"red", nil, "1"}, {"blue", nil, "2"}, {"black", nil, "3"}, {"RED", nil, "4"}},
			want:     map[string][]string{"a": {"1"}, "b": {"1", "2"}, "c": nil},
		},
		{
			kind:     "fanout",
			bindings: []binding{{"a", "", nil}, {"b", "ignored", nil}},
			messages: []message{{"anything", nil, "1"}, {"", nil, "2"}},
			want:     map[string][]string{"a": {"1", "2"}, "b": {"1", "2"}},
		},
		{
			kind: "topic",
			bindings: []binding{
				{"star", "a.*.c", nil},
				{"hash", "a.#", nil},
				{"all", "#", nil},
				{"mid", "a.#.c", nil},
				{"exact", "a.b", nil},
				{"leadstar", "*.b.*", nil},
			},
			messages: []message{
				{"a.b.c", nil, "1"},
				{"a", nil, "2"},
				{"a.b", nil, "3"},
				{"a.x.y.c", nil, "4"},
				{"b.b.b", nil, "5"},
				{"", nil, "6"},
				{"a.c", nil, "7"},
			},
			want: map[string][]string{
				"star":     {"1"},
				"hash":     {"1", "2", "3", "4", "7"},
				"all":      {"1", "2", "3", "4", "5", "6", "7"},
				"mid":      {"1", "4", "7"},
				"exact":    {"3"},
				"leadstar": {"1", "5"},
			},
		},
		{
			kind: "headers",
			bindings: []binding{
				{"all", "", amqp091.Table{"x-match": "all", "color": "red", "size": "big"}},
				{"any", "", amqp091.Table{"x-match": "any", "color": "red", "size": "big"}},
				{"default", "", amqp091.Table{"color": "red", "size": "big"}}, // x-match defaults to all
				{"empty", "", amqp091.Table{}},                                // matches everything
			},
			messages: []message{
				{"", amqp091.Table{"color": "red", "size": "big", "extra": "x"}, "1"},
				{"", amqp091.Table{"color": "red"}, "2"},
				{"", amqp091.Table{"size": "small"}, "3"},
				{"", nil, "4"},
				{"", amqp091.Table{"x-color": "red", "size": "big"}, "5"},
			},
			want: map[string][]string{
				"all":     {"1"},
				"any":     {"1", "2", "5"},
				"default": {"1"},
				"empty":   {"1", "2", "3", "4", "5"},
			},
		},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			_, ch := b.channel(t)
			x := declareExchange(t, b, ch, tc.kind, "x", nil)
			queues := map[string]string{}
			for _, bd := range tc.bindings {
				if queues[bd.queue] == "" {
					queues[bd.queue] = declareQueue(t, b, ch, bd.queue, nil)
				}
				require.NoError(t, ch.QueueBind(queues[bd.queue], bd.key, x, false, bd.args))
			}
			for _, m := range tc.messages {
				require.NoError(t, ch.Publish(x, m.key, false, false, amqp091.Publishing{Headers: m.headers, Body: []byte(m.body)}))
			}
			for suffix, want := range tc.want {
				requireQueueLen(t, ch, queues[suffix], len(want))
				require.Equal(t, want, drain(t, ch, queues[suffix]), "queue %s", suffix)
			}
		})
	}
}

func TestExchangeToExchangeBinding(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	src := declareExchange(t, b, ch, "topic", "src", nil)
	dst := declareExchange(t, b, ch, "fanout", "dst", nil)
	q := declareQueue(t, b, ch, "q", nil)
	require.NoError(t, ch.QueueBind(q, "", dst, false, nil))

	require.NoError(t, ch.ExchangeBind(dst, "a.*", src, false, nil))
	publish(t, ch, src, "a.b", "1")
	publish(t, ch, src, "b.b", "2")
	requireQueueLen(t, ch, q, 1)
	require.Equal(t, []string{"1"}, drain(t, ch, q))

	require.NoError(t, ch.ExchangeUnbind(dst, "a.*", src, false, nil))
	publish(t, ch, src, "a.b", "3")
	publish(t, ch, dst, "", "4") // proves the queue is still reachable
	requireQueueLen(t, ch, q, 1)
	require.Equal(t, []string{"4"}, drain(t, ch, q))
}

func TestExchangeAlternateExchange(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	ae := declareExchange(t, b, ch, "fanout", "ae", nil)
	aeq := declareQueue(t, b, ch, "aeq", nil)
	require.NoError(t, ch.QueueBind(aeq, "", ae, false, nil))

	x := declareExchange(t, b, ch, "direct", "x", amqp091.Table{"alternate-exchange": ae})
	q := declareQueue(t, b, ch, "q", nil)
	require.NoError(t, ch.QueueBind(q, "known", x, false, nil))

	// Mandatory unroutable messages that the alternate exchange routes are not returned.
	returns := ch.NotifyReturn(make(chan amqp091.Return, 1))
	publish(t, ch, x, "known", "routed")
	require.NoError(t, ch.Publish(x, "unknown", true, false, amqp091.Publishing{Body: []byte("alt")}))
	requireQueueLen(t, ch, aeq, 1)
	require.Equal(t, []string{"routed"}, drain(t, ch, q))
	require.Equal(t, []string{"alt"}, drain(t, ch, aeq))
	select {
	case r := <-returns:
		t.Fatalf("unexpected return %q", r.Body)
	default:
	}
}

func TestExchangeCCAndBCC(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	x := declareExchange(t, b, ch, "direct", "x", nil)
	queues := map[string]string{}
	for _, k := range []string{"main", "cc", "bcc", "none"} {
		queues[k] = declareQueue(t, b, ch, k, nil)
		require.NoError(t, ch.QueueBind(queues[k], k, x, false, nil))
	}
	require.NoError(t, ch.Publish(x, "main", false, false, amqp091.Publishing{
		Headers: amqp091.Table{"CC": []any{"cc"}, "BCC": []any{"bcc"}, "other": "kept"},
		Body:    []byte("m"),
	}))
	for _, k := range []string{"main", "cc", "bcc"} {
		requireQueueLen(t, ch, queues[k], 1)
		m, ok, err := ch.Get(queues[k], true)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "m", string(m.Body))
		require.Equal(t, []any{"cc"}, m.Headers["CC"], "CC stays in %s", k)
		require.NotContains(t, m.Headers, "BCC", "BCC is removed in %s", k)
		require.Equal(t, "kept", m.Headers["other"])
		require.Equal(t, "main", m.RoutingKey, "routing key in %s", k)
	}
	requireQueueLen(t, ch, queues["none"], 0)

	// A message is routed once to a queue even if CC names the same key again.
	require.NoError(t, ch.Publish(x, "main", false, false, amqp091.Publishing{
		Headers: amqp091.Table{"CC": []any{"main", "cc"}},
		Body:    []byte("once"),
	}))
	requireQueueLen(t, ch, queues["cc"], 1)
	require.Equal(t, []string{"once"}, drain(t, ch, queues["main"]))
	require.Equal(t, []string{"once"}, drain(t, ch, queues["cc"]))
}

func TestExchangeMandatoryReturn(t *testing.T) {
	b := startBroker(t)
	_, ch := b.channel(t)
	x := declareExchange(t, b, ch, "direct", "x", nil)
	returns := ch.NotifyReturn(make(chan amqp091.Return, 1))
	require.NoError(t, ch.Publish(x, "nowhere", true, false, amqp091.Publishing{
		ContentType: "text/plain", MessageId: "id-1", Body: []byte("lost"),
	}))
	select {
	case r := <-returns:
		require.Equal(t, uint16(amqp091.NoRoute), r.ReplyCode)
		require.Equal(t, "NO_ROUTE", r.ReplyText)
		require.Equal(t, x, r.Exchange)
		require.Equal(t, "nowhere", r.RoutingKey)
		require.Equal(t, "lost", string(r.Body))
		require.Equal(t, "text/plain", r.ContentType)
		require.Equal(t, "id-1", r.MessageId)
	case <-time.After(timeout):
		t.Fatal("no basic.return")
	}
	// Not mandatory: silently dropped, channel fine.
	publish(t, ch, x, "nowhere", "dropped")
	requireUsable(t, ch)
}

func TestExchangePublishErrors(t *testing.T) {
	b := startBroker(t)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, ch *amqp091.Channel) string
		code  int
		text  func(x string) string
	}{
		{
			name:  "missing exchange",
			setup: func(t *testing.T, ch *amqp091.Channel) string { return uniqueName(t, "x") },
			code:  amqp091.NotFound,
			text:  func(x string) string { return fmt.Sprintf("NOT_FOUND - no exchange '%s' in vhost '/'", x) },
		},
		{
			name: "internal exchange",
			setup: func(t *testing.T, ch *amqp091.Channel) string {
				x := uniqueName(t, "x")
				require.NoError(t, ch.ExchangeDeclare(x, "fanout", false, false, true, false, nil))
				b.cleanupExchange(t, x)
				return x
			},
			code: amqp091.AccessRefused,
			text: func(x string) string {
				return fmt.Sprintf("ACCESS_REFUSED - cannot publish to internal exchange '%s' in vhost '/'", x)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, ch := b.channel(t)
			other, err := conn.Channel()
			require.NoError(t, err)
			x := tc.setup(t, ch)
			closed := notifyClose(ch)
			publish(t, ch, x, "k", "m")
			requireClosedWith(t, closed, tc.code, tc.text(x))
			requireUsable(t, other)
		})
	}
}
