package queue

import (
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/storage"
)

// Errors returned by queue operations; the AMQP layer maps them to reply codes.
var (
	// ErrExclusiveUse means an exclusive consumer holds the queue, or an
	// exclusive consumer was asked for while others exist.
	ErrExclusiveUse = errors.New("queue in exclusive use")
	// ErrDeleted means the queue was deleted while the caller held it.
	ErrDeleted = errors.New("queue deleted")
)

// PushResult says what became of a pushed message.
type PushResult uint8

// The outcomes of Push.
const (
	Accepted PushResult = iota
	// Refused: the queue is full and its overflow mode refuses publishes.
	Refused
	// Gone: the queue was deleted.
	Gone
)

// Options are a queue's declare-time properties.
type Options struct {
	Durable    bool
	Exclusive  bool
	AutoDelete bool
	Args       map[string]any
	// Owner is the connection that owns an exclusive queue.
	Owner  uint64
	Config Config
	Hooks  Hooks
	// Store keeps the persistent messages of a durable queue under StoreKey,
	// and the paged-out backlog of any queue; nil keeps nothing.
	Store    *storage.Store
	StoreKey string
	// Budget, shared by a server's queues, bounds the memory of durable
	// queues' backlogs; beyond it they stay on disk. nil: no paging.
	Budget *Budget
	Log    *slog.Logger
}

// Queue is one message queue. All methods are safe for concurrent use.
type Queue struct {
	// Name and the declare-time properties never change after New.
	Name       string
	Durable    bool
	Exclusive  bool
	AutoDelete bool
	Args       map[string]any
	// Owner is the connection that owns an exclusive queue, 0 otherwise.
	Owner uint64
	// config is the queue's behaviour: its arguments, merged with a policy,
	// which may change while the queue lives (SetConfig).
	config  atomic.Pointer[Config]
	hooks   Hooks
	journal *journal // nil unless durable with a store
	now     func() time.Time

	mu sync.Mutex // guards everything below
	// levels holds the ready messages, one seq-ordered deque per priority
	// level; nonEmpty has a bit per level that holds entries, so finding the
	// highest is a few word operations whatever the number of levels.
	levels     []ring
	nonEmpty   [4]uint64
	ready      int   // live ready messages (expired tombstones excluded)
	readyBytes int64 // their body sizes
	nextSeq    uint64
	deadlines  deadlineHeap
	timed      int // ready messages with a deadline; the heap may hold more, stale
	// pushClock is the current push's instant (unix ms) while it runs, 0
	// otherwise; expiry checks during the push use it.
	pushClock int64
	ttlTimer  *time.Timer
	ttlAt     int64 // when ttlTimer fires, unix ms; 0 when not armed

	consumers []consumerEntry // by priority, highest first; registration order within
	groups    []group         // runs of consumers with the same priority
	nextOrder uint64
	exclusive bool // an exclusive consumer holds the queue
	unacked   int
	deleted   bool
	// hadConsumer records that a consumer ever attached: auto-delete only
	// applies once the last of them has gone, as in RabbitMQ.
	hadConsumer bool
	lastUsed    time.Time
	expiryTimer *time.Timer
	// Totals since the queue was made, for rates in the management API.
	published, delivered, acked, deadLettered uint64

	// Paging (paging.go); tails is nil for queues that keep nothing on disk.
	budget  *Budget
	charged int64 // this queue's share of budget.used
	tails   []tail
	recent  []recentTail // tail messages maybe not yet on disk, in seq order
	// pruneQueued: an empty background batch will call pruneAfterCommit.
	pruneQueued atomic.Bool
	loading     bool
	loadDone    chan struct{} // closed when the running load ends
	gen         uint64        // bumped by purge and delete: loads started before are void
	purging     int           // purges still deleting paged-out entries; no load meanwhile
	// wrote: the queue has put entries in storage, so deleting it must drop them.
	wrote bool
	// recoveredUpTo: entries up to this seq were on disk at start, so they
	// are read back marked redelivered.
	recoveredUpTo uint64
}

// group is a run of consumers of one priority in Queue.consumers, with its
// round-robin cursor.
type group struct {
	priority   int
	start, end int
	next       int // offset of the next consumer to try within the run
}

type consumerEntry struct {
	c Consumer
	// noAck deliveries are settled when handed out.
	noAck    bool
	priority int
	order    uint64 // registration order, for single active consumer
}

