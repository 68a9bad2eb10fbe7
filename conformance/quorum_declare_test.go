package conformance

import (
	"fmt"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// Declare rules for `x-queue-type: quorum`, as RabbitMQ 3.10.8 answers them.
// conformance/README.md has the same rules as a table.

// quorumRefused is the text of a quorum queue argument that RabbitMQ 3.10.8
// does not accept at all for the type; %[1]s is the argument, %[2]s the queue.
const quorumRefused = "PRECONDITION_FAILED - invalid arg '%[1]s' for queue '%[2]s' in vhost '/' of queue type rabbit_quorum_queue"

// quorumInvalid is the text of an argument the type accepts with a value
// it does not; the tail (the Erlang term) follows.
const quorumInvalid = "PRECONDITION_FAILED - invalid arg '%[1]s' for queue '%[2]s' in vhost '/': "

func TestQuorumDeclareProperties(t *testing.T) {
	b := startQuorumBroker(t)
	for _, tc := range []struct {
		name                           string
		durable, autoDelete, exclusive bool
		args                           amqp091.Table
		property                       string // "" when the declare succeeds
	}{
		{name: "durable", durable: true},
		{name: "non-durable", property: "non-durable"},
		{name: "exclusive", durable: true, exclusive: true, property: "exclusive-owner"},
		{name: "auto-delete", durable: true, autoDelete: true, property: "auto-delete"},
		{name: "non-durable exclusive", exclusive: true, property: "exclusive-owner"},
		{name: "non-durable auto-delete", autoDelete: true, property: "auto-delete"},
		// auto-delete is named first, then exclusive-owner, then non-durable.
		{name: "exclusive auto-delete", durable: true, exclusive: true, autoDelete: true, property: "auto-delete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ch := b.channel(t)
			name := uniqueName(t, "q")
			b.cleanupQueue(t, name)
			_, err := ch.QueueDeclare(name, tc.durable, tc.autoDelete, tc.exclusive, false, quorumArgs(tc.args))
			if tc.property == "" {
				require.NoError(t, err)
				q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
				require.NoError(t, err)
				require.Equal(t, 0, q.Messages)
				return
			}
			requireAMQPError(t, err, amqp091.PreconditionFailed, "")
			requireExactReason(t, err, fmt.Sprintf("PRECONDITION_FAILED - invalid property '%s' for queue '%s' in vhost '/'", tc.property, name))
			requireQueueGone(t, b, name)
		})
	}
}

// TestQuorumDeclareCheckOrder: argument values are checked first (as for
// any queue), then the arguments the type refuses, then the properties.
func TestQuorumDeclareCheckOrder(t *testing.T) {
	b := startQuorumBroker(t)
	for _, tc := range []struct {
		name               string
		durable, exclusive bool
		args               amqp091.Table
		text               string // %[1]s is the queue
	}{
		{"non-durable with a bad overflow", false, false, amqp091.Table{"x-overflow": "bogus"},
			"PRECONDITION_FAILED - invalid arg 'x-overflow' for queue '%[1]s' in vhost '/': invalid_overflow"},
		{"refused argument with a bad overflow", true, false, amqp091.Table{"x-queue-mode": "lazy", "x-overflow": "bogus"},
			"PRECONDITION_FAILED - invalid arg 'x-overflow' for queue '%[1]s' in vhost '/': invalid_overflow"},
		{"non-durable with a refused argument", false, false, amqp091.Table{"x-max-priority": int32(5)},
			"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue '%[1]s' in vhost '/' of queue type rabbit_quorum_queue"},
		{"exclusive with a refused argument", true, true, amqp091.Table{"x-queue-mode": "lazy"},
			"PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue '%[1]s' in vhost '/' of queue type rabbit_quorum_queue"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ch := b.channel(t)
			name := uniqueName(t, "q")
			b.cleanupQueue(t, name)
			_, err := ch.QueueDeclare(name, tc.durable, false, tc.exclusive, false, quorumArgs(tc.args))
			requireAMQPError(t, err, amqp091.PreconditionFailed, "")
			requireExactReason(t, err, fmt.Sprintf(tc.text, name))
			requireQueueGone(t, b, name)
		})
	}
}

