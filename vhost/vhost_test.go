package vhost_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/vhost"
)

func apply(t testing.TB, v *vhost.VHost, ops ...vhost.Op) {
	t.Helper()
	for _, op := range ops {
		_, err := v.Apply(op)
		require.NoError(t, err, "%#v", op)
	}
}

// requireErr checks a vhost error's kind and exact text.
func requireErr(t testing.TB, err error, kind vhost.Kind, text string) {
	t.Helper()
	var ve *vhost.Error
	require.True(t, errors.As(err, &ve), "want *vhost.Error, got %v", err)
	assert.Equal(t, kind, ve.Kind, "kind of %q", ve.Text)
	assert.Equal(t, text, ve.Text)
}

type failure struct {
	kind vhost.Kind
	text string
}

func check(t testing.TB, err error, want *failure) {
	t.Helper()
	if want == nil {
		require.NoError(t, err)
		return
	}
	requireErr(t, err, want.kind, want.text)
}

func hasExchange(v *vhost.VHost, name string) bool {
	_, err := v.Exchange(name)
	return err == nil
}

func hasQueue(v *vhost.VHost, name string) bool {
	_, err := v.Queue(name, 0)
	var ve *vhost.Error
	return !errors.As(err, &ve) || ve.Kind != vhost.NotFound
}

func ready(t testing.TB, v *vhost.VHost, name string) int {
	t.Helper()
	q, err := v.Queue(name, 0)
	require.NoError(t, err)
	return q.Stats().Ready
}

func declareQ(names ...string) []vhost.Op {
	ops := make([]vhost.Op, len(names))
	for i, n := range names {
		ops[i] = vhost.DeclareQueue{Name: n}
	}
	return ops
}

func publish(t testing.TB, v *vhost.VHost, p vhost.Publishing) int {
	t.Helper()
	if p.Message == nil {
		p.Message = &queue.Message{Exchange: p.Exchange, RoutingKey: p.RoutingKey, Body: []byte("m")}
	}
	n, err := v.Publish(&p, &vhost.Scratch{}, nil)
	require.NoError(t, err)
	return n.Queues
}

func TestDeclareExchange(t *testing.T) {
	const x = "exchange 'x' in vhost '/'"
	base := vhost.DeclareExchange{Name: "x", Kind: "direct", Durable: true, Args: map[string]any{"alternate-exchange": "ae"}}
	with := func(f func(*vhost.DeclareExchange)) vhost.DeclareExchange {
		op := base
		op.Args = map[string]any{"alternate-exchange": "ae"}
		f(&op)
		return op
	}
	tests := []struct {
		name string
		op   vhost.DeclareExchange
		want *failure
	}{
		{"equivalent", base, nil},
		{"other args may differ", with(func(o *vhost.DeclareExchange) { o.Args["x-foo"] = int32(1) }), nil},
		{"type", with(func(o *vhost.DeclareExchange) { o.Kind = "fanout" }), &failure{vhost.PreconditionFailed,
			"inequivalent arg 'type' for " + x + ": received 'fanout' but current is 'direct'"}},
		{"durable", with(func(o *vhost.DeclareExchange) { o.Durable = false }), &failure{vhost.PreconditionFailed,
			"inequivalent arg 'durable' for " + x + ": received 'false' but current is 'true'"}},
		{"auto_delete", with(func(o *vhost.DeclareExchange) { o.AutoDelete = true }), &failure{vhost.PreconditionFailed,
			"inequivalent arg 'auto_delete' for " + x + ": received 'true' but current is 'false'"}},
		{"internal", with(func(o *vhost.DeclareExchange) { o.Internal = true }), &failure{vhost.PreconditionFailed,
			"inequivalent arg 'internal' for " + x + ": received 'true' but current is 'false'"}},
		{"alternate-exchange missing", with(func(o *vhost.DeclareExchange) { o.Args = nil }), &failure{vhost.PreconditionFailed,
			"inequivalent arg 'alternate-exchange' for " + x + ": received none but current is the value 'ae' of type 'longstr'"}},
		{"type checked before durable", with(func(o *vhost.DeclareExchange) { o.Kind = "topic"; o.Durable = false }), &failure{vhost.PreconditionFailed,
			"inequivalent arg 'type' for " + x + ": received 'topic' but current is 'direct'"}},
		{"unknown type", with(func(o *vhost.DeclareExchange) { o.Kind = "x-no-such-type" }), &failure{vhost.CommandInvalid,
			"unknown exchange type 'x-no-such-type'"}},
		{"type names are case-sensitive", with(func(o *vhost.DeclareExchange) { o.Kind = "Direct" }), &failure{vhost.CommandInvalid,
			"unknown exchange type 'Direct'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := vhost.New("/", vhost.Options{})
			apply(t, v, base)
			_, err := v.Apply(tt.op)
			check(t, err, tt.want)
			e, err := v.Exchange("x")
			require.NoError(t, err)
			assert.Equal(t, "direct", e.Kind.String(), "a failed redeclare changes nothing")
		})
	}
}