// New makes an empty queue.
func New(name string, o Options) *Queue {
	if o.Config == (Config{}) {
		o.Config = Config{MessageTTL: -1, MaxLength: -1, MaxLengthBytes: -1, DeliveryLimit: -1}
	}
	q := &Queue{
		Name: name, Durable: o.Durable, Exclusive: o.Exclusive, AutoDelete: o.AutoDelete,
		Args: o.Args, Owner: o.Owner, hooks: o.Hooks, now: time.Now,
		levels: make([]ring, int(o.Config.MaxPriority)+1),
	}
	cfg := o.Config
	q.config.Store(&cfg)
	if o.Store != nil {
		log := o.Log
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		q.journal = &journal{store: o.Store, key: o.StoreKey, log: log, durable: o.Durable && !o.Exclusive}
		q.budget = o.Budget
		q.tails = make([]tail, len(q.levels))
	}
	q.lastUsed = q.now()
	if q.Config().Expires > 0 {
		q.expiryTimer = time.AfterFunc(q.Config().Expires, q.checkExpiry)
	}
	return q
}

// Config returns the queue's current configuration; callers must not
// change it.
func (q *Queue) Config() *Config { return q.config.Load() }

// SetConfig changes the queue's behaviour while it lives, as a policy change
// does in RabbitMQ. Its priority levels stay those of the declaration
// (x-max-priority is declare-time only); a lower length limit drops the
// oldest messages at once (dead-lettered as maxlen); messages already queued
// keep their deadlines.
func (q *Queue) SetConfig(c Config) {
	c.MaxPriority = q.Config().MaxPriority
	q.config.Store(&c)
	var dls []DeadLetter
	var b *storage.Batch
	q.mu.Lock()
	q.armExpiryLocked()
	if !q.deleted {
		q.dropHeadLocked(&b, &dls)
	}
	q.mu.Unlock()
	q.deadLetter(dls)
	q.submit(b)
}

// Push enqueues m, applying TTL and length limits, and dispatches it. With
// a batch, a stored message's entry is added to it and nothing is
// dispatched: the caller submits the batch and then calls Kick, so that no
// ack of the message can reach storage before its entry does.
func (q *Queue) Push(m *Message, b *storage.Batch) PushResult {
	var dls []DeadLetter
	var own *storage.Batch
	var release *Message
	q.mu.Lock()
	res := q.pushLocked(m, b, &own, &dls, &release)
	q.mu.Unlock()
	q.deadLetter(dls)
	q.submit(own)
	if release != nil {
		q.Release(release) // its own write is submitted now
	}
	return res
}

func (q *Queue) pushLocked(m *Message, b *storage.Batch, own **storage.Batch, dls *[]DeadLetter, selfRelease **Message) PushResult {
	if q.deleted {
		return Gone
	}
	c := q.Config()
	if c.Overflow != DropHead && q.fullLocked() {
		if c.Overflow == RejectPublishDLX {
			*dls = append(*dls, DeadLetter{Message: m, Reason: MaxLen})
		}
		return Refused
	}
	q.nextSeq++
	q.published++
	e := entry{msg: m, seq: q.nextSeq}
	ttl := int64(-1)
	if c.MessageTTL >= 0 {
		ttl = c.MessageTTL.Milliseconds()
	}
	if m.HasExpiration && (c.MessageTTL < 0 || m.Expiration < ttl) {
		ttl = m.Expiration
	}
	level := q.level(m)
	if ttl >= 0 {
		// The push's own dispatch judges expiry at this same instant, so
		// a millisecond tick in between cannot expire a TTL 0 message that
		// a ready consumer should get.
		q.pushClock = q.now().UnixMilli()
		defer func() { q.pushClock = 0 }()
		e.deadline = q.pushClock + ttl
	}
	if q.toTailLocked(level) {
		e.stored = true
		if b != nil && q.persists(m) {
			q.recordLocked(b, &e, level) // the caller submits b, then calls Release
		} else {
			// A message that is not stored here (transient) is written
			// too, to keep its place behind the tail; Push releases it
			// once its batch is submitted.
			if *own == nil {
				*own = new(storage.Batch)
			}
			e.msg = q.storeTransientLocked(*own, m)
			q.recordLocked(*own, &e, level)
			*selfRelease = e.msg
		}
		q.pushTailLocked(level, &e)
		q.dropHeadLocked(own, dls)
		return Accepted
	}
	deferDispatch := b != nil && q.persists(m)
	if deferDispatch {
		e.stored = true
		q.recordLocked(b, &e, level)
		own = &b // removals below belong with the entry's own batch
		e.pending = true
	}
	q.addLocked(level, e)
	if !deferDispatch {
		// A consumer that can take the message now gets it before the
		// length limit applies, as in RabbitMQ (x-max-length 0 still
		// delivers to a waiting consumer).
		q.dispatchLocked(own, dls)
		if ttl == 0 {
			// TTL 0: nobody could take it now, so it expires now.
			q.expireTailLocked(level, e.seq, own, dls)
		}
	}
	q.dropHeadLocked(own, dls)
	return Accepted
}