func TestQuorumDeclareServerNamed(t *testing.T) {
	b := startQuorumBroker(t)
	_, ch := b.channel(t)
	_, err := ch.QueueDeclare("", true, false, false, false, quorumArgs(nil))
	requireAMQPError(t, err, amqp091.PreconditionFailed, "")
	requireExactReason(t, err, "PRECONDITION_FAILED - Cannot declare a server-named queue for type rabbit_quorum_queue")
}

func TestQuorumDeclareArguments(t *testing.T) {
	b := startQuorumBroker(t)
	for _, tc := range []struct {
		name string
		arg  string
		val  interface{}
		// format is "" when the declare succeeds, quorumRefused, or
		// quorumInvalid followed by the Erlang term.
		format string
	}{
		// Accepted.
		{"overflow drop-head", "x-overflow", "drop-head", ""},
		{"overflow reject-publish", "x-overflow", "reject-publish", ""},
		// Accepted, and then treated as drop-head (TestQuorumRejectPublishDLXIsDropHead).
		{"overflow reject-publish-dlx", "x-overflow", "reject-publish-dlx", ""},
		{"message-ttl", "x-message-ttl", int32(1000), ""},
		{"message-ttl zero", "x-message-ttl", int32(0), ""},
		{"expires", "x-expires", int32(1000), ""},
		{"max-length", "x-max-length", int32(10), ""},
		{"max-length zero", "x-max-length", int32(0), ""},
		{"max-length-bytes", "x-max-length-bytes", int32(1000), ""},
		{"delivery-limit", "x-delivery-limit", int32(3), ""},
		{"delivery-limit zero", "x-delivery-limit", int32(0), ""},
		// RabbitMQ 3.10.8 does not validate x-delivery-limit at declare.
		{"delivery-limit negative", "x-delivery-limit", int32(-1), ""},
		{"delivery-limit string", "x-delivery-limit", "3", ""},
		{"dead-letter-exchange", "x-dead-letter-exchange", "dlx", ""},
		{"dead-letter-strategy at-most-once", "x-dead-letter-strategy", "at-most-once", ""},
		{"dead-letter-strategy at-least-once", "x-dead-letter-strategy", "at-least-once", ""},
		{"quorum-initial-group-size 1", "x-quorum-initial-group-size", int32(1), ""},
		// More members than nodes: the group is as large as the cluster.
		{"quorum-initial-group-size 3", "x-quorum-initial-group-size", int32(3), ""},
		{"max-in-memory-length", "x-max-in-memory-length", int32(10), ""},
		{"max-in-memory-bytes", "x-max-in-memory-bytes", int32(1000), ""},
		{"single-active-consumer true", "x-single-active-consumer", true, ""},
		{"single-active-consumer false", "x-single-active-consumer", false, ""},
		{"queue-leader-locator client-local", "x-queue-leader-locator", "client-local", ""},
		{"queue-leader-locator balanced", "x-queue-leader-locator", "balanced", ""},
		// Arguments RabbitMQ does not know are ignored, as for classic queues.
		{"ha-policy", "x-ha-policy", "all", ""},
		{"unknown argument", "x-unknown-argument", "x", ""},

		// Refused for the type, whatever the value.
		{"max-priority", "x-max-priority", int32(5), quorumRefused},
		{"queue-mode lazy", "x-queue-mode", "lazy", quorumRefused},
		{"queue-mode default", "x-queue-mode", "default", quorumRefused},
		{"queue-master-locator", "x-queue-master-locator", "client-local", quorumRefused},
		{"queue-version", "x-queue-version", int32(2), quorumRefused},
		{"max-age (streams)", "x-max-age", "1D", quorumRefused},
		{"stream-max-segment-size-bytes", "x-stream-max-segment-size-bytes", int32(100), quorumRefused},
		{"initial-cluster-size (streams)", "x-initial-cluster-size", int32(1), quorumRefused},

		// Accepted arguments with a bad value.
		{"overflow unknown", "x-overflow", "bogus", quorumInvalid + "invalid_overflow"},
		{"message-ttl negative", "x-message-ttl", int32(-1), quorumInvalid + "{value_negative,-1}"},
		{"message-ttl string", "x-message-ttl", "x", quorumInvalid + `"expected integer, got longstr"`},
		{"expires zero", "x-expires", int32(0), quorumInvalid + "{value_zero,0}"},
		{"max-length negative", "x-max-length", int32(-1), quorumInvalid + "{value_negative,-1}"},
		{"max-length-bytes negative", "x-max-length-bytes", int32(-1), quorumInvalid + "{value_negative,-1}"},
		{"dead-letter-strategy unknown", "x-dead-letter-strategy", "bogus", quorumInvalid + "invalid_dlx_strategy"},
		{"quorum-initial-group-size zero", "x-quorum-initial-group-size", int32(0), quorumInvalid + "{value_zero,0}"},
		{"quorum-initial-group-size string", "x-quorum-initial-group-size", "3", quorumInvalid + `"expected integer, got longstr"`},
		{"max-in-memory-length negative", "x-max-in-memory-length", int32(-1), quorumInvalid + "{value_negative,-1}"},
		{"max-in-memory-bytes string", "x-max-in-memory-bytes", "x", quorumInvalid + `"expected integer, got longstr"`},
		{"single-active-consumer string", "x-single-active-consumer", "yes", quorumInvalid + "{unacceptable_type,longstr}"},
		{"queue-leader-locator unknown", "x-queue-leader-locator", "bogus", quorumInvalid + "invalid_queue_locator_arg"},
		{"dead-letter-routing-key without exchange", "x-dead-letter-routing-key", "rk", quorumInvalid + "routing_key_but_no_dlx_defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ch := b.channel(t)
			name := uniqueName(t, "q")
			b.cleanupQueue(t, name)
			_, err := ch.QueueDeclare(name, true, false, false, false, quorumArgs(amqp091.Table{tc.arg: tc.val}))
			if tc.format == "" {
				require.NoError(t, err)
				return
			}
			requireAMQPError(t, err, amqp091.PreconditionFailed, "")
			requireExactReason(t, err, fmt.Sprintf(tc.format, tc.arg, name))
			requireQueueGone(t, b, name)
		})
	}
}