func TestDeclareExchangeUnknownTypeNew(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	_, err := v.Apply(vhost.DeclareExchange{Name: "y", Kind: "nope"})
	requireErr(t, err, vhost.CommandInvalid, "unknown exchange type 'nope'")
	assert.False(t, hasExchange(v, "y"))
}

func TestPredeclared(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	for name, kind := range map[string]string{
		"": "direct", "amq.direct": "direct", "amq.fanout": "fanout",
		"amq.topic": "topic", "amq.headers": "headers", "amq.match": "headers",
		"amq.rabbitmq.trace": "topic",
	} {
		e, err := v.Exchange(name)
		require.NoError(t, err, name)
		assert.Equal(t, kind, e.Kind.String(), name)
		assert.True(t, e.Durable, name)
		assert.Equal(t, name == "amq.rabbitmq.trace", e.Internal, name)
	}
	assert.Len(t, v.Exchanges(), 7)
	_, err := v.Apply(vhost.DeclareExchange{Name: "amq.direct", Kind: "fanout", Durable: true})
	requireErr(t, err, vhost.PreconditionFailed,
		"inequivalent arg 'type' for exchange 'amq.direct' in vhost '/': received 'fanout' but current is 'direct'")
	assert.True(t, vhost.Reserved("amq.foo"))
	assert.False(t, vhost.Reserved("amqfoo"))
}

// RabbitMQ compares an argument present on both sides by value and prints the
// bare values (rabbit_misc:assert_args_equivalence1 then
// assert_field_equivalence(OrigVal, NewVal)); "the value ... of type" is only
// for a side where the argument is missing.
func TestArgInequivalenceTextBothPresent(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v, vhost.DeclareExchange{Name: "x", Kind: "direct", Args: map[string]any{"alternate-exchange": "a"}})
	_, err := v.Apply(vhost.DeclareExchange{Name: "x", Kind: "direct", Args: map[string]any{"alternate-exchange": "b"}})
	requireErr(t, err, vhost.PreconditionFailed,
		"inequivalent arg 'alternate-exchange' for exchange 'x' in vhost '/': received 'b' but current is 'a'")
}

func TestDeleteExchange(t *testing.T) {
	tests := []struct {
		name     string
		bound    bool
		ifUnused bool
		want     *failure
		gone     bool
	}{
		{"unbound", false, false, nil, true},
		{"bound", true, false, nil, true},
		{"unbound if-unused", false, true, nil, true},
		{"bound if-unused", true, true, &failure{vhost.PreconditionFailed, "exchange 'x' in vhost '/' in use"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := vhost.New("/", vhost.Options{})
			apply(t, v, vhost.DeclareExchange{Name: "x", Kind: "fanout"}, vhost.DeclareQueue{Name: "q"})
			if tt.bound {
				apply(t, v, vhost.Bind{Source: "x", Destination: "q"})
			}
			_, err := v.Apply(vhost.DeleteExchange{Name: "x", IfUnused: tt.ifUnused})
			check(t, err, tt.want)
			assert.Equal(t, tt.gone, !hasExchange(v, "x"))
		})
	}
	v := vhost.New("/", vhost.Options{})
	_, err := v.Apply(vhost.DeleteExchange{Name: "missing", IfUnused: true})
	assert.NoError(t, err, "deleting a missing exchange is ok")
}

// Binding to an exchange as destination does not make it "in use": RabbitMQ
// checks only bindings where it is the source.
func TestDeleteExchangeIfUnusedDestinationOnly(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v,
		vhost.DeclareExchange{Name: "src", Kind: "fanout"},
		vhost.DeclareExchange{Name: "dst", Kind: "fanout"},
		vhost.Bind{Source: "src", Destination: "dst", ToExchange: true})
	apply(t, v, vhost.DeleteExchange{Name: "dst", IfUnused: true})
	assert.False(t, hasExchange(v, "dst"))
	e, err := v.Exchange("src")
	require.NoError(t, err)
	assert.Zero(t, e.BindingCount(), "bindings to a deleted exchange go with it")
}

