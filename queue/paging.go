package queue

import (
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/storage"
)

// Paging: a queue's backlog need not live in memory. Once the server's
// memory budget is spent, new messages stay on disk only: each priority
// level then has a tail, a count and a byte total of messages that sit on
// disk after the ones in memory. A persistent message in a durable queue is
// on disk anyway; any other message is written when it has to join a tail
// (in its own record, flagged transient, dropped at the next start, as
// RabbitMQ pages transient messages out under memory pressure). When a
// level's messages in memory run low, a loader reads the next ones back in
// one read transaction, off the queue's lock. A tail costs no memory per
// message, so a backlog of ten million messages costs what a few thousand
// do.
//
// A tail message expires or is dropped only once it is read back, as
// RabbitMQ's classic queues expire messages at the head.

// Budget is the memory that queues may spend on messages kept in memory;
// beyond it their backlogs stay on disk. One Budget is shared by all
// the queues of a server. A nil *Budget never pages.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// NewBudget returns a budget of limit bytes; limit <= 0 is unlimited.
func NewBudget(limit int64) *Budget {
	if limit <= 0 {
		return nil
	}
	return &Budget{limit: limit}
}

// Used is the memory charged to the budget now, in bytes.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

func (b *Budget) over() bool { return b != nil && b.used.Load() >= b.limit }

// messageCost estimates what a message in memory costs: its bytes plus the
// message struct, its ring slot and allocation overhead.
func messageCost(m *Message) int64 { return int64(len(m.Body)+len(m.Properties)) + 192 }

// Paging thresholds, per priority level of a paged queue: a load starts when
// fewer than pageLow messages are in memory, and reads up to pageBatch
// messages or pageBytes of bodies. While the budget is spent, levels keep
// only pageMin messages and loads read pageMin at a time, so that many
// backlogged queues together stay near the budget.
const (
	pageLow   = 2048
	pageBatch = 4096
	pageMin   = 128
	pageBytes = 8 << 20
)

// lowWater is the number of messages below which a level's memory is
// refilled from its tail.
func (q *Queue) lowWater() int {
	if q.budget.over() {
		return pageMin
	}
	return pageLow
}

// tail is a priority level's messages kept on disk only: those of the level
// with a seq of at least from (every message of the level in memory, ready
// or unacked, has a lower seq).
type tail struct {
	count int
	bytes int64
	from  uint64
}

// recentTail is a tail message whose write may not be on disk yet: not
// submitted (sub 0: pending, not to be handed out before Release) or
// submitted as storage submission sub but perhaps not committed. A load must
// not read past the first of them (its entry may be missing while later ones
// are there); a level whose committed tail has all been read takes its recent
// messages straight from memory instead of waiting for the commit.
type recentTail struct {
	seq      uint64
	sub      uint64
	deadline int64
	msg      *Message
	level    uint8
}

// chargeLocked adds (sign 1) or removes (-1) a message in memory from the
// budget.
func (q *Queue) chargeLocked(m *Message, sign int64) {
	if q.budget == nil || m == nil {
		return
	}
	c := sign * messageCost(m)
	q.charged += c
	q.budget.used.Add(c)
}

// pagedLocked is the number of messages in tails.
func (q *Queue) pagedLocked() int {
	n := 0
	for i := range q.tails {
		n += q.tails[i].count
	}
	return n
}

// toTailLocked decides whether a message pushed to level goes to the tail:
// when the level already has one (order), or when the budget is spent and
// the level has enough in memory for its consumers.
func (q *Queue) toTailLocked(level uint8) bool {
	if q.tails == nil {
		return false
	}
	return q.tails[level].count > 0 || (q.budget.over() && q.levels[level].len() >= pageMin)
}

// tailAddLocked counts a message of size bytes with seq into a level's tail
// and the ready totals.
func (q *Queue) tailAddLocked(level uint8, seq uint64, size int64) {
	t := &q.tails[level]
	if t.count == 0 {
		t.from = seq
	}
	t.count++
	t.bytes += size
	q.ready++
	q.readyBytes += size
	q.nonEmpty[level>>6] |= 1 << (level & 63)
}

// tailTakeLocked counts a message of size bytes out of a level's tail and
// the ready totals (read back, or gone).
func (q *Queue) tailTakeLocked(level uint8, size int64) {
	t := &q.tails[level]
	t.count--
	t.bytes -= size
	q.ready--
	q.readyBytes -= size
}

