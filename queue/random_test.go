package queue

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/storage"
)

// recorder is a consumer that takes up to capacity deliveries at a time
// and hands them over to the test.
type recorder struct {
	mu       sync.Mutex // guards got
	capacity int
	got      []Delivery
}

func (r *recorder) Deliver(_ Interface, d Delivery) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) >= r.capacity {
		return false
	}
	r.got = append(r.got, d)
	return true
}

func (r *recorder) Cancel(Interface) {}

func (r *recorder) take() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	ds := r.got
	r.got = nil
	return ds
}

// TestRandomOperations runs random operations (publishes with and without a
// batch, a write held pending across other operations, gets, consumers,
// acks, requeues, rejects, purges) on queues of several kinds, and checks
// that every accepted message is accounted for exactly once: acked,
// dead-lettered or purged, and that nothing is left in storage. Built with
// -tags invariants, each operation also checks the queue's counters.
func TestRandomOperations(t *testing.T) {
	cases := []struct {
		name   string
		cfg    func(*Config)
		stored bool // on a store: persistent messages are pushed with a batch
		paged  bool // on a store, with a spent budget
	}{
		{name: "plain"},
		{name: "priorities and TTLs", cfg: func(c *Config) { c.MaxPriority = 4; c.MessageTTL = 20 * time.Millisecond }},
		{name: "drop-head", cfg: func(c *Config) { c.MaxLength = 40 }},
		{name: "reject-publish", cfg: func(c *Config) { c.MaxLengthBytes = 200; c.Overflow = RejectPublish }},
		{name: "delivery limit", cfg: func(c *Config) { c.DeliveryLimit = 1 }},
		{name: "stored", stored: true},
		{name: "paged", paged: true},
		{name: "paged priorities and TTLs", paged: true, cfg: func(c *Config) { c.MaxPriority = 2; c.MessageTTL = 30 * time.Millisecond }},
		{name: "paged drop-head", paged: true, cfg: func(c *Config) { c.MaxLength = 300 }},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			cfg.HasDeadLetter = true
			var dead atomic.Int64
			o := Options{Durable: true, Config: cfg, Hooks: Hooks{DeadLetter: func(_ Interface, dls []DeadLetter) { dead.Add(int64(len(dls))) }}}
			var store *storage.Store
			if tc.stored || tc.paged {
				var err error
				store, err = storage.Open(t.TempDir(), storage.Options{NoSync: true})
				require.NoError(t, err)
				defer store.Close()
				o.Store, o.StoreKey = store, "/\x00q"
				if tc.paged {
					o.Budget = NewBudget(1)
				}
			}
			q := New("q", o)
			rng := rand.New(rand.NewPCG(1, uint64(i)))

			accepted, acked, purged := 0, 0, 0
			var outstanding []Delivery
			var held *Message // pushed with a batch, not released yet
			var heldBatch *storage.Batch
			release := func() {
				if held != nil {
					require.NoError(t, store.Commit(heldBatch))
					q.Release(held)
					held, heldBatch = nil, nil
				}
			}
			publish := func(n int) {
				m := &Message{Body: []byte(fmt.Sprint(n)), Priority: uint8(rng.IntN(5)), Persistent: rng.IntN(3) > 0}
				if rng.IntN(4) == 0 {
					m.Expiration, m.HasExpiration = int64(rng.IntN(5)), true
				}
				var b *storage.Batch
				if store != nil && m.Persistent {
					b = new(storage.Batch)
					m.ID = store.NextMessageID()
					b.PutMessage(m.ID, EncodeMessage(m))
				}
				if q.Push(m, b) == Accepted {
					accepted++
				}
				if b == nil {
					return
				}
				if held == nil && rng.IntN(4) == 0 {
					held, heldBatch = m, b // released after a few other operations
					return
				}
				require.NoError(t, store.Commit(b))
				q.Release(m)
			}
			pick := func() []Delivery {
				n := rng.IntN(len(outstanding) + 1)
				rng.Shuffle(len(outstanding), func(i, j int) { outstanding[i], outstanding[j] = outstanding[j], outstanding[i] })
				ds := outstanding[:n:n]
				outstanding = outstanding[n:]
				return ds
			}
			var cons *recorder
			for step := range 3000 {
				if cons != nil {
					outstanding = append(outstanding, cons.take()...)
				}
				switch op := rng.IntN(20); {
				case op < 8:
					publish(step)
				case op < 10:
					release() // a get would wait for a pending head
					noAck := rng.IntN(2) == 0
					if d, _, ok := q.Get(noAck); ok && noAck {
						acked++
					} else if ok {
						outstanding = append(outstanding, d)
					}
				case op < 12:
					ds := pick()
					acked += len(ds)
					q.Ack(ds)
				case op < 14:
					q.Requeue(pick())
				case op < 15:
					q.Reject(pick())
				case op < 16:
					if cons == nil {
						cons = &recorder{capacity: 1 + rng.IntN(20)}
						require.NoError(t, q.AddConsumer(cons, false, false, 0))
					} else {
						q.RemoveConsumer(cons)
						outstanding = append(outstanding, cons.take()...)
						cons = nil
					}
					q.Kick()
				case op < 17:
					if rng.IntN(10) == 0 {
						purged += q.Purge()
					}
				default:
					if rng.IntN(3) == 0 {
						release()
					}
					q.Kick()
				}
			}
			release()
			if cons != nil {
				q.RemoveConsumer(cons)
				outstanding = append(outstanding, cons.take()...)
			}
			acked += len(outstanding)
			q.Ack(outstanding)
			purged += q.Purge()
			require.Eventually(t, func() bool {
				return int64(accepted) == int64(acked+purged)+dead.Load()
			}, 5*time.Second, time.Millisecond, "accepted %d, acked %d, purged %d, dead-lettered %d", accepted, acked, purged, dead.Load())
			st := q.Stats()
			assert.Zero(t, st.Ready+st.Unacked)
			if store != nil {
				// Expiry's deletes are submitted after its dead letters.
				require.Eventually(t, func() bool {
					entries := 0
					require.NoError(t, store.Flush())
					require.NoError(t, store.Entries(o.StoreKey, func(uint64, []byte) error { entries++; return nil }))
					return entries == 0
				}, 5*time.Second, time.Millisecond, "entries left in storage")
			}
		})
	}
}