func TestDeclareQueue(t *testing.T) {
	const locked = "cannot obtain exclusive access to locked queue 'q' in vhost '/'. " +
		"It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."
	tests := []struct {
		name  string
		first vhost.DeclareQueue
		again vhost.DeclareQueue
		want  *failure
	}{
		{"equivalent", vhost.DeclareQueue{Name: "q", Durable: true}, vhost.DeclareQueue{Name: "q", Durable: true}, nil},
		{"exclusive same owner", vhost.DeclareQueue{Name: "q", Exclusive: true, Owner: 1},
			vhost.DeclareQueue{Name: "q", Exclusive: true, Owner: 1}, nil},
		{"exclusive other owner", vhost.DeclareQueue{Name: "q", Exclusive: true, Owner: 1},
			vhost.DeclareQueue{Name: "q", Exclusive: true, Owner: 2}, &failure{vhost.ResourceLocked, locked}},
		{"exclusive mismatch", vhost.DeclareQueue{Name: "q", Owner: 1},
			vhost.DeclareQueue{Name: "q", Exclusive: true, Owner: 1}, &failure{vhost.ResourceLocked, locked}},
		{"durable", vhost.DeclareQueue{Name: "q", Durable: true}, vhost.DeclareQueue{Name: "q"},
			&failure{vhost.PreconditionFailed, "inequivalent arg 'durable' for queue 'q' in vhost '/': received 'false' but current is 'true'"}},
		{"auto_delete", vhost.DeclareQueue{Name: "q"}, vhost.DeclareQueue{Name: "q", AutoDelete: true},
			&failure{vhost.PreconditionFailed, "inequivalent arg 'auto_delete' for queue 'q' in vhost '/': received 'true' but current is 'false'"}},
		{"checked arg added", vhost.DeclareQueue{Name: "q"}, vhost.DeclareQueue{Name: "q", Args: map[string]any{"x-max-length": int32(10)}},
			&failure{vhost.PreconditionFailed, "inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received the value '10' of type 'signedint' but current is none"}},
		{"integer widths compare by value", vhost.DeclareQueue{Name: "q", Args: map[string]any{"x-message-ttl": int32(1000)}},
			vhost.DeclareQueue{Name: "q", Args: map[string]any{"x-message-ttl": int64(1000)}}, nil},
		{"unchecked arg may differ", vhost.DeclareQueue{Name: "q", Args: map[string]any{"x-foo": "a"}},
			vhost.DeclareQueue{Name: "q", Args: map[string]any{"x-foo": "b"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := vhost.New("/", vhost.Options{})
			apply(t, v, tt.first)
			_, err := v.Apply(tt.again)
			check(t, err, tt.want)
		})
	}
}

// RabbitMQ treats x-queue-type=classic and no x-queue-type as the same
// (rabbit_misc:assert_field_equivalence special case).
func TestDeclareQueueClassicTypeEquivalent(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v, vhost.DeclareQueue{Name: "q"})
	apply(t, v, vhost.DeclareQueue{Name: "q", Args: map[string]any{"x-queue-type": "classic"}})
}

func TestQueueLookup(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v, vhost.DeclareQueue{Name: "ex", Exclusive: true, Owner: 7}, vhost.DeclareQueue{Name: "shared", Owner: 7})
	q, err := v.Queue("ex", 7)
	require.NoError(t, err)
	assert.Equal(t, uint64(7), q.Declared().Owner)
	_, err = v.Queue("ex", 8)
	requireErr(t, err, vhost.ResourceLocked, "cannot obtain exclusive access to locked queue 'ex' in vhost '/'. "+
		"It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.")
	q, err = v.Queue("shared", 8)
	require.NoError(t, err)
	assert.Zero(t, q.Declared().Owner, "a non-exclusive queue has no owner")
	_, err = v.Queue("nope", 7)
	requireErr(t, err, vhost.NotFound, "no queue 'nope' in vhost '/'")
	assert.Len(t, v.Queues(), 2)
}

type fakeConsumer struct{ cancelled int }

func (c *fakeConsumer) Deliver(queue.Interface, queue.Delivery) bool { return false }
func (c *fakeConsumer) Cancel(queue.Interface)                       { c.cancelled++ }

func TestDeleteQueue(t *testing.T) {
	tests := []struct {
		name     string
		exclOwn  uint64 // exclusive owner, 0: not exclusive
		consumer bool
		messages int
		op       vhost.DeleteQueue
		want     *failure
		wantN    int
	}{
		{"plain", 0, false, 2, vhost.DeleteQueue{Name: "q"}, nil, 2},
		{"if-unused idle", 0, false, 1, vhost.DeleteQueue{Name: "q", IfUnused: true}, nil, 1},
		{"if-unused in use", 0, true, 0, vhost.DeleteQueue{Name: "q", IfUnused: true},
			&failure{vhost.PreconditionFailed, "queue 'q' in vhost '/' in use"}, 0},
		{"if-empty empty", 0, true, 0, vhost.DeleteQueue{Name: "q", IfEmpty: true}, nil, 0},
		{"if-empty not empty", 0, false, 3, vhost.DeleteQueue{Name: "q", IfEmpty: true},
			&failure{vhost.PreconditionFailed, "queue 'q' in vhost '/' not empty"}, 0},
		{"exclusive owner", 5, false, 1, vhost.DeleteQueue{Name: "q", Owner: 5}, nil, 1},
		{"exclusive other", 5, false, 1, vhost.DeleteQueue{Name: "q", Owner: 6},
			&failure{vhost.ResourceLocked, "cannot obtain exclusive access to locked queue 'q' in vhost '/'. " +
				"It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."}, 0},
		{"missing", 0, false, 0, vhost.DeleteQueue{Name: "other"}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := vhost.New("/", vhost.Options{})
			apply(t, v, vhost.DeclareQueue{Name: "q", Exclusive: tt.exclOwn != 0, Owner: tt.exclOwn})
			q, err := v.Queue("q", tt.exclOwn)
			require.NoError(t, err)
			c := &fakeConsumer{}
			if tt.consumer {
				require.NoError(t, q.AddConsumer(c, false, false, 0))
			}
			for range tt.messages {
				q.Push(&queue.Message{Body: []byte("m")}, nil)
			}
			res, err := v.Apply(tt.op)
			check(t, err, tt.want)
			assert.Equal(t, tt.wantN, res.Messages)
			deleted := tt.want == nil && tt.op.Name == "q"
			assert.Equal(t, deleted, !hasQueue(v, "q"))
			if deleted && tt.consumer {
				assert.Equal(t, 1, c.cancelled)
			}
		})
	}
}

