package vhost_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/vhost"
)

// TestDelete: Delete drops every queue (exclusive ones too), exchange,
// binding and policy, and from then on every op that would create something
// fails, while deletions still succeed.
func TestDelete(t *testing.T) {
	v := vhost.New("doomed", vhost.Options{})
	apply(t, v,
		vhost.DeclareExchange{Name: "x", Kind: "fanout", Durable: true},
		vhost.DeclareQueue{Name: "q", Durable: true},
		vhost.DeclareQueue{Name: "mine", Exclusive: true, Owner: 7},
		vhost.Bind{Source: "x", Destination: "q"},
		vhost.Bind{Source: "amq.direct", Destination: "x", ToExchange: true, Key: "k"},
		vhost.SetPolicy{Name: "p", Pattern: ".*", Definition: map[string]any{"max-length": int64(3)}},
	)
	require.False(t, v.Deleted())
	require.NoError(t, v.Delete())
	require.True(t, v.Deleted())

	assert.Empty(t, v.Queues())
	assert.Empty(t, v.Policies())
	for _, e := range v.Exchanges() {
		assert.Equal(t, "", e.Name, "only the default exchange is left")
	}

	gone := &failure{vhost.NotFound, "vhost 'doomed' is deleted"}
	for _, tc := range []struct {
		name string
		op   vhost.Op
		want *failure
	}{
		{"declare exchange", vhost.DeclareExchange{Name: "x", Kind: "direct"}, gone},
		{"declare queue", vhost.DeclareQueue{Name: "q"}, gone},
		{"bind", vhost.Bind{Source: "", Destination: "q"}, gone},
		{"set policy", vhost.SetPolicy{Name: "p", Pattern: ".*", Definition: map[string]any{"max-length": int64(1)}}, gone},
		{"delete queue", vhost.DeleteQueue{Name: "q"}, nil},
		{"delete exchange", vhost.DeleteExchange{Name: "x"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Apply(tc.op)
			check(t, err, tc.want)
		})
	}
	require.NoError(t, v.Delete(), "deleting again finds nothing to delete")
}
