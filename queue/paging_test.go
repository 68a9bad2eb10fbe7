package queue

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/storage"
)

// pagedQueue is a durable queue on a real store whose budget is spent from
// the start: every level keeps pageLow messages in memory, the rest on disk.
type pagedQueue struct {
	*Queue
	store  *storage.Store
	budget *Budget
	key    string
}

func newPagedQueue(t *testing.T, dir string, cfg Config) *pagedQueue {
	t.Helper()
	store, err := storage.Open(dir, storage.Options{NoSync: true})
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	return openPaged(t, store, cfg)
}

func openPaged(t *testing.T, store *storage.Store, cfg Config) *pagedQueue {
	t.Helper()
	budget := NewBudget(1)
	key := "/\x00q"
	q := New("q", Options{Durable: true, Store: store, StoreKey: key, Budget: budget, Config: cfg})
	return &pagedQueue{Queue: q, store: store, budget: budget, key: key}
}

// publish stores and pushes a message as the virtual host does.
func (p *pagedQueue) publish(t testing.TB, body string, prio uint8, persistent bool) {
	m := &Message{RoutingKey: "k", Body: []byte(body), Priority: prio, Persistent: persistent}
	var b *storage.Batch
	if persistent {
		b = new(storage.Batch)
		m.ID = p.store.NextMessageID()
		b.PutMessage(m.ID, EncodeMessage(m))
	}
	require.Equal(t, Accepted, p.Push(m, b))
	if b != nil {
		p.store.Submit(b, func(err error) { assert.NoError(t, err) })
		p.Release(m)
	}
}

func (p *pagedQueue) paged() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready.pagedCount()
}

func (p *pagedQueue) stored(t *testing.T) (entries, messages int) {
	t.Helper()
	require.NoError(t, p.store.Flush())
	require.NoError(t, p.store.Entries(p.key, func(uint64, []byte) error { entries++; return nil }))
	require.NoError(t, p.store.Messages(func(uint64) error { messages++; return nil }))
	return entries, messages
}

func TestPagedFIFO(t *testing.T) {
	const n = 5000
	p := newPagedQueue(t, t.TempDir(), defaultConfig())
	for i := range n {
		p.publish(t, fmt.Sprint(i), 0, true)
	}
	assert.Equal(t, n, p.Stats().Ready)
	assert.Greater(t, p.paged(), n/2, "most of the backlog is on disk only")
	p.mu.Lock()
	inMemory := p.ready.levels[0].len()
	p.mu.Unlock()
	assert.LessOrEqual(t, inMemory, pageLow+pageBatch)
	// Once written, paged messages are not held in memory any more.
	require.Eventually(t, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.page.recent) == 0
	}, 5*time.Second, time.Millisecond)

	for i := range n {
		d, remaining, ok := p.Get(false)
		require.True(t, ok, "message %d", i)
		require.Equal(t, fmt.Sprint(i), string(d.Message.Body))
		require.Equal(t, n-i-1, remaining)
		p.Ack([]Delivery{d})
	}
	_, _, ok := p.Get(false)
	assert.False(t, ok)
	assert.Zero(t, p.budget.Used(), "every charge given back")
	entries, messages := p.stored(t)
	assert.Zero(t, entries)
	assert.Zero(t, messages)
}

// Consumers are fed from the disk as they drain memory, in order, and a
// transient message published among the paged ones keeps its place.
func TestPagedConsumerAndTransient(t *testing.T) {
	const n = 6000
	p := newPagedQueue(t, t.TempDir(), defaultConfig())
	for i := range n {
		p.publish(t, fmt.Sprint(i), 0, i%3 != 0)
	}
	c := newConsumer(-1)
	require.NoError(t, p.AddConsumer(c, false, true, 0))
	p.Kick()
	require.Eventually(t, func() bool { return len(c.deliveries()) == n }, 10*time.Second, time.Millisecond)
	for i, body := range c.bodies() {
		require.Equal(t, fmt.Sprint(i), body)
	}
	for i, d := range c.deliveries() {
		require.Equal(t, i%3 != 0, d.Message.Persistent, "message %d", i)
	}
	entries, messages := p.stored(t)
	assert.Zero(t, entries)
	assert.Zero(t, messages)
}

// Priorities hold across the disk: a level whose next messages are on disk
// is waited for, not overtaken by a lower one.
func TestPagedPriorities(t *testing.T) {
	cfg := defaultConfig()
	cfg.MaxPriority = 3
	p := newPagedQueue(t, t.TempDir(), cfg)
	const perLevel = 3000
	for i := range perLevel {
		for prio := range uint8(4) {
			p.publish(t, fmt.Sprintf("%d-%d", prio, i), prio, true)
		}
	}
	for prio := 3; prio >= 0; prio-- {
		for i := range perLevel {
			d, _, ok := p.Get(true)
			require.True(t, ok)
			require.Equal(t, fmt.Sprintf("%d-%d", prio, i), string(d.Message.Body))
		}
	}
}