// TestQuorumDeclareArgumentCombinations: arguments that are checked
// together.
func TestQuorumDeclareArgumentCombinations(t *testing.T) {
	b := startQuorumBroker(t)
	for _, tc := range []struct {
		name string
		args amqp091.Table
		text string // "" when the declare succeeds; %[1]s is the queue
	}{
		{"dead-letter exchange and routing key", amqp091.Table{"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "rk"}, ""},
		{"at-least-once with reject-publish", amqp091.Table{"x-dead-letter-exchange": "dlx", "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}, ""},
		// At-least-once needs reject-publish to take effect; with another
		// overflow the declare still succeeds (RabbitMQ falls back to
		// at-most-once and logs it).
		{"at-least-once with drop-head", amqp091.Table{"x-dead-letter-exchange": "dlx", "x-dead-letter-strategy": "at-least-once", "x-overflow": "drop-head"}, ""},
		{"queue type integer", amqp091.Table{"x-queue-type": int32(1)},
			"PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue '%[1]s' in vhost '/': {unacceptable_type,signedint}"},
		{"queue type unknown", amqp091.Table{"x-queue-type": "bogus"},
			"PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue '%[1]s' in vhost '/': \"unsupported queue type 'bogus'\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ch := b.channel(t)
			name := uniqueName(t, "q")
			b.cleanupQueue(t, name)
			args := quorumArgs(nil)
			for k, v := range tc.args {
				args[k] = v
			}
			_, err := ch.QueueDeclare(name, true, false, false, false, args)
			if tc.text == "" {
				require.NoError(t, err)
				return
			}
			requireAMQPError(t, err, amqp091.PreconditionFailed, "")
			requireExactReason(t, err, fmt.Sprintf(tc.text, name))
		})
	}
}

// TestQuorumRedeclare: equivalence of a second declare, x-queue-type
// included.
func TestQuorumRedeclare(t *testing.T) {
	b := startQuorumBroker(t)
	const inequivalent = "PRECONDITION_FAILED - inequivalent arg '%[2]s' for queue '%[1]s' in vhost '/': "
	quorumWith := func(extra amqp091.Table) amqp091.Table { return quorumArgs(extra) }
	for _, tc := range []struct {
		name                           string
		first                          amqp091.Table // a durable queue with these arguments
		durable, autoDelete, exclusive bool
		again                          amqp091.Table
		code                           int    // 0 when the redeclare succeeds
		text                           string // %[1]s is the queue, %[2]s the argument
		arg                            string
		// prefixOnly: text is the start of the reply text only (RabbitMQ
		// cuts a reply text at 255 octets, a shortstr, and the test's queue
		// names are long).
		prefixOnly bool
	}{
		{name: "same", first: quorumArgs(nil), durable: true, again: quorumArgs(nil)},
		{name: "same arguments", first: quorumWith(amqp091.Table{"x-max-length": int32(5), "x-delivery-limit": int32(2)}), durable: true,
			again: quorumWith(amqp091.Table{"x-max-length": int32(5), "x-delivery-limit": int32(2)})},
		// Integers compare by value, whatever their AMQP type.
		{name: "same value as a long-long", first: quorumWith(amqp091.Table{"x-max-length": int32(5)}), durable: true,
			again: quorumWith(amqp091.Table{"x-max-length": int64(5)})},
		{name: "quorum then classic", first: quorumArgs(nil), durable: true, again: amqp091.Table{"x-queue-type": "classic"},
			code: amqp091.PreconditionFailed, arg: "x-queue-type", text: inequivalent + "received 'classic' but current is 'quorum'"},
		{name: "quorum then no type", first: quorumArgs(nil), durable: true, again: nil,
			code: amqp091.PreconditionFailed, arg: "x-queue-type", text: inequivalent + "received none but current is the value 'quorum' of type 'longstr'"},
		{name: "classic then quorum", first: amqp091.Table{"x-queue-type": "classic"}, durable: true, again: quorumArgs(nil),
			code: amqp091.PreconditionFailed, arg: "x-queue-type", text: inequivalent + "received 'quorum' but current is 'classic'"},
		{name: "untyped then quorum", first: nil, durable: true, again: quorumArgs(nil),
			code: amqp091.PreconditionFailed, arg: "x-queue-type", text: inequivalent + "received the value 'quorum' of type 'longstr' but current is none"},
		{name: "classic then untyped", first: amqp091.Table{"x-queue-type": "classic"}, durable: true, again: nil},
		{name: "untyped then classic", first: nil, durable: true, again: amqp091.Table{"x-queue-type": "classic"}},
		// durable is compared before x-queue-type, and before the quorum
		// property rules.
		{name: "non-durable", first: quorumArgs(nil), durable: false, again: quorumArgs(nil),
			code: amqp091.PreconditionFailed, arg: "durable", text: inequivalent + "received 'false' but current is 'true'"},
		{name: "non-durable untyped", first: quorumArgs(nil), durable: false, again: nil,
			code: amqp091.PreconditionFailed, arg: "durable", text: inequivalent + "received 'false' but current is 'true'"},
		{name: "auto-delete", first: quorumArgs(nil), durable: true, autoDelete: true, again: quorumArgs(nil),
			code: amqp091.PreconditionFailed, arg: "auto_delete", text: inequivalent + "received 'true' but current is 'false'"},
		{name: "exclusive", first: quorumArgs(nil), durable: true, exclusive: true, again: quorumArgs(nil),
			// RabbitMQ goes on: "It could be originally declared on another
			// connection or the exclusive property value does not match that
			// of the original declaration."
			code: amqp091.ResourceLocked, text: "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '%[1]s' in vhost '/'. ",
			prefixOnly: true},
		{name: "new argument", first: quorumArgs(nil), durable: true, again: quorumWith(amqp091.Table{"x-max-length": int32(5)}),
			code: amqp091.PreconditionFailed, arg: "x-max-length", text: inequivalent + "received the value '5' of type 'signedint' but current is none"},
		{name: "new group size", first: quorumArgs(nil), durable: true, again: quorumWith(amqp091.Table{"x-quorum-initial-group-size": int32(1)}),
			code: amqp091.PreconditionFailed, arg: "x-quorum-initial-group-size", text: inequivalent + "received the value '1' of type 'signedint' but current is none"},
		{name: "changed argument", first: quorumWith(amqp091.Table{"x-max-length": int32(5)}), durable: true, again: quorumWith(amqp091.Table{"x-max-length": int32(6)}),
			code: amqp091.PreconditionFailed, arg: "x-max-length", text: inequivalent + "received '6' but current is '5'"},
		{name: "missing argument", first: quorumWith(amqp091.Table{"x-delivery-limit": int32(2)}), durable: true, again: quorumArgs(nil),
			code: amqp091.PreconditionFailed, arg: "x-delivery-limit", text: inequivalent + "received none but current is the value '2' of type 'signedint'"},
		// A refused argument is not looked at when the queue exists:
		// x-max-priority is not among the arguments compared.
		{name: "refused argument on an existing queue", first: quorumArgs(nil), durable: true, again: quorumWith(amqp091.Table{"x-max-priority": int32(1)})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := b.dial(t)
			ch, err := conn.Channel()
			require.NoError(t, err)
			name := uniqueName(t, "q")
			b.cleanupQueue(t, name)
			_, err = ch.QueueDeclare(name, true, false, false, false, tc.first)
			require.NoError(t, err)

			_, err = ch.QueueDeclare(name, tc.durable, tc.autoDelete, tc.exclusive, false, tc.again)
			if tc.code == 0 {
				require.NoError(t, err)
				return
			}
			want := fmt.Sprintf(tc.text, name, tc.arg)
			requireAMQPError(t, err, tc.code, want)
			if !tc.prefixOnly {
				requireExactReason(t, err, want)
			}

			// The queue is unchanged.
			ch, err = conn.Channel()
			require.NoError(t, err)
			_, err = ch.QueueDeclare(name, true, false, false, false, tc.first)
			require.NoError(t, err)
		})
	}
}

// TestQuorumDeclarePassive: a passive declare finds a quorum queue whatever
// properties and arguments it carries, and counts its ready messages.
func TestQuorumDeclarePassive(t *testing.T) {
	b := startQuorumBroker(t)
	_, ch := b.channel(t)
	q := declareQuorum(t, b, ch, "q", nil)
	require.NoError(t, ch.Confirm(false))
	publishEachConfirmed(t, ch, q, "a", "b")
	getOne(t, ch, q) // one unacked: not counted

	ok, err := ch.QueueDeclarePassive(q, false, true, true, false, amqp091.Table{"x-queue-type": "classic", "x-max-priority": int32(3)})
	require.NoError(t, err)
	require.Equal(t, 1, ok.Messages)

	_, ch = b.channel(t)
	missing := uniqueName(t, "missing")
	_, err = ch.QueueDeclarePassive(missing, true, false, false, false, quorumArgs(nil))
	requireExactReason(t, err, fmt.Sprintf("NOT_FOUND - no queue '%s' in vhost '/'", missing))
}

// TestQuorumGetCountsAsConsumer: in RabbitMQ 3.10.8 each message taken with
// basic.get and not yet settled counts as a consumer in declare-ok (the
// quorum queue's state machine checks it out to a one-shot consumer), until
// it is acked.
func TestQuorumGetCountsAsConsumer(t *testing.T) {
	b := startQuorumBroker(t)
	_, ch := b.channel(t)
	q := declareQuorum(t, b, ch, "q", nil)
	require.NoError(t, ch.Confirm(false))
	publishEachConfirmed(t, ch, q, "a", "b", "c")
	_, other := b.channel(t)
	counts := func() (int, int) {
		ok, err := other.QueueDeclarePassive(q, true, false, false, false, nil)
		require.NoError(t, err)
		return ok.Messages, ok.Consumers
	}
	m1 := getOne(t, ch, q)
	ready, consumers := counts()
	require.Equal(t, []int{2, 1}, []int{ready, consumers})
	m2 := getOne(t, ch, q)
	ready, consumers = counts()
	require.Equal(t, []int{1, 2}, []int{ready, consumers})
	require.NoError(t, m1.Ack(false))
	require.NoError(t, m2.Ack(false))
	require.Eventually(t, func() bool { _, c := counts(); return c == 0 }, timeout, 10*time.Millisecond)
	// An auto-acked get leaves nothing behind.
	_, ok, err := ch.Get(q, true)
	require.NoError(t, err)
	require.True(t, ok)
	ready, consumers = counts()
	require.Equal(t, []int{0, 0}, []int{ready, consumers})
}
