package queue

import (
	"errors"
	"log/slog"
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
	// Duplicate: a deduplicating queue already holds a message with the
	// same x-deduplication-header; the message is dropped (refused).
	Duplicate
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
	// Group runs the queue's background goroutines (loading a paged
	// backlog, dropping a deleted queue's entries) so that the broker can
	// wait for them before it closes the store; nil runs plain goroutines.
	Group Group
	Log   *slog.Logger
}

// Group runs background goroutines that the broker waits for at shutdown.
// Go reports false, and runs nothing, once the broker is stopping.
type Group interface {
	Go(f func()) bool
}

// goroutines is the Group of a queue given none.
type goroutines struct{}

func (goroutines) Go(f func()) bool { go f(); return true }

// Queue is one message queue. All methods are safe for concurrent use.
type Queue struct {
	// Decl never changes after New.
	Decl
	// config is the queue's behaviour: its arguments, merged with a policy,
	// which may change while the queue lives (SetConfig).
	config  atomic.Pointer[Config]
	hooks   Hooks
	entries *entryStore // nil for queues that keep nothing in storage
	now     func() time.Time
	group   Group // set by New, never nil, never changes

	// mu guards everything below. Methods named ...Locked expect it held;
	// the values below it (readySet, pager) have no lock of their own.
	mu    sync.Mutex
	ready readySet
	// parked: with single active consumer, the active one was cancelled
	// and its successor is not handed the waiting messages until a
	// publish, requeue, new consumer or Handover, as in RabbitMQ 3.10.
	// Kick, which only says a consumer has room again, leaves it parked.
	parked bool
	// pending are the stored messages pushed with the caller's batch whose
	// write is not submitted yet, in seq order: they count as ready (in
	// memory or paged) but are not handed out until Release, so no ack can
	// overtake their entry on the way to disk.
	pending []pendingWrite
	page    pager // paging.go
	nextSeq uint64
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
	// wrote: the queue has put entries in storage, so deleting it must
	// drop them.
	wrote bool
	// hadConsumer records that a consumer ever attached: auto-delete only
	// applies once the last of them has gone, as in RabbitMQ.
	hadConsumer bool
	lastUsed    time.Time
	expiryTimer *time.Timer
	// Totals since the queue was made, for rates in the management API.
	published, delivered, acked, deadLettered uint64
	// check is what the invariants build tracks to check the counters
	// against (invariants_on.go); empty otherwise.
	check checkState
	// dedup counts the messages in the queue (ready, pending or unacked)
	// per x-deduplication-header value; nil unless Config.Deduplicate. A
	// value enters in pushLocked and Recover and leaves in forget, Purge
	// and Delete.
	dedup map[string]int
}

// pendingWrite is a message in Queue.pending.
type pendingWrite struct {
	msg      *Message
	seq      uint64
	deadline int64
	level    uint8
	paged    bool // in its level's paged part, not in memory
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
		Decl:  Decl{Name: name, Durable: o.Durable, Exclusive: o.Exclusive, AutoDelete: o.AutoDelete, Args: o.Args, Owner: o.Owner},
		hooks: o.Hooks, now: time.Now, group: o.Group,
	}
	if q.group == nil {
		q.group = goroutines{}
	}
	cfg := o.Config
	q.config.Store(&cfg)
	if o.Store != nil {
		log := o.Log
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		q.entries = &entryStore{store: o.Store, key: o.StoreKey, log: log, durable: o.Durable && !o.Exclusive}
		q.ready = newReadySet(int(o.Config.MaxPriority)+1, true, o.Budget)
	} else {
		q.ready = newReadySet(int(o.Config.MaxPriority)+1, false, nil)
	}
	if cfg.Deduplicate {
		q.dedup = make(map[string]int)
		// Every message stays in memory, so that each one's header value
		// is at hand when it leaves (a purge of a paged part does not read
		// the messages back).
		q.ready.paged = nil
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
	c.Deduplicate = q.Config().Deduplicate // declare-time only, as in the plugin
	q.config.Store(&c)
	var fx effects
	q.mu.Lock()
	q.armExpiryLocked()
	if !q.deleted {
		q.dropHeadLocked(&fx)
	}
	q.unlock(&fx)
}