func TestBindErrors(t *testing.T) {
	const (
		defaultX = "operation not permitted on the default exchange"
		locked   = "cannot obtain exclusive access to locked queue 'eq' in vhost '/'. " +
			"It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."
	)
	tests := []struct {
		name string
		op   vhost.Bind
		want *failure
	}{
		{"ok", vhost.Bind{Source: "x", Destination: "q", Key: "k"}, nil},
		{"exchange to exchange", vhost.Bind{Source: "x", Destination: "y", ToExchange: true}, nil},
		{"from default", vhost.Bind{Source: "", Destination: "q", Key: "q"}, &failure{vhost.AccessRefused, defaultX}},
		{"to default", vhost.Bind{Source: "x", Destination: "", ToExchange: true}, &failure{vhost.AccessRefused, defaultX}},
		{"missing source", vhost.Bind{Source: "nox", Destination: "q"}, &failure{vhost.NotFound, "no exchange 'nox' in vhost '/'"}},
		{"missing queue", vhost.Bind{Source: "x", Destination: "noq"}, &failure{vhost.NotFound, "no queue 'noq' in vhost '/'"}},
		{"missing destination exchange", vhost.Bind{Source: "x", Destination: "noy", ToExchange: true},
			&failure{vhost.NotFound, "no exchange 'noy' in vhost '/'"}},
		{"exclusive queue of another", vhost.Bind{Source: "x", Destination: "eq", Owner: 2}, &failure{vhost.ResourceLocked, locked}},
		{"exclusive queue of owner", vhost.Bind{Source: "x", Destination: "eq", Owner: 1}, nil},
		{"bad x-match", vhost.Bind{Source: "h", Destination: "q", Args: map[string]any{"x-match": "some"}},
			&failure{vhost.PreconditionFailed, "Invalid x-match field value <<\"some\">>; expected all, any, all-with-x, or any-with-x"}},
	}
	for _, tt := range tests {
		for _, unbind := range []bool{false, true} {
			if unbind && tt.op.Args != nil {
				continue // unbind does not validate arguments
			}
			t.Run(fmt.Sprintf("%s/unbind=%t", tt.name, unbind), func(t *testing.T) {
				v := vhost.New("/", vhost.Options{})
				apply(t, v,
					vhost.DeclareExchange{Name: "x", Kind: "direct"},
					vhost.DeclareExchange{Name: "y", Kind: "direct"},
					vhost.DeclareExchange{Name: "h", Kind: "headers"},
					vhost.DeclareQueue{Name: "q"},
					vhost.DeclareQueue{Name: "eq", Exclusive: true, Owner: 1})
				var err error
				if unbind {
					_, err = v.Apply(vhost.Unbind(tt.op))
				} else {
					_, err = v.Apply(tt.op)
				}
				check(t, err, tt.want)
			})
		}
	}
}

// RabbitMQ looks both ends up together and reports the source first when
// both are missing (rabbit_binding: resources_missing [Src, Dst]).
func TestBindBothMissingReportsSource(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	_, err := v.Apply(vhost.Bind{Source: "nox", Destination: "noq"})
	requireErr(t, err, vhost.NotFound, "no exchange 'nox' in vhost '/'")
}

func TestBindIdempotentUnbindMissingOk(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v, vhost.DeclareExchange{Name: "x", Kind: "direct"}, vhost.DeclareQueue{Name: "q"})
	b := vhost.Bind{Source: "x", Destination: "q", Key: "k"}
	apply(t, v, b, b)
	e, _ := v.Exchange("x")
	assert.Equal(t, 1, e.BindingCount())
	apply(t, v, vhost.Unbind(b), vhost.Unbind(b))
	assert.Zero(t, e.BindingCount())
}