// pushTailLocked adds e to its level's tail. Its entry is in b, which the
// caller submits; until then the message is pending.
func (q *Queue) pushTailLocked(level uint8, e *entry) {
	q.tailAddLocked(level, e.seq, int64(e.msg.Size()))
	q.recent = append(q.recent, recentTail{seq: e.seq, msg: e.msg, level: level, deadline: e.deadline})
	q.maybeLoadLocked()
}

// storeTransientLocked writes a message that this queue would not store
// otherwise (transient, or any message of a non-durable queue) but that must
// queue behind a tail: it gets an id and a record of its own (other queues
// keep their copy in memory). A transient one is flagged so that it is
// dropped at the next start; a non-durable queue's entries all go then.
func (q *Queue) storeTransientLocked(b *storage.Batch, m *Message) *Message {
	c := *m
	c.ID = q.journal.store.NextMessageID()
	b.PutMessage(c.ID, EncodeMessage(&c))
	return &c
}

// releaseTailLocked marks the tail message m submitted to storage; on a
// deleted queue its entry is deleted again, after the write.
func (q *Queue) releaseTailLocked(m *Message) bool {
	for i := len(q.recent) - 1; i >= 0; i-- {
		r := &q.recent[i]
		if r.msg != m || r.sub != 0 {
			continue
		}
		if q.deleted {
			var b storage.Batch
			b.DeleteEntry(q.journal.key, r.seq)
			q.submit(&b)
			q.recent = slices.Delete(q.recent, i, i+1)
			return true
		}
		r.sub = q.journal.store.Submitted()
		if q.pruneQueued.CompareAndSwap(false, true) {
			// Once this write is committed the message need not stay in
			// memory: an empty batch behind it says when.
			q.journal.store.SubmitBackground(&storage.Batch{}, q.pruneAfterCommit)
		}
		q.maybeLoadLocked()
		return true
	}
	return false
}

// pruneAfterCommit runs on the storage committer once the writes released
// before it are on disk, or at once (on the submitter's goroutine, maybe
// under the queue's lock) with an error when the store is closed: it must
// not take the lock then.
func (q *Queue) pruneAfterCommit(err error) {
	if err != nil {
		q.pruneQueued.Store(false) // the next release tries again
		return
	}
	q.mu.Lock()
	q.pruneRecentLocked()
	again := false
	for _, r := range q.recent {
		if r.sub != 0 {
			again = !q.deleted
			break
		}
	}
	if !again {
		q.pruneQueued.Store(false)
	}
	q.mu.Unlock()
	if again {
		q.journal.store.SubmitBackground(&storage.Batch{}, q.pruneAfterCommit)
	}
}

// pruneRecentLocked forgets the recent tail messages that are on disk now,
// from the front: the horizon is the first that may not be.
func (q *Queue) pruneRecentLocked() {
	committed := q.journal.store.Committed()
	n := 0
	for n < len(q.recent) && q.recent[n].sub != 0 && q.recent[n].sub <= committed {
		n++
	}
	if n > 0 {
		clear(q.recent[:n]) // let the messages go
		q.recent = slices.Delete(q.recent, 0, n)
	}
}

// maybeLoadLocked starts a load for the levels whose memory runs low.
func (q *Queue) maybeLoadLocked() {
	if q.tails == nil || q.loading || q.deleted || q.purging > 0 {
		return
	}
	var reqs []loadReq
	starved := false
	for l := range q.tails {
		t := &q.tails[l]
		if t.count > 0 && q.levels[l].len() < q.lowWater() {
			reqs = append(reqs, loadReq{level: uint8(l), from: t.from})
			starved = starved || q.levels[l].len() == 0
		}
	}
	if len(reqs) == 0 {
		return
	}
	// The horizon is the first tail entry that may be missing from the
	// disk. Everything below it is there.
	q.pruneRecentLocked()
	horizon, horizonSub := q.nextSeq+1, uint64(0)
	if len(q.recent) > 0 {
		horizon, horizonSub = q.recent[0].seq, q.recent[0].sub
	}
	// A level that has read all of its tail on disk takes the rest, still
	// on its way there, from memory.
	caughtUp := false
	for _, r := range reqs {
		if r.from >= horizon {
			q.catchUpLocked(r.level)
			caughtUp = true
		}
	}
	if caughtUp {
		reqs = reqs[:0]
		for l := range q.tails {
			if t := &q.tails[l]; t.count > 0 && q.levels[l].len() < q.lowWater() && t.from < horizon {
				reqs = append(reqs, loadReq{level: uint8(l), from: t.from})
			}
		}
		if len(reqs) == 0 {
			return
		}
	}
	// A spent budget reads little at a time, unless consumers already
	// wait: then a small batch would make them wait again at once.
	batch := pageBatch
	if q.budget.over() && !starved {
		batch = pageMin
	}
	q.loading = true
	q.loadDone = make(chan struct{})
	go q.load(q.gen, horizon, horizonSub, batch, reqs)
}

