package vhost_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/storage"
	"github.com/warrenmq/warren/vhost"
)

// TestApplyFailedCommitChangesNothing: when the commit of an op fails, as
// with a broken disk, the op fails with InternalError and memory is as it
// was before: memory and disk change together or not at all. After the
// disk recovers, the same ops succeed and are stored.
func TestApplyFailedCommitChangesNothing(t *testing.T) {
	var broken atomic.Bool
	dir := t.TempDir()
	st, err := storage.Open(dir, storage.Options{Fault: func() error {
		if broken.Load() {
			return errors.New("disk on fire")
		}
		return nil
	}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	v := vhost.New("v", vhost.Options{Store: st})
	apply := func(op vhost.Op) (vhost.Result, error) { return v.Apply(op) }
	must := func(op vhost.Op) {
		t.Helper()
		_, err := apply(op)
		require.NoError(t, err, "%#v", op)
	}
	// The state the failing ops start from: a durable exchange bound to a
	// durable queue holding a message, an auto-delete exchange bound to it
	// too, and a policy.
	must(vhost.DeclareExchange{Name: "x", Kind: "direct", Durable: true})
	must(vhost.DeclareExchange{Name: "ad", Kind: "fanout", Durable: true, AutoDelete: true})
	must(vhost.DeclareQueue{Name: "q", Durable: true})
	must(vhost.Bind{Source: "x", Destination: "q", Key: "k"})
	must(vhost.Bind{Source: "ad", Destination: "q"})
	must(vhost.SetPolicy{Name: "p", Pattern: "^q$", ApplyTo: "queues", Definition: map[string]any{"max-length": int64(10)}})
	publishStored(t, v, vhost.Publishing{Exchange: "x", RoutingKey: "k",
		Message: &queue.Message{Exchange: "x", RoutingKey: "k", Body: []byte("m"), Persistent: true}})

	type state struct {
		exchanges []string
		queues    []string
		bindings  int
		ready     int
		policies  int
		maxLength int64
	}
	snapshot := func() state {
		var s state
		for _, e := range v.Exchanges() {
			s.exchanges = append(s.exchanges, e.Name)
			s.bindings += e.BindingCount()
		}
		for _, q := range v.Queues() {
			s.queues = append(s.queues, q.Declared().Name)
			s.ready += q.Stats().Ready
			s.maxLength = q.Config().MaxLength
		}
		s.policies = len(v.Policies())
		return s
	}
	before := snapshot()
	require.Equal(t, 1, before.ready)
	require.Equal(t, int64(10), before.maxLength)

	broken.Store(true)
	for _, tc := range []struct {
		name string
		op   vhost.Op
	}{
		{"declare an exchange", vhost.DeclareExchange{Name: "new", Kind: "topic", Durable: true}},
		{"declare a queue", vhost.DeclareQueue{Name: "new", Durable: true}},
		{"bind", vhost.Bind{Source: "x", Destination: "q", Key: "other"}},
		{"unbind, which would auto-delete ad", vhost.Unbind{Source: "ad", Destination: "q"}},
		{"delete an exchange", vhost.DeleteExchange{Name: "x"}},
		{"delete the queue, which would auto-delete ad", vhost.DeleteQueue{Name: "q"}},
		{"set a policy", vhost.SetPolicy{Name: "p", Pattern: "^q$", ApplyTo: "queues", Definition: map[string]any{"max-length": int64(1)}}},
		{"delete a policy", vhost.DeletePolicy{Name: "p"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := apply(tc.op)
			var ve *vhost.Error
			require.True(t, errors.As(err, &ve), "%v", err)
			assert.Equal(t, vhost.InternalError, ve.Kind)
			assert.ElementsMatch(t, before.exchanges, snapshot().exchanges)
			assert.Equal(t, before, func() state { s := snapshot(); s.exchanges = before.exchanges; return s }())
		})
	}
	x, err := v.Exchange("x")
	require.NoError(t, err)
	assert.Equal(t, []exchange.Binding{{Source: "x", Destination: exchange.Destination{Name: "q"}, Key: "k"}}, x.Bindings())

	// The disk is back: what failed now succeeds, and is stored.
	broken.Store(false)
	must(vhost.DeclareExchange{Name: "new", Kind: "topic", Durable: true})
	res, err := apply(vhost.DeleteQueue{Name: "q"})
	require.NoError(t, err)
	assert.Equal(t, 1, res.Messages, "the message is dropped with the queue, once the deletion is stored")
	_, err = v.Exchange("ad")
	assert.Error(t, err, "the auto-delete exchange went with its last binding")
	require.NoError(t, st.Close())

	st2 := openStore(t, dir)
	v2 := vhost.New("v", vhost.Options{Store: st2})
	_, _, err = v2.Recover()
	require.NoError(t, err)
	_, err = v2.Exchange("new")
	assert.NoError(t, err)
	_, err = v2.Queue("q", 0)
	assert.Error(t, err)
}