func TestAutoDeleteExchange(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v,
		vhost.DeclareExchange{Name: "ad", Kind: "fanout", AutoDelete: true},
		vhost.DeclareQueue{Name: "q1"}, vhost.DeclareQueue{Name: "q2"})
	assert.True(t, hasExchange(v, "ad"), "not deleted before it had bindings")
	apply(t, v,
		vhost.Bind{Source: "ad", Destination: "q1"},
		vhost.Bind{Source: "ad", Destination: "q2"},
		vhost.Unbind{Source: "ad", Destination: "q1"})
	assert.True(t, hasExchange(v, "ad"), "one binding left")
	apply(t, v, vhost.Unbind{Source: "ad", Destination: "q2"})
	assert.False(t, hasExchange(v, "ad"), "last binding gone by unbind")

	// Losing the last binding through a queue deletion, and through the
	// deletion of a destination exchange, deletes it as well.
	apply(t, v,
		vhost.DeclareExchange{Name: "ad", Kind: "fanout", AutoDelete: true},
		vhost.Bind{Source: "ad", Destination: "q1"},
		vhost.DeleteQueue{Name: "q1"})
	assert.False(t, hasExchange(v, "ad"), "last binding gone with its queue")

	apply(t, v,
		vhost.DeclareExchange{Name: "ad", Kind: "fanout", AutoDelete: true},
		vhost.DeclareExchange{Name: "d", Kind: "fanout"},
		vhost.Bind{Source: "ad", Destination: "d", ToExchange: true},
		vhost.DeleteExchange{Name: "d"})
	assert.False(t, hasExchange(v, "ad"), "last binding gone with its destination exchange")
}

func TestAutoDeleteExchangeChain(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v,
		vhost.DeclareExchange{Name: "a", Kind: "fanout", AutoDelete: true},
		vhost.DeclareExchange{Name: "b", Kind: "fanout", AutoDelete: true},
		vhost.DeclareQueue{Name: "q"},
		vhost.Bind{Source: "a", Destination: "b", ToExchange: true},
		vhost.Bind{Source: "b", Destination: "q"},
		vhost.DeleteQueue{Name: "q"})
	assert.False(t, hasExchange(v, "b"))
	assert.False(t, hasExchange(v, "a"), "a lost its binding to b when b went")
}

func TestDeleteQueueRemovesBindings(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v,
		vhost.DeclareExchange{Name: "x", Kind: "direct"},
		vhost.DeclareExchange{Name: "t", Kind: "topic"},
		vhost.DeclareQueue{Name: "q"}, vhost.DeclareQueue{Name: "other"},
		vhost.Bind{Source: "x", Destination: "q", Key: "a"},
		vhost.Bind{Source: "x", Destination: "q", Key: "b"},
		vhost.Bind{Source: "x", Destination: "other", Key: "a"},
		vhost.Bind{Source: "t", Destination: "q", Key: "#"},
		vhost.DeleteQueue{Name: "q"})
	x, _ := v.Exchange("x")
	tx, _ := v.Exchange("t")
	assert.Equal(t, 1, x.BindingCount())
	assert.Zero(t, tx.BindingCount())

	// A new queue of the same name does not inherit them.
	apply(t, v, vhost.DeclareQueue{Name: "q"})
	assert.Equal(t, 0, publish(t, v, vhost.Publishing{Exchange: "t", RoutingKey: "a"}))
	assert.Equal(t, 1, publish(t, v, vhost.Publishing{Exchange: "x", RoutingKey: "a"}))
}

func TestDeleteOwnedQueues(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v,
		vhost.DeclareExchange{Name: "x", Kind: "fanout"},
		vhost.DeclareQueue{Name: "mine1", Exclusive: true, Owner: 1},
		vhost.DeclareQueue{Name: "mine2", Exclusive: true, Owner: 1},
		vhost.DeclareQueue{Name: "theirs", Exclusive: true, Owner: 2},
		vhost.DeclareQueue{Name: "shared", Owner: 1},
		vhost.Bind{Source: "x", Destination: "mine1", Owner: 1})
	v.DeleteOwnedQueues(1)
	assert.False(t, hasQueue(v, "mine1"))
	assert.False(t, hasQueue(v, "mine2"))
	assert.True(t, hasQueue(v, "theirs"))
	assert.True(t, hasQueue(v, "shared"))
	x, _ := v.Exchange("x")
	assert.Zero(t, x.BindingCount())
}

type stubConsumer struct{}

func (stubConsumer) Deliver(queue.Interface, queue.Delivery) bool { return true }
func (stubConsumer) Cancel(queue.Interface)                       {}