// A restart brings a paged backlog back in order, marked redelivered, with
// most of it still on disk; transient messages written for paging are gone.
func TestPagedRecovery(t *testing.T) {
	dir := t.TempDir()
	store, err := storage.Open(dir, storage.Options{NoSync: true})
	require.NoError(t, err)
	p := openPaged(t, store, defaultConfig())
	const n = 4000
	for i := range n {
		p.publish(t, fmt.Sprint(i), 0, true)
	}
	for i := range 10 {
		p.publish(t, fmt.Sprint("transient", i), 0, false)
	}
	d, _, ok := p.Get(false) // delivered, not acked
	require.True(t, ok)
	require.Equal(t, "0", string(d.Message.Body))
	require.NoError(t, store.Close())

	store, err = storage.Open(dir, storage.Options{NoSync: true})
	require.NoError(t, err)
	defer store.Close()
	p = openPaged(t, store, defaultConfig())
	got, err := p.Recover()
	require.NoError(t, err)
	assert.Equal(t, n, got)
	assert.Equal(t, n, p.Stats().Ready)
	assert.Greater(t, p.paged(), n/2)
	for i := range n {
		d, _, ok := p.Get(true)
		require.True(t, ok, "message %d", i)
		require.Equal(t, fmt.Sprint(i), string(d.Message.Body))
		require.True(t, d.Redelivered)
	}
	_, _, ok = p.Get(true)
	assert.False(t, ok, "the transient messages did not survive")
	entries, messages := p.stored(t)
	assert.Zero(t, entries)
	assert.Zero(t, messages)
}

func TestPagedPurgeAndDelete(t *testing.T) {
	const n = 5000
	p := newPagedQueue(t, t.TempDir(), defaultConfig())
	for i := range n {
		p.publish(t, fmt.Sprint(i), 0, true)
	}
	d, _, ok := p.Get(false)
	require.True(t, ok)
	assert.Equal(t, n-1, p.Purge())
	assert.Zero(t, p.Stats().Ready)
	require.Eventually(t, func() bool {
		entries, messages := p.stored(t)
		return entries == 1 && messages == 1
	}, 5*time.Second, 5*time.Millisecond, "only the unacked message is left on disk")

	// Publishing after the purge starts a fresh backlog.
	for i := range n {
		p.publish(t, fmt.Sprint("after", i), 0, true)
	}
	d2, _, ok := p.Get(true)
	require.True(t, ok)
	assert.Equal(t, "after0", string(d2.Message.Body))
	p.Ack([]Delivery{d})

	assert.Equal(t, n-1, p.Delete())
	require.Eventually(t, func() bool {
		queues, err := p.store.Queues()
		require.NoError(t, err)
		_, messages := p.stored(t)
		return len(queues) == 0 && messages == 0
	}, 5*time.Second, 5*time.Millisecond)
}

// Many publishers and consumers at once over a paged queue: everything
// arrives exactly once.
func TestPagedConcurrent(t *testing.T) {
	p := newPagedQueue(t, t.TempDir(), defaultConfig())
	const publishers, each = 4, 3000
	var wg sync.WaitGroup
	for w := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p.publish(t, fmt.Sprint(w, "-", i), 0, i%5 != 0)
			}
		}()
	}
	seen := make(map[string]bool)
	last := make(map[string]int)
	deadline := time.Now().Add(20 * time.Second)
	for len(seen) < publishers*each && time.Now().Before(deadline) {
		d, _, ok := p.Get(false)
		if !ok {
			time.Sleep(time.Millisecond)
			continue
		}
		body := string(d.Message.Body)
		require.False(t, seen[body], "duplicate %s", body)
		seen[body] = true
		var w, i int
		_, err := fmt.Sscanf(body, "%d-%d", &w, &i)
		require.NoError(t, err)
		if prev, ok := last[fmt.Sprint(w)]; ok {
			require.Greater(t, i, prev, "per-publisher order")
		}
		last[fmt.Sprint(w)] = i
		p.Ack([]Delivery{d})
	}
	wg.Wait()
	assert.Len(t, seen, publishers*each)
	entries, messages := p.stored(t)
	assert.Zero(t, entries)
	assert.Zero(t, messages)
}

// Many backlogged queues share one budget: while it is spent each keeps only
// a small window in memory, so together they stay near it.
func TestPagedManyQueuesShareBudget(t *testing.T) {
	store, err := storage.Open(t.TempDir(), storage.Options{NoSync: true})
	require.NoError(t, err)
	defer store.Close()
	budget := NewBudget(256 << 10)
	const queues, each = 40, 2000
	qs := make([]*pagedQueue, queues)
	for i := range qs {
		q := New(fmt.Sprint("q", i), Options{Store: store, StoreKey: fmt.Sprint("q", i), Budget: budget, Config: defaultConfig()})
		qs[i] = &pagedQueue{Queue: q, store: store, budget: budget, key: fmt.Sprint("q", i)}
	}
	for i := range each {
		for _, q := range qs {
			q.publish(t, fmt.Sprint(i), 0, false)
		}
	}
	perMessage := messageCost(&Message{Body: []byte("1999")})
	assert.Less(t, budget.Used(), 256<<10+int64(queues)*pageMin*perMessage, "about the budget, plus a small window per queue")
	for _, q := range qs {
		require.Equal(t, each, q.Stats().Ready)
		for i := range each {
			d, _, ok := q.Get(true)
			require.True(t, ok)
			require.Equal(t, fmt.Sprint(i), string(d.Message.Body))
		}
	}
	assert.Zero(t, budget.Used())
}