// dropHeadLocked applies a drop-head length limit: the oldest messages go,
// dead-lettered as maxlen. A head still on disk is dropped once read back.
func (q *Queue) dropHeadLocked(b **storage.Batch, dls *[]DeadLetter) {
	for q.Config().Overflow == DropHead && q.overLocked() {
		head, lvl := q.headLocked(b, dls)
		if head == nil {
			return
		}
		dropped := q.takeLocked(lvl)
		q.forget(b, dropped.stored, dropped.seq)
		*dls = append(*dls, DeadLetter{Message: dropped.msg, Reason: MaxLen})
	}
}

// level is the priority level a message goes to: above the maximum counts
// as the maximum, as in RabbitMQ.
func (q *Queue) level(m *Message) uint8 {
	return min(m.Priority, q.Config().MaxPriority)
}

// expireTailLocked expires the message just pushed if it is still waiting.
func (q *Queue) expireTailLocked(level uint8, seq uint64, b **storage.Batch, dls *[]DeadLetter) {
	r := &q.levels[level]
	if r.len() == 0 {
		return
	}
	e := r.at(r.len() - 1)
	if e.seq != seq || e.expired {
		return
	}
	q.forget(b, e.stored, e.seq)
	*dls = append(*dls, DeadLetter{Message: e.msg, Reason: Expired})
	q.ready--
	q.readyBytes -= int64(e.msg.Size())
	q.chargeLocked(e.msg, -1)
	e.expired, e.msg = true, nil
	q.timed--
	for r.len() > 0 && r.front().expired {
		q.popLocked(level)
	}
}

// fullLocked: no room for another message (reject-publish modes).
func (q *Queue) fullLocked() bool {
	c := q.Config()
	return (c.MaxLength >= 0 && int64(q.ready) >= c.MaxLength) ||
		(c.MaxLengthBytes >= 0 && q.readyBytes >= c.MaxLengthBytes)
}

// overLocked: above a limit (drop-head mode).
func (q *Queue) overLocked() bool {
	c := q.Config()
	return (c.MaxLength >= 0 && int64(q.ready) > c.MaxLength) ||
		(c.MaxLengthBytes >= 0 && q.readyBytes > c.MaxLengthBytes)
}

// addLocked puts e in its level at its seq position, and its deadline, if
// any, in the heap.
func (q *Queue) addLocked(level uint8, e entry) {
	r := &q.levels[level]
	if r.len() == 0 || r.at(r.len()-1).seq < e.seq {
		r.push(e)
	} else {
		r.insert(e)
	}
	q.nonEmpty[level>>6] |= 1 << (level & 63)
	q.ready++
	q.readyBytes += int64(e.msg.Size())
	q.chargeLocked(e.msg, 1)
	if e.deadline != 0 {
		q.timed++
		q.deadlines.push(deadline{at: e.deadline, seq: e.seq, level: level})
		q.compactDeadlinesLocked()
		q.armTTLLocked()
	}
}

// compactDeadlinesLocked rebuilds the deadline heap when most of its items
// belong to messages already gone (delivered, acked, dropped): they would
// otherwise stay until their deadline, and a busy queue with a long TTL would
// hold millions of them. The rebuild is linear and runs only after the heap
// has doubled past the live count, so it is cheap amortised.
func (q *Queue) compactDeadlinesLocked() {
	if len(q.deadlines) <= 2*q.timed+1024 {
		return
	}
	h := q.deadlines[:0]
	for level := range q.levels {
		r := &q.levels[level]
		for i := 0; i < r.len(); i++ {
			if e := r.at(i); !e.expired && e.deadline != 0 {
				h = append(h, deadline{at: e.deadline, seq: e.seq, level: uint8(level)})
			}
		}
	}
	clear(h[len(h):cap(h)])
	// Heapify bottom-up.
	q.deadlines = h
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
	q.ttlAt = 0 // the timer may point at a deadline no longer in the heap
}

// highestLocked returns the highest level holding entries, or -1.
func (q *Queue) highestLocked() int {
	for w := len(q.nonEmpty) - 1; w >= 0; w-- {
		if x := q.nonEmpty[w]; x != 0 {
			return w*64 + 63 - bits.LeadingZeros64(x)
		}
	}
	return -1
}