func TestConsumerGoneAutoDeleteQueue(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v, vhost.DeclareQueue{Name: "q", AutoDelete: true})
	q, err := v.Queue("q", 0)
	require.NoError(t, err)
	a, b := &stubConsumer{}, &stubConsumer{}
	require.NoError(t, q.AddConsumer(a, false, false, 0))
	require.NoError(t, q.AddConsumer(b, false, false, 0))
	v.ConsumerGone(q, a)
	assert.True(t, hasQueue(v, "q"))
	v.ConsumerGone(q, b)
	assert.False(t, hasQueue(v, "q"))
}

// A repeated ConsumerGone for a queue already deleted (and redeclared under
// the same name) must not delete the new queue.
func TestConsumerGoneStaleDoesNotDeleteNewQueue(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v, vhost.DeclareQueue{Name: "q", AutoDelete: true})
	old, _ := v.Queue("q", 0)
	c := &stubConsumer{}
	require.NoError(t, old.AddConsumer(c, false, false, 0))
	v.ConsumerGone(old, c)
	apply(t, v, vhost.DeclareQueue{Name: "q", AutoDelete: true})
	v.ConsumerGone(old, c) // e.g. basic.cancel, then channel close
	assert.True(t, hasQueue(v, "q"))
}

func TestPublishRouting(t *testing.T) {
	setup := []vhost.Op{
		vhost.DeclareQueue{Name: "q1"}, vhost.DeclareQueue{Name: "q2"}, vhost.DeclareQueue{Name: "q3"},
		vhost.DeclareExchange{Name: "d", Kind: "direct"},
		vhost.DeclareExchange{Name: "f", Kind: "fanout"},
		vhost.DeclareExchange{Name: "t", Kind: "topic"},
		vhost.DeclareExchange{Name: "h", Kind: "headers"},
		vhost.Bind{Source: "d", Destination: "q1", Key: "red"},
		vhost.Bind{Source: "d", Destination: "q2", Key: "red"},
		vhost.Bind{Source: "d", Destination: "q3", Key: "blue"},
		vhost.Bind{Source: "f", Destination: "q1"},
		vhost.Bind{Source: "f", Destination: "q2"},
		vhost.Bind{Source: "t", Destination: "q1", Key: "a.*"},
		vhost.Bind{Source: "t", Destination: "q2", Key: "a.#"},
		vhost.Bind{Source: "t", Destination: "q3", Key: "#.c"},
		vhost.Bind{Source: "h", Destination: "q3", Args: map[string]any{"x-match": "all", "k": "v"}},
	}
	tests := []struct {
		name string
		p    vhost.Publishing
		want []int // ready count of q1, q2, q3 afterwards
	}{
		{"default by name", vhost.Publishing{RoutingKey: "q2"}, []int{0, 1, 0}},
		{"default unknown", vhost.Publishing{RoutingKey: "nope"}, []int{0, 0, 0}},
		{"direct all matches", vhost.Publishing{Exchange: "d", RoutingKey: "red"}, []int{1, 1, 0}},
		{"direct none", vhost.Publishing{Exchange: "d", RoutingKey: "green"}, []int{0, 0, 0}},
		{"fanout ignores key", vhost.Publishing{Exchange: "f", RoutingKey: "whatever"}, []int{1, 1, 0}},
		{"topic star", vhost.Publishing{Exchange: "t", RoutingKey: "a.b"}, []int{1, 1, 0}},
		{"topic hash zero words", vhost.Publishing{Exchange: "t", RoutingKey: "a"}, []int{0, 1, 0}},
		{"topic both", vhost.Publishing{Exchange: "t", RoutingKey: "a.c"}, []int{1, 1, 1}},
		{"headers", vhost.Publishing{Exchange: "h", Headers: map[string]any{"k": "v"}}, []int{0, 0, 1}},
		{"headers no match", vhost.Publishing{Exchange: "h", Headers: map[string]any{"k": "w"}}, []int{0, 0, 0}},
		{"cc", vhost.Publishing{Exchange: "d", RoutingKey: "green", CC: []string{"blue"}}, []int{0, 0, 1}},
		{"bcc", vhost.Publishing{Exchange: "d", RoutingKey: "blue", BCC: []string{"red"}}, []int{1, 1, 1}},
		{"cc duplicates once", vhost.Publishing{Exchange: "d", RoutingKey: "red", CC: []string{"red"}, BCC: []string{"red"}}, []int{1, 1, 0}},
		{"cc on default", vhost.Publishing{RoutingKey: "q1", CC: []string{"q3"}}, []int{1, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := vhost.New("/", vhost.Options{})
			apply(t, v, setup...)
			n := publish(t, v, tt.p)
			total := 0
			for i, want := range tt.want {
				got := ready(t, v, fmt.Sprint("q", i+1))
				assert.Equal(t, want, got, "q%d", i+1)
				total += got
			}
			assert.Equal(t, total, n, "returned count")
		})
	}
}