// Push enqueues m, applying TTL and length limits, and dispatches it. With
// a batch, a stored message's entry is added to it and nothing is
// dispatched: the caller submits the batch and then calls Release, so that
// no ack of the message can reach storage before its entry does.
func (q *Queue) Push(m *Message, b *storage.Batch) PushResult {
	var fx effects
	q.mu.Lock()
	res := q.pushLocked(m, b, &fx)
	q.unlock(&fx)
	return res
}

func (q *Queue) pushLocked(m *Message, b *storage.Batch, fx *effects) PushResult {
	if q.deleted {
		return Gone
	}
	q.parked = false
	c := q.Config()
	if c.Overflow != DropHead && q.fullLocked() {
		if c.Overflow == RejectPublishDLX {
			fx.deadLetter(m, MaxLen)
		}
		return Refused
	}
	if q.dedup != nil && m.DedupKey != "" {
		if q.dedup[m.DedupKey] > 0 {
			return Duplicate
		}
		q.dedup[m.DedupKey]++
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
	if q.pagesLocked(level) {
		e.stored = true
		if b != nil && q.persists(m) {
			q.recordLocked(b, &e, level) // the caller submits b, then calls Release
		} else {
			// A message that is not stored here (transient) is written
			// too, to keep its place among the paged ones; it is released
			// once its batch is submitted.
			own := fx.writes()
			e.msg = q.storeTransient(own, m)
			q.recordLocked(own, &e, level)
			fx.release = e.msg
		}
		q.pushPagedLocked(level, &e)
		q.dropHeadLocked(fx)
		return Accepted
	}
	if b != nil && q.persists(m) {
		e.stored = true
		q.recordLocked(b, &e, level)
		q.pending = append(q.pending, pendingWrite{msg: m, seq: e.seq, deadline: e.deadline, level: level})
		q.ready.add(level, e) // its deadline is scheduled by Release
		// Removals below belong with the entry's own batch.
		fx.batch, fx.callers = b, true
		q.dropHeadLocked(fx)
		return Accepted
	}
	q.addLocked(level, e)
	// A consumer that can take the message now gets it before the length
	// limit applies, as in RabbitMQ (x-max-length 0 still delivers to a
	// waiting consumer).
	q.dispatchLocked(fx)
	if ttl == 0 {
		// TTL 0: nobody could take it now, so it expires now.
		q.expireLastLocked(level, e.seq, fx)
	}
	q.dropHeadLocked(fx)
	return Accepted
}

// dropHeadLocked applies a drop-head length limit: the oldest messages go,
// dead-lettered as maxlen. A paged head is dropped once read back.
func (q *Queue) dropHeadLocked(fx *effects) {
	for q.Config().Overflow == DropHead && q.overLocked() {
		head, lvl := q.headLocked(fx)
		if head == nil {
			return
		}
		dropped := q.takeLocked(lvl)
		q.forget(fx, dropped.msg, dropped.stored, dropped.seq)
		fx.deadLetter(dropped.msg, MaxLen)
	}
}

// level is the priority level a message goes to: above the maximum counts
// as the maximum, as in RabbitMQ.
func (q *Queue) level(m *Message) uint8 {
	return min(m.Priority, q.Config().MaxPriority)
}

// expireLastLocked expires the message just pushed, the last in its
// level's memory, if it is still waiting.
func (q *Queue) expireLastLocked(level uint8, seq uint64, fx *effects) {
	r := &q.ready.levels[level]
	if r.len() == 0 {
		return
	}
	if e := r.at(r.len() - 1); e.seq != seq || e.expired {
		return
	}
	gone := q.ready.expire(level, r.len()-1)
	q.forget(fx, gone.msg, gone.stored, gone.seq)
	fx.deadLetter(gone.msg, Expired)
	q.refillLocked(level)
}

// fullLocked: no room for another message (reject-publish modes).
func (q *Queue) fullLocked() bool {
	c := q.Config()
	return (c.MaxLength >= 0 && int64(q.ready.count) >= c.MaxLength) ||
		(c.MaxLengthBytes >= 0 && q.ready.bytes >= c.MaxLengthBytes)
}

// overLocked: above a limit (drop-head mode).
func (q *Queue) overLocked() bool {
	c := q.Config()
	return (c.MaxLength >= 0 && int64(q.ready.count) > c.MaxLength) ||
		(c.MaxLengthBytes >= 0 && q.ready.bytes > c.MaxLengthBytes)
}

// addLocked puts a live message that is not pending in memory, and its
// deadline, if any, in the heap.
func (q *Queue) addLocked(level uint8, e entry) {
	q.ready.add(level, e)
	if e.deadline != 0 {
		q.scheduleLocked(level, e.seq, e.deadline)
	}
}

// scheduleLocked puts a message's deadline in the heap and arms the timer.
func (q *Queue) scheduleLocked(level uint8, seq uint64, at int64) {
	if q.ready.schedule(deadline{at: at, seq: seq, level: level}) {
		q.ttlAt = 0 // the timer may point at a deadline no longer in the heap
	}
	q.armTTLLocked()
}

// pendingLocked reports whether the message with seq is pending.
func (q *Queue) pendingLocked(seq uint64) bool {
	for i := range q.pending {
		if q.pending[i].seq == seq {
			return true
		}
	}
	return false
}

// firstPagedPendingLocked returns the index in q.pending of the first
// paged message, or -1.
func (q *Queue) firstPagedPendingLocked() int {
	for i := range q.pending {
		if q.pending[i].paged {
			return i
		}
	}
	return -1
}

// headLocked returns the next message to deliver and its level, expiring
// what is due on the way; nil when there is none.
func (q *Queue) headLocked(fx *effects) (*entry, uint8) {
	var now int64
	for {
		l := q.ready.highest()
		if l < 0 {
			return nil, 0
		}
		level := uint8(l)
		r := &q.ready.levels[level]
		if r.len() == 0 {
			// The level's next messages are paged: wait for them rather
			// than serve a lower priority first.
			q.maybeLoadLocked()
			return nil, 0
		}
		e := r.front()
		if e.expired {
			q.takeLocked(level)
			continue
		}
		if len(q.pending) > 0 && q.pendingLocked(e.seq) {
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
				q.forget(fx, expired.msg, expired.stored, expired.seq)
				fx.deadLetter(expired.msg, Expired)
				continue
			}
		}
		return e, level
	}
}