// headLocked returns the next message to deliver and its level, expiring
// what is due on the way; nil when there is none.
func (q *Queue) headLocked(b **storage.Batch, dls *[]DeadLetter) (*entry, uint8) {
	var now int64
	for {
		l := q.highestLocked()
		if l < 0 {
			return nil, 0
		}
		level := uint8(l)
		r := &q.levels[level]
		if r.len() == 0 {
			// The level's next messages are on disk: wait for them rather
			// than serve a lower priority first.
			q.maybeLoadLocked()
			return nil, 0
		}
		e := r.front()
		if e.expired {
			q.popLocked(level)
			continue
		}
		if e.pending {
			return nil, 0 // not yet on its way to disk: wait for Release
		}
		if e.deadline != 0 {
			if now == 0 {
				now = q.pushClock
			}
			if now == 0 {
				now = q.now().UnixMilli()
			}
			// Strictly past: a TTL of 0 still lets a consumer that is ready
			// right now take the message, as RabbitMQ does.
			if e.deadline < now {
				expired := q.takeLocked(level)
				q.forget(b, expired.stored, expired.seq)
				*dls = append(*dls, DeadLetter{Message: expired.msg, Reason: Expired})
				continue
			}
		}
		return e, level
	}
}

// headPendingLocked reports whether the next message is waiting for its
// write to be submitted (see Release).
func (q *Queue) headPendingLocked() bool {
	l := q.highestLocked()
	if l < 0 {
		return false
	}
	r := &q.levels[l]
	return r.len() > 0 && r.front().pending
}

// popLocked removes the head of a level, keeping the non-empty bits right.
func (q *Queue) popLocked(level uint8) entry {
	r := &q.levels[level]
	e := r.popFront()
	if q.tails != nil && q.tails[level].count > 0 {
		if r.len() < q.lowWater() {
			q.maybeLoadLocked()
		}
	} else if r.len() == 0 {
		q.nonEmpty[level>>6] &^= 1 << (level & 63)
	}
	return e
}

// takeLocked removes a live head message from the ready count.
func (q *Queue) takeLocked(level uint8) entry {
	e := q.popLocked(level)
	q.ready--
	q.readyBytes -= int64(e.msg.Size())
	q.chargeLocked(e.msg, -1)
	if e.deadline != 0 {
		q.timed--
	}
	return e
}

// dispatchLocked hands ready messages to consumers: the highest consumer
// priority first, round-robin within a priority, skipping full consumers,
// until the queue is empty or nobody can take more.
func (q *Queue) dispatchLocked(b **storage.Batch, dls *[]DeadLetter) {
	for len(q.consumers) > 0 {
		e, level := q.headLocked(b, dls)
		if e == nil || !q.offerLocked(e, level, b) {
			return
		}
	}
}

func (q *Queue) offerLocked(e *entry, level uint8, b **storage.Batch) bool {
	d := Delivery{Message: e.msg, Redelivered: e.redelivered, DeliveryCount: e.deliveries, seq: e.seq, deadline: e.deadline, level: level, stored: e.stored}
	if q.Config().SingleActiveConsumer {
		active := 0
		for i := range q.consumers {
			if q.consumers[i].order < q.consumers[active].order {
				active = i
			}
		}
		return q.tryLocked(active, level, d, b)
	}
	for gi := range q.groups {
		g := &q.groups[gi]
		n := g.end - g.start
		for i := 0; i < n; i++ {
			off := (g.next + i) % n
			if q.tryLocked(g.start+off, level, d, b) {
				g.next = (off + 1) % n
				return true
			}
		}
	}
	return false
}

// regroupLocked rebuilds the priority runs after consumers changed; a run
// keeps its cursor, shifted by removed, the offset of a consumer that left
// it (or -1).
func (q *Queue) regroupLocked(changedPrio, removed int) {
	old := q.groups
	q.groups = q.groups[:0:0]
	for start := 0; start < len(q.consumers); {
		prio := q.consumers[start].priority
		end := start
		for end < len(q.consumers) && q.consumers[end].priority == prio {
			end++
		}
		g := group{priority: prio, start: start, end: end}
		for _, o := range old {
			if o.priority == prio {
				g.next = o.next
				if prio == changedPrio && removed >= 0 && removed < g.next {
					g.next--
				}
			}
		}
		if n := end - start; g.next >= n {
			g.next = 0
		}
		q.groups = append(q.groups, g)
		start = end
	}
}

func (q *Queue) tryLocked(idx int, level uint8, d Delivery, b **storage.Batch) bool {
	ce := &q.consumers[idx]
	if !ce.c.Deliver(q, d) {
		return false
	}
	q.takeLocked(level)
	q.delivered++
	if !ce.noAck {
		q.unacked++
	} else {
		q.acked++
		q.forget(b, d.stored, d.seq) // settled as it leaves
	}
	return true
}