func TestPublishErrors(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v, vhost.DeclareExchange{Name: "in", Kind: "fanout", Internal: true})
	s := &vhost.Scratch{}
	m := &queue.Message{Body: []byte("m")}
	_, err := v.Publish(&vhost.Publishing{Exchange: "nope", Message: m}, s, nil)
	requireErr(t, err, vhost.NotFound, "no exchange 'nope' in vhost '/'")
	_, err = v.Publish(&vhost.Publishing{Exchange: "in", Message: m}, s, nil)
	requireErr(t, err, vhost.AccessRefused, "cannot publish to internal exchange 'in' in vhost '/'")
}

func TestPublishExchangeToExchange(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v,
		vhost.DeclareQueue{Name: "qa"}, vhost.DeclareQueue{Name: "qb"}, vhost.DeclareQueue{Name: "qc"},
		vhost.DeclareExchange{Name: "a", Kind: "fanout"},
		vhost.DeclareExchange{Name: "b", Kind: "topic", Internal: true},
		vhost.DeclareExchange{Name: "c", Kind: "direct"},
		vhost.Bind{Source: "a", Destination: "b", ToExchange: true},
		vhost.Bind{Source: "b", Destination: "c", ToExchange: true, Key: "k.#"},
		vhost.Bind{Source: "b", Destination: "qb", Key: "#"},
		vhost.Bind{Source: "c", Destination: "qc", Key: "k.x"},
		vhost.Bind{Source: "c", Destination: "qb", Key: "k.x"}, // reached twice
		vhost.Bind{Source: "a", Destination: "qa"},
	)
	assert.Equal(t, 3, publish(t, v, vhost.Publishing{Exchange: "a", RoutingKey: "k.x"}))
	assert.Equal(t, []int{1, 1, 1}, []int{ready(t, v, "qa"), ready(t, v, "qb"), ready(t, v, "qc")})
	assert.Equal(t, 2, publish(t, v, vhost.Publishing{Exchange: "a", RoutingKey: "other"}))
}

func TestPublishExchangeCycle(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v,
		vhost.DeclareQueue{Name: "qa"}, vhost.DeclareQueue{Name: "qb"},
		vhost.DeclareExchange{Name: "a", Kind: "fanout"},
		vhost.DeclareExchange{Name: "b", Kind: "fanout"},
		vhost.Bind{Source: "a", Destination: "b", ToExchange: true},
		vhost.Bind{Source: "b", Destination: "a", ToExchange: true},
		vhost.Bind{Source: "a", Destination: "qa"},
		vhost.Bind{Source: "b", Destination: "qb"},
		vhost.Bind{Source: "b", Destination: "qa"},
	)
	for _, from := range []string{"a", "b"} {
		assert.Equal(t, 2, publish(t, v, vhost.Publishing{Exchange: from}), "from %s", from)
	}
	assert.Equal(t, 2, ready(t, v, "qa"), "once per publish")
	assert.Equal(t, 2, ready(t, v, "qb"))

	// A self-loop too.
	apply(t, v, vhost.DeclareExchange{Name: "s", Kind: "fanout"},
		vhost.Bind{Source: "s", Destination: "s", ToExchange: true},
		vhost.Bind{Source: "s", Destination: "qa"})
	assert.Equal(t, 1, publish(t, v, vhost.Publishing{Exchange: "s"}))
}

func TestPublishAlternateExchange(t *testing.T) {
	setup := []vhost.Op{
		vhost.DeclareQueue{Name: "main"}, vhost.DeclareQueue{Name: "alt"}, vhost.DeclareQueue{Name: "alt2"},
		vhost.DeclareExchange{Name: "ae", Kind: "fanout", Args: map[string]any{"alternate-exchange": "x"}}, // cycle back
		vhost.DeclareExchange{Name: "x", Kind: "direct", Args: map[string]any{"alternate-exchange": "ae"}},
		vhost.Bind{Source: "x", Destination: "main", Key: "hit"},
		vhost.Bind{Source: "ae", Destination: "alt"},
	}
	v := vhost.New("/", vhost.Options{})
	apply(t, v, setup...)
	assert.Equal(t, 1, publish(t, v, vhost.Publishing{Exchange: "x", RoutingKey: "hit"}))
	assert.Equal(t, 0, ready(t, v, "alt"), "alternate not used when something matched")
	assert.Equal(t, 1, publish(t, v, vhost.Publishing{Exchange: "x", RoutingKey: "miss"}))
	assert.Equal(t, 1, ready(t, v, "alt"))
	assert.Equal(t, 1, ready(t, v, "main"))

	// An alternate exchange that does not exist leaves the message unroutable.
	apply(t, v, vhost.DeclareExchange{Name: "y", Kind: "direct", Args: map[string]any{"alternate-exchange": "missing"}})
	assert.Equal(t, 0, publish(t, v, vhost.Publishing{Exchange: "y", RoutingKey: "miss"}))

	// An empty alternate routes nowhere and does not loop.
	apply(t, v, vhost.Unbind{Source: "ae", Destination: "alt"})
	assert.Equal(t, 0, publish(t, v, vhost.Publishing{Exchange: "x", RoutingKey: "miss"}))
}