// headPendingLocked reports whether the next message is waiting for its
// write to be submitted (see Release).
func (q *Queue) headPendingLocked() bool {
	l := q.ready.highest()
	if l < 0 {
		return false
	}
	r := &q.ready.levels[l]
	return r.len() > 0 && q.pendingLocked(r.front().seq)
}

// takeLocked removes the head of a level in memory (a live message, or an
// expired one's tombstone) and refills the level from disk if it runs low.
func (q *Queue) takeLocked(level uint8) entry {
	e := q.ready.popFront(level)
	if q.ready.paged != nil {
		q.refillLocked(level)
	}
	return e
}

// dispatchLocked hands ready messages to consumers: the highest consumer
// priority first, round-robin within a priority, skipping full consumers,
// until the queue is empty or nobody can take more.
func (q *Queue) dispatchLocked(fx *effects) {
	for len(q.consumers) > 0 {
		e, level := q.headLocked(fx)
		if e == nil || !q.offerLocked(e, level, fx) {
			return
		}
	}
}

// activeLocked is the index of a single-active-consumer queue's active
// consumer: the one that came first. There must be at least one consumer.
func (q *Queue) activeLocked() int {
	active := 0
	for i := range q.consumers {
		if q.consumers[i].order < q.consumers[active].order {
			active = i
		}
	}
	return active
}