// Get takes the next message for basic.get and returns it with the number of
// messages left. With noAck the message is settled at once; otherwise it
// counts as unacked until Ack, Reject or Requeue.
func (q *Queue) Get(noAck bool) (d Delivery, remaining int, ok bool) {
	var dls []DeadLetter
	var b *storage.Batch
	q.mu.Lock()
	// The next message may be on disk, or its write not yet submitted:
	// wait for it to be read back or released (that takes milliseconds;
	// the bound keeps a failing disk from hanging the channel).
	for tries := 0; !q.deleted && tries < 100; tries++ {
		if e, _ := q.headLocked(&b, &dls); e != nil {
			break
		}
		wait, ok := q.waitLoadLocked()
		if !ok && !q.headPendingLocked() {
			break
		}
		q.mu.Unlock()
		if wait != nil {
			<-wait
		} else {
			time.Sleep(10 * time.Millisecond) // a purge or a pending write is in the way
		}
		q.mu.Lock()
	}
	if !q.deleted {
		if q.Config().Expires > 0 {
			q.lastUsed = q.now()
		}
		if e, level := q.headLocked(&b, &dls); e != nil {
			d = Delivery{Message: e.msg, Redelivered: e.redelivered, DeliveryCount: e.deliveries, seq: e.seq, deadline: e.deadline, level: level, stored: e.stored}
			q.takeLocked(level)
			q.delivered++
			if !noAck {
				q.unacked++
			} else {
				q.acked++
				q.forget(&b, d.stored, d.seq)
			}
			ok = true
		}
	}
	remaining = q.ready
	q.mu.Unlock()
	q.deadLetter(dls)
	q.submit(b)
	return d, remaining, ok
}

// AddConsumer attaches c with a consumer priority (x-priority). It does not
// dispatch: the caller kicks the queue once the client has been told about
// the consumer, so that no delivery overtakes the consume-ok.
func (q *Queue) AddConsumer(c Consumer, exclusive, noAck bool, priority int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.deleted {
		return ErrDeleted
	}
	if q.exclusive || (exclusive && len(q.consumers) > 0) {
		return ErrExclusiveUse
	}
	q.nextOrder++
	ce := consumerEntry{c: c, noAck: noAck, priority: priority, order: q.nextOrder}
	i := sort.Search(len(q.consumers), func(i int) bool { return q.consumers[i].priority < priority })
	q.consumers = append(q.consumers, consumerEntry{})
	copy(q.consumers[i+1:], q.consumers[i:])
	q.consumers[i] = ce
	q.regroupLocked(priority, -1)
	q.exclusive = exclusive
	q.hadConsumer = true
	q.lastUsed = q.now()
	return nil
}

// RemoveConsumer detaches c and lets the others take what is waiting. With
// single active consumer the next in line becomes active but is not handed
// the waiting messages yet, as in RabbitMQ 3.10 (basic.cancel does not run
// the queue): they go to it at the next requeue, consumer, publish or Kick.
// It reports whether the queue is an auto-delete queue that just lost its
// last consumer.
func (q *Queue) RemoveConsumer(c Consumer) (autoDelete bool) {
	var dls []DeadLetter
	var b *storage.Batch
	q.mu.Lock()
	found := false
	for i := range q.consumers {
		if q.consumers[i].c == c {
			// Keep the round-robin cursor on the same next consumer.
			prio := q.consumers[i].priority
			start := sort.Search(len(q.consumers), func(j int) bool { return q.consumers[j].priority <= prio })
			q.consumers = append(q.consumers[:i], q.consumers[i+1:]...)
			q.regroupLocked(prio, i-start)
			q.exclusive = false
			found = true
			break
		}
	}
	if found && len(q.consumers) == 0 {
		q.lastUsed = q.now()
		q.armExpiryLocked()
	}
	autoDelete = found && q.AutoDelete && len(q.consumers) == 0 && !q.deleted
	if found && !q.deleted && !q.Config().SingleActiveConsumer {
		q.dispatchLocked(&b, &dls)
	}
	q.mu.Unlock()
	q.deadLetter(dls)
	q.submit(b)
	return autoDelete
}

// Release makes a message pushed with a batch deliverable, once the batch is
// submitted to storage, and dispatches it.
func (q *Queue) Release(m *Message) {
	var dls []DeadLetter
	var b *storage.Batch
	q.mu.Lock()
	q.releaseLocked(m, &b, &dls)
	q.mu.Unlock()
	q.deadLetter(dls)
	q.submit(b)
}

func (q *Queue) releaseLocked(m *Message, b **storage.Batch, dls *[]DeadLetter) {
	if len(q.recent) > 0 && q.releaseTailLocked(m) {
		if !q.deleted {
			q.dispatchLocked(b, dls)
			q.dropHeadLocked(b, dls)
		}
		return
	}
	if q.deleted {
		return
	}
	// It was pushed moments ago: look from the tail of its level.
	level := q.level(m)
	r := &q.levels[level]
	for i := r.len() - 1; i >= 0; i-- {
		e := r.at(i)
		if e.msg == m && e.pending {
			e.pending = false
			if e.deadline != 0 {
				q.deadlines.push(deadline{at: e.deadline, seq: e.seq, level: level})
				q.armTTLLocked()
			}
			break
		}
	}
	// A waiting consumer gets it first; then a drop-head length limit
	// applies, which could not while the message was pending (x-max-length
	// 0 still delivers to a ready consumer, as in RabbitMQ).
	q.dispatchLocked(b, dls)
	q.dropHeadLocked(b, dls)
}