// In RabbitMQ an exchange's alternate is consulted only when the exchange's
// own bindings matched nothing (rabbit_exchange:process_alternate on the
// type's route result); an exchange-to-exchange binding that matched counts,
// even if the downstream exchange reaches no queue.
func TestAlternateNotUsedWhenE2EBindingMatched(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v,
		vhost.DeclareQueue{Name: "alt"},
		vhost.DeclareExchange{Name: "ae", Kind: "fanout"},
		vhost.DeclareExchange{Name: "empty", Kind: "direct"},
		vhost.DeclareExchange{Name: "x", Kind: "fanout", Args: map[string]any{"alternate-exchange": "ae"}},
		vhost.Bind{Source: "x", Destination: "empty", ToExchange: true},
		vhost.Bind{Source: "ae", Destination: "alt"})
	assert.Equal(t, 0, publish(t, v, vhost.Publishing{Exchange: "x", RoutingKey: "k"}))
}

type replyTarget struct {
	mu   sync.Mutex
	got  []*queue.Message
	full bool
}

func (r *replyTarget) DeliverReply(m *queue.Message) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.full {
		return false
	}
	r.got = append(r.got, m)
	return true
}

func TestDirectReplyTo(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	rt := &replyTarget{}
	v.RegisterReplyTo("tok1", rt)
	m := &queue.Message{Body: []byte("reply")}
	p := vhost.Publishing{RoutingKey: vhost.ReplyToPrefix + "tok1", Message: m}
	assert.Equal(t, 1, publish(t, v, p))
	require.Len(t, rt.got, 1)
	assert.Same(t, m, rt.got[0])

	assert.Equal(t, 0, publish(t, v, vhost.Publishing{RoutingKey: vhost.ReplyToPrefix + "other"}), "unknown token")
	rt.full = true
	assert.Equal(t, 0, publish(t, v, p), "target refused")
	rt.full = false

	// Only through the default exchange.
	apply(t, v, vhost.DeclareExchange{Name: "x", Kind: "direct"})
	assert.Equal(t, 0, publish(t, v, vhost.Publishing{Exchange: "x", RoutingKey: p.RoutingKey}))

	v.UnregisterReplyTo("tok1")
	assert.Equal(t, 0, publish(t, v, p))
	assert.Len(t, rt.got, 1)
}

func TestPublishAfterQueueDeleted(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v, declareQ("q")...)
	q, _ := v.Queue("q", 0)
	apply(t, v, vhost.DeleteQueue{Name: "q"})
	assert.Equal(t, queue.Gone, q.Push(&queue.Message{}, nil))
	assert.Equal(t, 0, publish(t, v, vhost.Publishing{RoutingKey: "q"}))
}

// Scratch reuse across publishes of different shapes must not leak
// destinations from one publish into the next.
func TestScratchReuse(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v, declareQ("q1", "q2")...)
	apply(t, v, vhost.DeclareExchange{Name: "f", Kind: "fanout"},
		vhost.Bind{Source: "f", Destination: "q1"}, vhost.Bind{Source: "f", Destination: "q2"})
	s := &vhost.Scratch{}
	m := &queue.Message{}
	n, err := v.Publish(&vhost.Publishing{Exchange: "f", Message: m}, s, nil)
	require.NoError(t, err)
	assert.Equal(t, 2, n.Queues)
	n, err = v.Publish(&vhost.Publishing{RoutingKey: "nope", Message: m}, s, nil)
	require.NoError(t, err)
	assert.Equal(t, 0, n.Queues)
	n, err = v.Publish(&vhost.Publishing{RoutingKey: "q1", Message: m}, s, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, n.Queues)
	assert.Equal(t, 2, ready(t, v, "q1"))
}

// Definitions and publishes from many goroutines, under -race.
func TestConcurrentApplyPublish(t *testing.T) {
	v := vhost.New("/", vhost.Options{})
	apply(t, v, vhost.DeclareExchange{Name: "f", Kind: "fanout"})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 200 {
				name := fmt.Sprintf("q%d-%d", w, i%10)
				_, _ = v.Apply(vhost.DeclareQueue{Name: name})
				_, _ = v.Apply(vhost.Bind{Source: "f", Destination: name})
				if i%3 == 0 {
					_, _ = v.Apply(vhost.DeleteQueue{Name: name})
				}
			}
		}()
		go func() {
			defer wg.Done()
			s := &vhost.Scratch{}
			for range 500 {
				_, err := v.Publish(&vhost.Publishing{Exchange: "f", Message: &queue.Message{}}, s, nil)
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