type loadReq struct {
	level uint8
	from  uint64
}

// loaded is one message read back from a tail.
type loaded struct {
	e     entry
	level uint8
	size  int64
}

// load reads tail messages back for reqs, without the queue's lock, and
// hands them to the queue. Entries from horizon on may not be on disk yet and
// are left for a later load; when nothing below the horizon was found and
// the horizon's write is submitted (horizonSub), the load waits for that
// commit so that the next one finds it.
func (q *Queue) load(gen, horizon, horizonSub uint64, batch int, reqs []loadReq) {
	var err error
	var got []loaded
	next := make([]uint64, len(reqs))
	var missing []loaded // entries whose message is gone; e.msg is nil
	for i, r := range reqs {
		if err != nil {
			break
		}
		next[i] = horizon
		n, bytes := 0, int64(0)
		var derr error
		err = q.journal.store.Scan(q.journal.key, r.from, func(seq uint64, ent []byte, message func(uint64) []byte) bool {
			if seq >= horizon {
				return false
			}
			rec, ok := decodeEntry(ent)
			if !ok {
				derr = fmt.Errorf("entry %d: %w", seq, errBadRecord)
				return false
			}
			if min(rec.level, q.Config().MaxPriority) != r.level {
				return true
			}
			if n >= batch || bytes >= pageBytes {
				next[i] = seq
				return false
			}
			raw := message(rec.id)
			if raw == nil {
				missing = append(missing, loaded{e: entry{seq: seq}, level: r.level, size: max(rec.size, 0)})
				return true
			}
			m, err := DecodeMessage(rec.id, slices.Clone(raw))
			if err != nil {
				derr = fmt.Errorf("message %d: %w", rec.id, err)
				return false
			}
			m.Persistent = rec.flags&flagTransient == 0
			got = append(got, loaded{
				e:     entry{msg: m, seq: seq, deadline: rec.deadline, deliveries: rec.deliveries, redelivered: seq <= q.recoveredUpTo, stored: true},
				level: r.level, size: int64(len(m.Body)),
			})
			n++
			bytes += int64(len(m.Body))
			return true
		})
		if err == nil {
			err = derr
		}
	}

	retry := err == nil && len(got) == 0 && len(missing) == 0
	if retry && horizonSub > 0 {
		err = q.journal.store.WaitCommitted(horizonSub)
	}

	var dls []DeadLetter
	var b *storage.Batch
	q.mu.Lock()
	done := q.loadDone
	q.loading, q.loadDone = false, nil
	if err != nil {
		q.journal.log.Error("reading a queue's paged-out messages failed", "queue", q.Name, "err", err)
	}
	if gen == q.gen && !q.deleted && err == nil {
		q.applyLoadLocked(reqs, next, got, missing, &b)
		q.dispatchLocked(&b, &dls)
		q.dropHeadLocked(&b, &dls)
		if !retry || horizonSub > 0 {
			// Otherwise the horizon is a write not yet submitted; its
			// Release starts the next load.
			q.maybeLoadLocked()
		}
	}
	q.mu.Unlock()
	close(done)
	q.deadLetter(dls)
	q.submit(b)
	if err != nil {
		// Try again later rather than spin on a failing disk.
		time.AfterFunc(time.Second, q.Kick)
	}
}

// applyLoadLocked moves loaded messages from their tails to memory.
func (q *Queue) applyLoadLocked(reqs []loadReq, next []uint64, got, missing []loaded, b **storage.Batch) {
	for _, l := range got {
		q.tailTakeLocked(l.level, l.size)
		q.addLocked(l.level, l.e)
	}
	for _, l := range missing {
		// The message is gone (a format 1 file that lost it in a crash):
		// the entry goes too.
		q.tailTakeLocked(l.level, l.size)
		if *b == nil {
			*b = new(storage.Batch)
		}
		(*b).DeleteEntry(q.journal.key, l.e.seq)
	}
	for i, r := range reqs {
		t := &q.tails[r.level]
		t.from = max(t.from, next[i])
		if t.count > 0 && !q.pendingInLocked(r.level) && t.from >= q.nextSeq+1 {
			// Counted but not on disk: an entry lost to a crash between
			// writes. Do not wait for it forever.
			q.journal.log.Warn("queue tail shorter than counted", "queue", q.Name, "missing", t.count)
			q.ready -= t.count
			q.readyBytes -= t.bytes
			t.count, t.bytes = 0, 0
		}
		if t.count == 0 {
			t.bytes = 0
			if q.levels[r.level].len() == 0 {
				q.nonEmpty[r.level>>6] &^= 1 << (r.level & 63)
			}
		}
	}
}