// Kick retries dispatch, for when a consumer regained capacity (an ack, a
// drained socket buffer, a new consumer ready).
func (q *Queue) Kick() {
	var dls []DeadLetter
	var b *storage.Batch
	q.mu.Lock()
	if !q.deleted {
		q.dispatchLocked(&b, &dls)
	}
	q.mu.Unlock()
	q.deadLetter(dls)
	q.submit(b)
}

// Ack settles deliveries that consumers acknowledged.
func (q *Queue) Ack(ds []Delivery) {
	var b *storage.Batch
	q.mu.Lock()
	// On a deleted queue there is nothing to settle: its entries (and their
	// references) went with it.
	if !q.deleted {
		q.unacked -= len(ds)
		q.acked += uint64(len(ds))
		for _, d := range ds {
			q.forget(&b, d.stored, d.seq)
		}
	}
	q.mu.Unlock()
	q.submit(b)
}

// Reject settles deliveries that consumers refused without requeue: they are
// dead-lettered with reason rejected, or dropped without a dead-letter exchange.
func (q *Queue) Reject(ds []Delivery) {
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return
	}
	q.unacked -= len(ds)
	var b *storage.Batch
	dls := make([]DeadLetter, len(ds))
	for i, d := range ds {
		q.forget(&b, d.stored, d.seq)
		dls[i] = DeadLetter{Message: d.Message, Reason: Rejected}
	}
	q.mu.Unlock()
	// Dead letters are stored at their new home before the old entries go,
	// so a crash in between duplicates rather than loses.
	q.deadLetter(dls)
	q.submit(b)
}

// Requeue puts unacknowledged deliveries back at their original positions,
// marked redelivered, and dispatches them again. A message returned more
// often than the delivery limit allows is dead-lettered instead.
func (q *Queue) Requeue(ds []Delivery) {
	var dls []DeadLetter
	var b *storage.Batch
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return
	}
	q.unacked -= len(ds)
	for _, d := range ds {
		e := entry{msg: d.Message, seq: d.seq, deadline: d.deadline, deliveries: d.DeliveryCount + 1, redelivered: true, stored: d.stored}
		if limit := q.Config().DeliveryLimit; limit >= 0 && int64(e.deliveries) > limit {
			q.forget(&b, d.stored, d.seq)
			dls = append(dls, DeadLetter{Message: d.Message, Reason: DeliveryLimit})
			continue
		}
		if e.stored {
			// Keep the delivery count across a restart, for the delivery limit.
			if b == nil {
				b = new(storage.Batch)
			}
			q.recordLocked(b, &e, d.level)
		}
		q.addLocked(d.level, e)
	}
	q.dispatchLocked(&b, &dls)
	q.mu.Unlock()
	q.deadLetter(dls)
	q.submit(b)
}

// Purge drops every ready message and returns how many there were. Unacked
// messages are not touched, as in RabbitMQ. A paged-out backlog is deleted
// from disk before Purge returns, in chunks, without the queue's lock.
func (q *Queue) Purge() int {
	q.mu.Lock()
	// A message still pending (its write not yet submitted) arrived as the
	// purge ran; it stays, so that no delete of its entry can reach the disk
	// before the entry itself.
	type kept struct {
		level uint8
		e     entry
	}
	var pending []kept
	var seqs []uint64
	for level := range q.levels {
		r := &q.levels[level]
		for i := 0; i < r.len(); i++ {
			switch e := r.at(i); {
			case e.pending:
				pending = append(pending, kept{uint8(level), *e})
			case !e.expired && e.stored:
				seqs = append(seqs, e.seq)
			}
		}
	}
	keep := 0 // tail messages not yet submitted stay, like pending ones in memory
	for _, r := range q.recent {
		if r.sub == 0 {
			keep++
		}
	}
	n := q.ready - len(pending) - keep
	var job *tailPurge
	if q.pagedLocked() > keep {
		job = q.tailPurgeLocked()
	}
	q.clearLocked()
	for _, k := range pending {
		q.addLocked(k.level, k.e)
	}
	q.mu.Unlock()
	q.deleteEntries(seqs)
	if job != nil {
		// The paged-out part is deleted before purge-ok: a purge that a
		// restart could undo would not be one. The queue serves meanwhile.
		q.purgeTail(job)
	}
	return n
}

// tailPurge is a purge's work on disk: every entry of a level's tail from
// its from seq up to upTo, except the pending ones, which stay queued.
type tailPurge struct {
	from []uint64 // by level; MaxUint64 for levels without a tail
	upTo uint64
	keep map[uint64]bool
}

