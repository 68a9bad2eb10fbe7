package queue

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDeduplication: a deduplicating queue refuses a header value while a
// message carrying it is in the queue (ready or unacked) and accepts it
// again once that message has left, whichever way it left.
func TestDeduplication(t *testing.T) {
	dm := func(key string) *Message { m := msg(key); m.DedupKey = key; return m }
	cases := []struct {
		name string
		cfg  func(*Config) // changes the default configuration
		// leave makes the first "a" leave the queue, or not (free false).
		leave func(t *testing.T, q *Queue)
		free  bool
	}{
		{"ready stays", nil, func(*testing.T, *Queue) {}, false},
		{"unacked stays", nil, func(t *testing.T, q *Queue) { getN(t, q, 1, false) }, false},
		{"requeued stays", nil, func(t *testing.T, q *Queue) { q.Requeue(getN(t, q, 1, false)) }, false},
		{"acked leaves", nil, func(t *testing.T, q *Queue) { q.Ack(getN(t, q, 1, false)) }, true},
		{"no-ack get leaves", nil, func(t *testing.T, q *Queue) { getN(t, q, 1, true) }, true},
		{"rejected leaves", nil, func(t *testing.T, q *Queue) { q.Reject(getN(t, q, 1, false)) }, true},
		{"delivery limit leaves", func(c *Config) { c.DeliveryLimit = 0 }, func(t *testing.T, q *Queue) { q.Requeue(getN(t, q, 1, false)) }, true},
		{"purge leaves", nil, func(t *testing.T, q *Queue) { q.Purge() }, true},
		{"purge keeps unacked", nil, func(t *testing.T, q *Queue) { getN(t, q, 1, false); q.Purge() }, false},
		{"dropped head leaves", func(c *Config) { c.MaxLength, c.Overflow = 2, DropHead }, func(t *testing.T, q *Queue) {
			require.Equal(t, Accepted, q.Push(dm("b"), nil))
		}, true},
		// The TTL outlasts the two pushes before leave even on a busy machine.
		{"expired leaves", func(c *Config) { c.MessageTTL = 300 * time.Millisecond }, func(t *testing.T, q *Queue) {
			require.Eventually(t, func() bool { return q.Stats().Ready == 0 }, 10*time.Second, 5*time.Millisecond)
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{MessageTTL: -1, MaxLength: -1, MaxLengthBytes: -1, DeliveryLimit: -1, Deduplicate: true}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			q := New("q", Options{Config: cfg})
			require.Equal(t, Accepted, q.Push(dm("a"), nil))
			require.Equal(t, Duplicate, q.Push(dm("a"), nil))
			require.Equal(t, Accepted, q.Push(msg("no header"), nil), "messages without the header always pass")
			tc.leave(t, q)
			want := Duplicate
			if tc.free {
				want = Accepted
			}
			require.Equal(t, want, q.Push(dm("a"), nil))
		})
	}
}

// TestDeduplicationDelete: a deleted queue forgets its values.
func TestDeduplicationDelete(t *testing.T) {
	q := New("q", Options{Config: Config{MessageTTL: -1, MaxLength: -1, MaxLengthBytes: -1, DeliveryLimit: -1, Deduplicate: true}})
	m := msg("a")
	m.DedupKey = "a"
	require.Equal(t, Accepted, q.Push(m, nil))
	getN(t, q, 1, false)
	q.Delete()
	q.mu.Lock()
	n := len(q.dedup)
	q.mu.Unlock()
	require.Zero(t, n)
}
