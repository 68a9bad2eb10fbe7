package vhost_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/storage"
	"github.com/warrenmq/warren/vhost"
)

// openStore opens a store in dir and closes it when the test ends, unless
// the test closed it first.
func openStore(t *testing.T, dir string) *storage.Store {
	t.Helper()
	s, err := storage.Open(dir, storage.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// publishStored publishes and waits until the message is on disk, as a
// publisher confirm would.
func publishStored(t *testing.T, v *vhost.VHost, p vhost.Publishing) {
	t.Helper()
	done := make(chan error, 1)
	r, err := v.Publish(&p, &vhost.Scratch{}, func(err error) { done <- err })
	require.NoError(t, err)
	if r.Stored {
		require.NoError(t, <-done)
	}
}

// TestRecover: durable definitions (with their arguments' types), policies
// and persistent messages in durable queues are back after the store is
// reopened; transient ones are not.
func TestRecover(t *testing.T) {
	dir := t.TempDir()
	nested := map[string]any{"n": int64(1), "s": "x", "list": []any{int32(2), "y"}}
	dqArgs := map[string]any{"x-max-priority": int32(5), "x-message-ttl": int32(600_000)}
	bindArgs := map[string]any{"x-match": "all", "nested": nested}
	policy := vhost.Policy{Name: "p", Pattern: "^dq$", ApplyTo: "queues", Priority: 1, Definition: map[string]any{"max-length": int64(10)}}

	props := func(priority uint8, headers wire.Table) []byte {
		p := wire.Properties{Priority: priority, DeliveryMode: 2, Headers: headers}
		p.Present = wire.FlagPriority | wire.FlagDeliveryMode
		if headers != nil {
			p.Present |= wire.FlagHeaders
		}
		return p.Append(nil)
	}
	sent := []*queue.Message{
		{Exchange: "dx", RoutingKey: "k", Properties: props(0, nil), Body: []byte("p1"), Persistent: true},
		{Exchange: "dx", RoutingKey: "k", Properties: props(3, wire.Table{"h": nested}), Body: []byte("p2"), Persistent: true, Priority: 3},
		{Exchange: "dx", RoutingKey: "k", Body: []byte("transient")},
	}

	store := openStore(t, dir)
	v := vhost.New("vh", vhost.Options{Store: store})
	apply(t, v,
		vhost.SetPolicy(policy),
		vhost.DeclareExchange{Name: "dx", Kind: "direct", Durable: true, Args: map[string]any{"alternate-exchange": "ae"}},
		vhost.DeclareExchange{Name: "ae", Kind: "fanout", Durable: true},
		vhost.DeclareExchange{Name: "tx", Kind: "fanout"},
		vhost.DeclareQueue{Name: "dq", Durable: true, Args: dqArgs},
		vhost.DeclareQueue{Name: "tq"},
		vhost.Bind{Source: "dx", Destination: "dq", Key: "k", Args: bindArgs},
		vhost.Bind{Source: "dx", Destination: "tq", Key: "k"},
		vhost.Bind{Source: "ae", Destination: "dq"},
		vhost.Bind{Source: "dx", Destination: "ae", ToExchange: true, Key: "e2e"},
	)
	for _, m := range sent {
		publishStored(t, v, vhost.Publishing{Exchange: m.Exchange, RoutingKey: m.RoutingKey, Message: m})
	}
	require.Equal(t, 3, ready(t, v, "dq"))
	dx, err := v.Exchange("dx")
	require.NoError(t, err)
	bindings := dx.Bindings()
	require.Len(t, bindings, 3)
	require.NoError(t, store.Close())

	store = openStore(t, dir)
	v = vhost.New("vh", vhost.Options{Store: store})
	// Another vhost's records in the same store are not this one's.
	other := vhost.New("other", vhost.Options{Store: store})
	keys, n, err := v.Recover()
	require.NoError(t, err)
	assert.Len(t, keys, 1, "one durable queue")
	assert.Equal(t, 2, n, "the persistent messages")
	keys, n, err = other.Recover()
	require.NoError(t, err)
	assert.Empty(t, keys)
	assert.Zero(t, n)

	assert.False(t, hasQueue(v, "tq"), "transient queue gone")
	assert.False(t, hasExchange(v, "tx"), "transient exchange gone")
	q, err := v.Queue("dq", 0)
	require.NoError(t, err)
	assert.True(t, q.Declared().Durable)
	assert.Equal(t, dqArgs, q.Declared().Args, "arguments keep their types")
	assert.Equal(t, int64(10), q.Config().MaxLength, "the policy applies again")
	assert.Equal(t, []vhost.Policy{policy}, v.Policies())

	dx, err = v.Exchange("dx")
	require.NoError(t, err)
	assert.Equal(t, exchange.Direct, dx.Kind)
	assert.Equal(t, map[string]any{"alternate-exchange": "ae"}, dx.Args)
	var durable []exchange.Binding
	for _, b := range bindings {
		if b.Destination.Name != "tq" {
			durable = append(durable, b)
		}
	}
	assert.ElementsMatch(t, durable, dx.Bindings(), "the bindings between durable ends")
	for _, b := range dx.Bindings() {
		if b.Key == "k" {
			assert.Equal(t, bindArgs, b.Args, "nested arguments come back as plain maps")
		}
	}

	// Highest priority first, each marked redelivered, properties as sent.
	for _, want := range []*queue.Message{sent[1], sent[0]} {
		d, _, ok := q.Get(true)
		require.True(t, ok)
		assert.Equal(t, want.Body, d.Message.Body)
		assert.Equal(t, want.Properties, d.Message.Properties)
		assert.Equal(t, want.Priority, d.Message.Priority)
		assert.True(t, d.Message.Persistent)
		assert.True(t, d.Redelivered)
	}
	_, _, ok := q.Get(true)
	assert.False(t, ok, "the transient message is gone")

	// The recovered routes work: the binding, the alternate exchange, and
	// the exchange-to-exchange binding.
	for _, key := range []string{"k", "unbound", "e2e"} {
		assert.Equal(t, 1, publish(t, v, vhost.Publishing{Exchange: "dx", RoutingKey: key}), "key %q", key)
	}
}

// TestRecoverDeadLetters: a dead letter written to a durable queue is
// stored like a publish, and is back, x-death and all, after a restart.
func TestRecoverDeadLetters(t *testing.T) {
	dir := t.TempDir()
	store := openStore(t, dir)
	v := vhost.New("/", vhost.Options{Store: store})
	apply(t, v,
		vhost.DeclareQueue{Name: "src", Durable: true, Args: map[string]any{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dlq"}},
		vhost.DeclareQueue{Name: "dlq", Durable: true},
	)
	p := wire.Properties{DeliveryMode: 2, Present: wire.FlagDeliveryMode}
	publishStored(t, v, vhost.Publishing{RoutingKey: "src", Message: &queue.Message{
		RoutingKey: "src", Properties: p.Append(nil), Body: []byte("b"), Persistent: true,
	}})
	q, d, _ := take(t, v, "src")
	q.Reject([]queue.Delivery{d})
	require.Equal(t, 1, ready(t, v, "dlq"))
	require.NoError(t, store.Flush())
	require.NoError(t, store.Close())

	v = vhost.New("/", vhost.Options{Store: openStore(t, dir)})
	_, n, err := v.Recover()
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the dead letter, not the rejected original")
	assert.Equal(t, 0, ready(t, v, "src"))
	_, d, props := take(t, v, "dlq")
	assert.Equal(t, "b", string(d.Message.Body))
	assert.Equal(t, []summary{{"src", "rejected", 1}}, summarize(deaths(t, props)))
}