// tailPurgeLocked empties the tails except for their pending messages and
// returns the deletes to do on disk. Loads wait until they are done.
func (q *Queue) tailPurgeLocked() *tailPurge {
	job := &tailPurge{from: make([]uint64, len(q.tails)), upTo: q.nextSeq, keep: make(map[uint64]bool)}
	for l := range q.tails {
		job.from[l] = ^uint64(0)
		if q.tails[l].count > 0 {
			job.from[l] = q.tails[l].from
		}
	}
	for _, r := range q.recent {
		if r.sub == 0 {
			job.keep[r.seq] = true
		}
	}
	q.purging++
	q.gen++
	return job
}

// purgeTail deletes a purge's paged-out entries, in chunks.
func (q *Queue) purgeTail(job *tailPurge) {
	store := q.journal.store
	err := store.Flush()
	start := slices.Min(job.from)
	for err == nil && start <= job.upTo {
		var b storage.Batch
		next := job.upTo + 1
		var derr error
		err = store.Scan(q.journal.key, start, func(seq uint64, ent []byte, _ func(uint64) []byte) bool {
			if seq > job.upTo {
				return false
			}
			if b.Len() >= chunkOps {
				next = seq
				return false
			}
			rec, ok := decodeEntry(ent)
			if !ok {
				derr = fmt.Errorf("entry %d: %w", seq, errBadRecord)
				return false
			}
			level := min(rec.level, q.Config().MaxPriority)
			if seq >= job.from[level] && !job.keep[seq] {
				b.DeleteEntry(q.journal.key, seq)
			}
			return true
		})
		if err == nil {
			err = derr
		}
		if err == nil && b.Len() > 0 {
			err = store.Commit(&b)
		}
		start = next
	}
	if err != nil {
		q.journal.log.Error("purging a queue's paged-out messages failed", "queue", q.Name, "err", err)
	}
	q.mu.Lock()
	q.purging--
	q.maybeLoadLocked()
	q.mu.Unlock()
}

// chunkOps bounds one batch of a purge, so that dropping a million stored
// messages is many modest transactions, not one huge one.
const chunkOps = 10000

// deleteEntries deletes entries in batches of chunkOps.
func (q *Queue) deleteEntries(seqs []uint64) {
	for len(seqs) > 0 {
		b := new(storage.Batch)
		for b.Len() < chunkOps && len(seqs) > 0 {
			b.DeleteEntry(q.journal.key, seqs[0])
			seqs = seqs[1:]
		}
		q.submit(b)
	}
}

// clearLocked empties the queue's ready messages, in memory and (counts
// only) on disk, except for tail messages still pending.
func (q *Queue) clearLocked() {
	for i := range q.levels {
		q.levels[i] = ring{}
	}
	q.nonEmpty = [4]uint64{}
	q.ready, q.readyBytes = 0, 0
	q.deadlines, q.timed = nil, 0
	if q.tails == nil {
		return
	}
	if q.budget != nil {
		q.budget.used.Add(-q.charged)
	}
	q.charged = 0
	for l := range q.tails {
		q.tails[l].count, q.tails[l].bytes = 0, 0
	}
	// Tail messages not yet submitted stay; submitted ones go with the
	// rest (a purge deletes them on disk after a flush).
	kept := q.recent[:0]
	for _, r := range q.recent {
		if r.sub != 0 {
			continue
		}
		kept = append(kept, r)
		q.tailAddLocked(r.level, r.seq, int64(r.msg.Size()))
	}
	clear(q.recent[len(kept):])
	q.recent = kept
}

// Touch records a use of the queue (a redeclare), which resets x-expires.
func (q *Queue) Touch() {
	q.mu.Lock()
	q.lastUsed = q.now()
	q.mu.Unlock()
}

// Delete marks the queue deleted, tells its consumers and returns the number
// of ready messages it held. Later calls return 0. The queue's stored
// entries, and with them its references to stored messages, are deleted in
// the background, in chunks; its storage key is never reused.
func (q *Queue) Delete() int {
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return 0
	}
	q.deleted = true
	q.gen++
	n := q.ready
	// Pending messages, in memory or in a tail, delete their entries again
	// when released, in case their write lands after the drop.
	for level := range q.levels {
		r := &q.levels[level]
		for i := 0; i < r.len(); i++ {
			if e := r.at(i); e.pending {
				q.recent = append(q.recent, recentTail{seq: e.seq, msg: e.msg, level: uint8(level)})
			}
		}
	}
	defer q.mu.Unlock()
	q.clearLocked()
	if q.journal != nil && q.wrote {
		go func() {
			if err := q.journal.store.DropEntries(q.journal.key); err != nil {
				q.journal.log.Error("deleting a deleted queue's entries failed", "queue", q.Name, "err", err)
			}
		}()
	}
	if q.ttlTimer != nil {
		q.ttlTimer.Stop()
	}
	if q.expiryTimer != nil {
		q.expiryTimer.Stop()
	}
	for _, ce := range q.consumers {
		ce.c.Cancel(q)
	}
	q.consumers, q.groups = nil, nil
	q.unacked = 0
	return n
}