func (q *Queue) offerLocked(e *entry, level uint8, fx *effects) bool {
	d := Delivery{Message: e.msg, Redelivered: e.redelivered, DeliveryCount: e.deliveries, seq: e.seq, deadline: e.deadline, level: level, stored: e.stored}
	if q.Config().SingleActiveConsumer {
		return q.tryLocked(q.activeLocked(), level, d, fx)
	}
	for gi := range q.groups {
		g := &q.groups[gi]
		n := g.end - g.start
		for i := 0; i < n; i++ {
			off := (g.next + i) % n
			if q.tryLocked(g.start+off, level, d, fx) {
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

func (q *Queue) tryLocked(idx int, level uint8, d Delivery, fx *effects) bool {
	ce := &q.consumers[idx]
	if !ce.c.Deliver(q, d) {
		return false
	}
	q.takeLocked(level)
	q.deliveredLocked(d.Message, d.seq, d.stored, ce.noAck, fx)
	return true
}

// deliveredLocked counts a delivery; a no-ack one is settled as it leaves.
func (q *Queue) deliveredLocked(m *Message, seq uint64, stored, noAck bool, fx *effects) {
	q.delivered++
	if !noAck {
		q.unacked++
		q.check.delivered(seq)
	} else {
		q.acked++
		q.forget(fx, m, stored, seq)
	}
}

// Get takes the next message for basic.get and returns it with the number of
// messages left. With noAck the message is settled at once; otherwise it
// counts as unacked until Ack, Reject or Requeue.
func (q *Queue) Get(noAck bool) (d Delivery, remaining int, ok bool) {
	var fx effects
	q.mu.Lock()
	// The next message may be paged, or its write not yet submitted: wait
	// for it to be read back or released (that takes milliseconds; the
	// bound keeps a failing disk from hanging the channel).
	for tries := 0; !q.deleted && tries < 100; tries++ {
		if e, _ := q.headLocked(&fx); e != nil {
			break
		}
		wait, ok := q.waitLoadLocked()
		if !ok && !q.headPendingLocked() {
			break
		}
		q.checkLocked()
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
		if e, level := q.headLocked(&fx); e != nil {
			d = Delivery{Message: e.msg, Redelivered: e.redelivered, DeliveryCount: e.deliveries, seq: e.seq, deadline: e.deadline, level: level, stored: e.stored}
			q.takeLocked(level)
			q.deliveredLocked(d.Message, d.seq, d.stored, noAck, &fx)
			ok = true
		}
	}
	remaining = q.ready.count
	q.unlock(&fx)
	return d, remaining, ok
}

// AddConsumer attaches c with a consumer priority (x-priority). It does not
// dispatch: the caller kicks the queue once the client has been told about
// the consumer, so that no delivery overtakes the consume-ok.
func (q *Queue) AddConsumer(c Consumer, exclusive, noAck bool, priority int) error {
	var fx effects
	q.mu.Lock()
	defer q.unlock(&fx)
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
	q.parked = false // a new consumer hands a parked queue over (its caller's Kick runs it)
	return nil
}

// RemoveConsumer detaches c and lets the others take what is waiting. With
// single active consumer the next in line becomes active but is not handed
// the waiting messages yet, as in RabbitMQ 3.10 (basic.cancel does not run
// the queue): they go to it at the next requeue, consumer, publish or
// Handover.
// It reports whether the queue is an auto-delete queue that just lost its
// last consumer.
func (q *Queue) RemoveConsumer(c Consumer) (autoDelete bool) {
	var fx effects
	q.mu.Lock()
	found := false
	sac := q.Config().SingleActiveConsumer
	for i := range q.consumers {
		if q.consumers[i].c == c {
			if sac && q.activeLocked() == i {
				q.parked = true
			}
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
	if found && !q.deleted && !sac {
		q.dispatchLocked(&fx)
	}
	q.unlock(&fx)
	return autoDelete
}

// Release makes a message pushed with a batch deliverable, once the batch is
// submitted to storage, and dispatches it.
func (q *Queue) Release(m *Message) {
	var fx effects
	q.mu.Lock()
	q.releaseLocked(m, &fx)
	q.unlock(&fx)
}

func (q *Queue) releaseLocked(m *Message, fx *effects) {
	i := slices.IndexFunc(q.pending, func(w pendingWrite) bool { return w.msg == m })
	if q.deleted {
		if i >= 0 {
			// Its entry may have landed after the queue's were dropped:
			// drop it again, after the write.
			fx.writes().DeleteEntry(q.entries.key, q.pending[i].seq)
			q.pending = slices.Delete(q.pending, i, i+1)
		}
		return
	}
	if i >= 0 {
		w := q.pending[i]
		q.pending = slices.Delete(q.pending, i, i+1)
		if w.paged {
			q.releasePagedLocked(w, fx)
		} else if w.deadline != 0 {
			q.scheduleLocked(w.level, w.seq, w.deadline)
		}
	}
	// A waiting consumer gets it first; then a drop-head length limit
	// applies, which could not while the message was pending (x-max-length
	// 0 still delivers to a ready consumer, as in RabbitMQ).
	q.dispatchLocked(fx)
	q.dropHeadLocked(fx)
}

// Kick retries dispatch, for when a consumer regained capacity (an ack, a
// drained socket buffer, a new consumer ready). It does not hand a parked
// single-active-consumer queue to its next consumer: a late Kick from a
// consumer's own channel must not do what RabbitMQ's basic.cancel does not.
func (q *Queue) Kick() {
	var fx effects
	q.mu.Lock()
	if !q.deleted && !q.parked {
		q.dispatchLocked(&fx)
	}
	q.unlock(&fx)
}

// Handover runs the queue, parked or not: a channel that held consumers or
// deliveries on it went away, which in RabbitMQ hands a single-active-consumer
// queue to the next consumer.
func (q *Queue) Handover() {
	var fx effects
	q.mu.Lock()
	q.parked = false
	if !q.deleted {
		q.dispatchLocked(&fx)
	}
	q.unlock(&fx)
}

// Ack settles deliveries that consumers acknowledged.
func (q *Queue) Ack(ds []Delivery) {
	var fx effects
	q.mu.Lock()
	// On a deleted queue there is nothing to settle: its entries (and their
	// references) went with it.
	if !q.deleted {
		q.unacked -= len(ds)
		q.acked += uint64(len(ds))
		for _, d := range ds {
			q.check.settled(d.seq)
			q.forget(&fx, d.Message, d.stored, d.seq)
		}
	}
	q.unlock(&fx)
}

// Reject settles deliveries that consumers refused without requeue: they are
// dead-lettered with reason rejected, or dropped without a dead-letter exchange.
func (q *Queue) Reject(ds []Delivery) {
	var fx effects
	q.mu.Lock()
	if !q.deleted {
		q.unacked -= len(ds)
		fx.deadLetters = make([]DeadLetter, 0, len(ds))
		for _, d := range ds {
			q.check.settled(d.seq)
			q.forget(&fx, d.Message, d.stored, d.seq)
			fx.deadLetter(d.Message, Rejected)
		}
	}
	q.unlock(&fx)
}

// Requeue puts unacknowledged deliveries back at their original positions,
// marked redelivered, and dispatches them again. A message returned more
// often than the delivery limit allows is dead-lettered instead.
func (q *Queue) Requeue(ds []Delivery) {
	var fx effects
	q.mu.Lock()
	if q.deleted {
		q.unlock(&fx)
		return
	}
	q.unacked -= len(ds)
	q.parked = false
	var counts *storage.Batch
	for _, d := range ds {
		q.check.settled(d.seq)
		e := entry{msg: d.Message, seq: d.seq, deadline: d.deadline, deliveries: d.DeliveryCount + 1, redelivered: true, stored: d.stored}
		if limit := q.Config().DeliveryLimit; limit >= 0 && int64(e.deliveries) > limit {
			q.forget(&fx, d.Message, d.stored, d.seq)
			fx.deadLetter(d.Message, DeliveryLimit)
			continue
		}
		if e.stored {
			// Keep the delivery count across a restart, for the delivery limit.
			if counts == nil {
				counts = new(storage.Batch)
			}
			q.recordLocked(counts, &e, d.level)
		}
		q.addLocked(d.level, e)
	}
	// The rewritten entries go to storage before the lock is released:
	// once it is, the messages can be delivered, acked or expired by
	// others, whose deletes must not overtake the rewrite (the entry would
	// outlive its message). Submitting never calls back into the queue.
	q.submit(counts)
	q.dispatchLocked(&fx)
	q.unlock(&fx)
}

// Purge drops every ready message and returns how many there were. Unacked
// messages are not touched, as in RabbitMQ, nor are pending ones (their
// write not yet submitted), so that no delete of their entry can reach the
// disk before the entry itself. The paged messages are deleted from disk
// before Purge returns, in chunks, without the queue's lock.
func (q *Queue) Purge() int {
	var fx effects
	q.mu.Lock()
	if q.deleted {
		// Its pending messages are no longer counted: nothing to purge.
		q.unlock(&fx)
		return 0
	}
	var seqs []uint64
	for level := range q.ready.levels {
		r := &q.ready.levels[level]
		for i := 0; i < r.len(); i++ {
			e := r.at(i)
			if e.expired || q.pendingLocked(e.seq) {
				continue
			}
			q.dropDedupLocked(e.msg)
			if e.stored {
				seqs = append(seqs, e.seq)
			}
		}
	}
	n := q.ready.count - len(q.pending)
	var job *pagedPurge
	if q.ready.pagedCount() > q.pagedPendingLocked() {
		job = q.pagedPurgeLocked()
	}
	q.clearLocked()
	// The pending messages stay.
	for _, w := range q.pending {
		if w.paged {
			q.ready.addPaged(w.level, w.seq, int64(w.msg.Size()))
		} else {
			q.ready.add(w.level, entry{msg: w.msg, seq: w.seq, deadline: w.deadline, stored: true})
		}
	}
	q.unlock(&fx)
	q.deleteEntries(seqs)
	if job != nil {
		// The paged part is deleted before purge-ok: a purge that a
		// restart could undo would not be one. The queue serves meanwhile.
		q.purgePaged(job)
	}
	return n
}

// pagedPendingLocked is the number of pending messages that are paged.
func (q *Queue) pagedPendingLocked() int {
	n := 0
	for _, w := range q.pending {
		if w.paged {
			n++
		}
	}
	return n
}

// chunkOps bounds one batch of a purge, so that dropping a million stored
// messages is many modest transactions, not one huge one.
const chunkOps = 10000

// deleteEntries deletes entries in batches of chunkOps.
func (q *Queue) deleteEntries(seqs []uint64) {
	for len(seqs) > 0 {
		b := new(storage.Batch)
		for b.Len() < chunkOps && len(seqs) > 0 {
			b.DeleteEntry(q.entries.key, seqs[0])
			seqs = seqs[1:]
		}
		q.submit(b)
	}
}

// clearLocked empties the queue's ready messages, in memory and paged, and
// forgets the recent paged ones (a purge deletes them on disk after a
// flush). Pending messages stay in q.pending, counted nowhere.
func (q *Queue) clearLocked() {
	q.ready.clear()
	clear(q.page.recent)
	q.page.recent = q.page.recent[:0]
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
	var fx effects
	q.mu.Lock()
	defer q.unlock(&fx)
	if q.deleted {
		return 0
	}
	q.deleted = true
	q.page.gen++
	clear(q.dedup)
	n := q.ready.count
	// Pending messages stay in q.pending: Release deletes their entries
	// again, in case their write lands after the drop.
	q.clearLocked()
	if q.entries != nil && q.wrote {
		// Refused only at shutdown: the next start drops them as orphans.
		q.group.Go(func() {
			if err := q.entries.store.DropEntries(q.entries.key); err != nil {
				q.entries.log.Error("deleting a deleted queue's entries failed", "queue", q.Name, "err", err)
			}
		})
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
	q.check.dropUnacked()
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
		Ready: q.ready.count, ReadyBytes: q.ready.bytes, Unacked: q.unacked, Consumers: len(q.consumers),
		Published: q.published, Delivered: q.delivered, Acked: q.acked, DeadLettered: q.deadLettered,
	}
}

// InUse reports whether the queue has consumers, for delete if-unused.
func (q *Queue) InUse() bool { return q.Stats().Consumers > 0 }

// armTTLLocked makes the TTL timer fire at the earliest deadline.
func (q *Queue) armTTLLocked() {
	at, ok := q.ready.firstDeadline()
	if !ok {
		return
	}
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
	var fx effects
	q.mu.Lock()
	q.ttlAt = 0
	if q.deleted {
		q.unlock(&fx)
		return
	}
	now := q.now().UnixMilli()
	for {
		d, due := q.ready.popDue(now)
		if !due {
			break
		}
		i := q.ready.find(d)
		if i < 0 {
			continue // delivered meanwhile, or already expired
		}
		if len(q.pending) > 0 && q.pendingLocked(d.seq) {
			continue // Release schedules its deadline again
		}
		gone := q.ready.expire(d.level, i)
		q.forget(&fx, gone.msg, gone.stored, gone.seq)
		fx.deadLetter(gone.msg, Expired)
		q.refillLocked(d.level)
	}
	q.armTTLLocked()
	q.unlock(&fx)
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