func (q *Queue) pendingInLocked(level uint8) bool {
	for _, r := range q.recent {
		if r.level == level {
			return true
		}
	}
	return false
}

// catchUpLocked moves a level's recent tail messages to memory: its tail on
// disk has been read up to them. Those not yet submitted stay pending.
func (q *Queue) catchUpLocked(level uint8) {
	kept := q.recent[:0]
	for _, r := range q.recent {
		if r.level != level {
			kept = append(kept, r)
			continue
		}
		q.tailTakeLocked(level, int64(r.msg.Size()))
		q.addLocked(level, entry{msg: r.msg, seq: r.seq, deadline: r.deadline, stored: true, pending: r.sub == 0})
	}
	clear(q.recent[len(kept):])
	q.recent = kept
}

// waitLoadLocked starts a load if one is due and returns the channel that
// closes when the running load ends (nil if none runs); ok is false when no
// load can bring a message back (nothing paged out, or the queue is gone).
func (q *Queue) waitLoadLocked() (wait <-chan struct{}, ok bool) {
	if q.tails == nil || q.deleted || q.pagedLocked() == 0 {
		return nil, false
	}
	q.maybeLoadLocked()
	return q.loadDone, true
}

// Recover reads the queue's stored entries back at start, in seq order:
// into memory while the budget lasts, the rest counted in tails. Every
// recovered message is marked redelivered (it may have been delivered
// before the restart), deadlines stay as they were (a message that expired
// meanwhile expires now), and transient messages that were written only for
// paging are deleted. It returns the number of messages recovered.
func (q *Queue) Recover() (int, error) {
	if q.journal == nil || !q.journal.durable {
		return 0, nil
	}
	var drop []uint64
	var derr error
	n := 0
	maxPrio := q.Config().MaxPriority
	q.mu.Lock()
	q.wrote = true // whatever is there goes when the queue is deleted
	err := q.journal.store.Scan(q.journal.key, 0, func(seq uint64, ent []byte, message func(uint64) []byte) bool {
		rec, ok := decodeEntry(ent)
		if !ok {
			derr = fmt.Errorf("entry %d: %w", seq, errBadRecord)
			return false
		}
		q.nextSeq = max(q.nextSeq, seq)
		q.recoveredUpTo = q.nextSeq
		if rec.flags&flagTransient != 0 {
			drop = append(drop, seq)
			return true
		}
		level := min(rec.level, maxPrio)
		t := &q.tails[level]
		var m *Message
		if t.count == 0 && !q.budget.over() || rec.size < 0 {
			raw := message(rec.id)
			if raw == nil {
				drop = append(drop, seq) // a format 1 file that lost the body in a crash
				return true
			}
			var err error
			if m, err = DecodeMessage(rec.id, slices.Clone(raw)); err != nil {
				derr = fmt.Errorf("message %d: %w", rec.id, err)
				return false
			}
			rec.size = int64(len(m.Body))
		}
		n++
		if t.count == 0 && !q.budget.over() {
			q.addLocked(level, entry{msg: m, seq: seq, deadline: rec.deadline, deliveries: rec.deliveries, redelivered: true, stored: true})
			return true
		}
		q.tailAddLocked(level, seq, rec.size)
		return true
	})
	if err == nil {
		err = derr
	}
	q.mu.Unlock()
	if err != nil {
		return n, err
	}
	// The dropped entries are gone before any load can read the tail past
	// them.
	for len(drop) > 0 {
		var b storage.Batch
		for b.Len() < chunkOps && len(drop) > 0 {
			b.DeleteEntry(q.journal.key, drop[0])
			drop = drop[1:]
		}
		if err := q.journal.store.Commit(&b); err != nil {
			return n, err
		}
	}
	return n, nil
}

// StoreKey names the queue's entries in storage; "" for queues that keep
// nothing.
func (q *Queue) StoreKey() string {
	if q.journal == nil {
		return ""
	}
	return q.journal.key
}