// Stats is a snapshot of a queue's counters.
type Stats struct {
	Ready      int
	ReadyBytes int64
	Unacked    int
	Consumers  int
	// Totals since the queue was made: messages accepted, handed to
	// consumers or basic.get, acknowledged (no-ack deliveries count as
	// acknowledged), and dead-lettered.
	Published, Delivered, Acked, DeadLettered uint64
}

// Stats returns the queue's counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	return Stats{
		Ready: q.ready, ReadyBytes: q.readyBytes, Unacked: q.unacked, Consumers: len(q.consumers),
		Published: q.published, Delivered: q.delivered, Acked: q.acked, DeadLettered: q.deadLettered,
	}
}

// InUse reports whether the queue has consumers, for delete if-unused.
func (q *Queue) InUse() bool { return q.Stats().Consumers > 0 }

// armTTLLocked makes the TTL timer fire at the earliest deadline.
func (q *Queue) armTTLLocked() {
	if len(q.deadlines) == 0 {
		return
	}
	at := q.deadlines[0].at
	if q.ttlAt != 0 && q.ttlAt <= at {
		return
	}
	q.ttlAt = at
	d := time.Duration(at-q.now().UnixMilli()) * time.Millisecond
	if q.ttlTimer == nil {
		q.ttlTimer = time.AfterFunc(d, q.expireDue)
	} else {
		q.ttlTimer.Reset(d)
	}
}

// expireDue runs on the TTL timer: every message whose deadline passed is
// expired where it sits, found by its seq in its level.
func (q *Queue) expireDue() {
	var dls []DeadLetter
	var b *storage.Batch
	q.mu.Lock()
	q.ttlAt = 0
	if q.deleted {
		q.mu.Unlock()
		return
	}
	now := q.now().UnixMilli()
	for len(q.deadlines) > 0 && q.deadlines[0].at <= now {
		d := q.deadlines.pop()
		r := &q.levels[d.level]
		i := r.search(d.seq)
		if i == r.len() {
			continue
		}
		e := r.at(i)
		if e.seq != d.seq || e.expired {
			continue // delivered meanwhile, or already expired
		}
		if e.pending {
			continue // Release puts its deadline back
		}
		q.forget(&b, e.stored, e.seq)
		dls = append(dls, DeadLetter{Message: e.msg, Reason: Expired})
		q.ready--
		q.readyBytes -= int64(e.msg.Size())
		q.chargeLocked(e.msg, -1)
		e.expired, e.msg = true, nil
		q.timed--
		if i == 0 {
			// Drop tombstones at the head now rather than on the next read.
			for r.len() > 0 && r.front().expired {
				q.popLocked(d.level)
			}
		}
	}
	q.armTTLLocked()
	q.mu.Unlock()
	q.deadLetter(dls)
	q.submit(b)
}

// armExpiryLocked (re)starts the x-expires timer from the last use.
func (q *Queue) armExpiryLocked() {
	if q.Config().Expires <= 0 || q.deleted {
		return
	}
	d := q.Config().Expires - q.now().Sub(q.lastUsed)
	if q.expiryTimer == nil {
		q.expiryTimer = time.AfterFunc(d, q.checkExpiry)
	} else {
		q.expiryTimer.Reset(d)
	}
}

// checkExpiry runs on the x-expires timer: an unused queue is deleted; a
// used one waits again.
func (q *Queue) checkExpiry() {
	q.mu.Lock()
	if q.deleted || len(q.consumers) > 0 || q.Config().Expires <= 0 {
		q.mu.Unlock()
		return
	}
	if q.now().Sub(q.lastUsed) < q.Config().Expires {
		q.armExpiryLocked()
		q.mu.Unlock()
		return
	}
	q.mu.Unlock()
	if q.hooks.Expired != nil {
		q.hooks.Expired(q)
	}
}

// deadLetter hands dead letters to the virtual host, or drops them when the
// queue has no dead-letter exchange.
func (q *Queue) deadLetter(dls []DeadLetter) {
	if len(dls) == 0 || !q.Config().HasDeadLetter || q.hooks.DeadLetter == nil {
		return
	}
	q.mu.Lock()
	q.deadLettered += uint64(len(dls))
	q.mu.Unlock()
	q.hooks.DeadLetter(q, dls)
}
