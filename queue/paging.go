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
// level then has a paged part, a count and a byte total of messages that
// sit on disk after the ones in memory (readySet). A persistent message in
// a durable queue is on disk anyway; any other message is written when it
// has to be paged (in its own record, flagged transient, dropped at the
// next start, as RabbitMQ pages transient messages out under memory
// pressure). When a level's messages in memory run low, a loader reads the
// next ones back in one read transaction, off the queue's lock. A paged
// message costs no memory, so a backlog of ten million messages costs what
// a few thousand do.
//
// A paged message expires or is dropped only once it is read back, as
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
// refilled from its paged part.
func (q *Queue) lowWater() int {
	if q.ready.budget.over() {
		return pageMin
	}
	return pageLow
}

// pager is a queue's paging state besides the counts (readySet.paged): the
// paged messages whose write may not be on disk yet, and the loader.
// Queue.mu guards it, except pruneQueued.
type pager struct {
	// recent are the paged messages whose write is submitted but perhaps
	// not committed, in seq order (those not submitted yet are in
	// Queue.pending). A load must not read past the first paged message
	// that may not be on disk, the horizon: its entry may be missing while
	// later ones are there. A level whose paged part on disk has been read
	// up to the horizon takes the rest straight from memory instead of
	// waiting for the commit.
	recent []recentPaged
	// pruneQueued: an empty background batch will call pruneAfterCommit.
	pruneQueued atomic.Bool
	loading     bool
	loadDone    chan struct{} // closed when the running load ends
	gen         uint64        // bumped by purge and delete: loads started before are void
	purging     int           // purges still deleting paged entries; no load meanwhile
	// recoveredUpTo: entries up to this seq were on disk at start, so they
	// are read back marked redelivered.
	recoveredUpTo uint64
}

// recentPaged is a paged message whose write was submitted as storage
// submission sub.
type recentPaged struct {
	seq      uint64
	sub      uint64
	deadline int64
	msg      *Message
	level    uint8
}

// addRecent records a paged message whose write was just submitted, at its
// seq position (releases need not come in push order).
func (p *pager) addRecent(r recentPaged) {
	i := len(p.recent)
	for i > 0 && p.recent[i-1].seq > r.seq {
		i--
	}
	p.recent = slices.Insert(p.recent, i, r)
}

// prune forgets the recent messages at the front that are committed (up to
// submission committed) and below seq below.
func (p *pager) prune(committed, below uint64) {
	n := 0
	for n < len(p.recent) && p.recent[n].sub <= committed && p.recent[n].seq < below {
		n++
	}
	if n > 0 {
		clear(p.recent[:n]) // let the messages go
		p.recent = slices.Delete(p.recent, 0, n)
	}
}

// inLevel reports whether a recent message belongs to level.
func (p *pager) inLevel(level uint8) bool {
	for _, r := range p.recent {
		if r.level == level {
			return true
		}
	}
	return false
}

// pagesLocked decides whether a message pushed to level is paged: when the
// level has a paged part already (order), or when the budget is spent and
// the level has enough in memory for its consumers.
func (q *Queue) pagesLocked(level uint8) bool {
	if q.ready.paged == nil {
		return false
	}
	return q.ready.paged[level].count > 0 || (q.ready.budget.over() && q.ready.levels[level].len() >= pageMin)
}

// pushPagedLocked adds e to its level's paged part. Its entry is in a batch
// not submitted yet: until Release the message is pending.
func (q *Queue) pushPagedLocked(level uint8, e *entry) {
	q.ready.addPaged(level, e.seq, int64(e.msg.Size()))
	q.pending = append(q.pending, pendingWrite{msg: e.msg, seq: e.seq, deadline: e.deadline, level: level, paged: true})
	q.maybeLoadLocked()
}

// refillLocked starts a load when a paged level's memory runs low.
func (q *Queue) refillLocked(level uint8) {
	if q.ready.paged != nil && q.ready.paged[level].count > 0 && q.ready.levels[level].len() < q.lowWater() {
		q.maybeLoadLocked()
	}
}

// storeTransient writes a message that this queue would not store
// otherwise (transient, or any message of a non-durable queue) but that must
// be paged: it gets an id and a record of its own (other queues keep their
// copy in memory). A transient one is flagged so that it is dropped at the
// next start; a non-durable queue's entries all go then.
func (q *Queue) storeTransient(b *storage.Batch, m *Message) *Message {
	c := *m
	c.ID = q.entries.store.NextMessageID()
	b.PutMessage(c.ID, EncodeMessage(&c))
	return &c
}

// releasePagedLocked records that the write of w, a pending paged message,
// is submitted.
func (q *Queue) releasePagedLocked(w pendingWrite, fx *effects) {
	q.page.addRecent(recentPaged{seq: w.seq, sub: q.entries.store.Submitted(), deadline: w.deadline, msg: w.msg, level: w.level})
	if q.page.pruneQueued.CompareAndSwap(false, true) {
		// Once this write is committed the message need not stay in
		// memory: an empty batch behind it says when.
		fx.prune = true
	}
	q.maybeLoadLocked()
}

// pruneAfterCommit runs on the storage committer once the writes released
// before it are on disk, or with an error when the store is closed (then
// on the goroutine that submitted it, in Queue.unlock, without the lock).
func (q *Queue) pruneAfterCommit(err error) {
	if err != nil {
		q.page.pruneQueued.Store(false) // the next release tries again
		return
	}
	var fx effects
	q.mu.Lock()
	q.pruneRecentLocked()
	if len(q.page.recent) > 0 && !q.deleted {
		fx.prune = true
	} else {
		q.page.pruneQueued.Store(false)
	}
	q.unlock(&fx)
}

// pruneRecentLocked forgets the recent paged messages that are on disk
// now, from the front, up to the first pending one: every paged message
// from the horizon on stays in memory (recent or pending).
func (q *Queue) pruneRecentLocked() {
	below := q.nextSeq + 1
	if i := q.firstPagedPendingLocked(); i >= 0 {
		below = q.pending[i].seq
	}
	q.page.prune(q.entries.store.Committed(), below)
}

// horizonLocked returns the first paged message that may be missing from
// the disk and its submission (0: not submitted yet). Every paged message
// below it is on disk; every one from it on is recent or pending.
func (q *Queue) horizonLocked() (seq, sub uint64) {
	seq = q.nextSeq + 1
	if len(q.page.recent) > 0 {
		seq, sub = q.page.recent[0].seq, q.page.recent[0].sub
	}
	if i := q.firstPagedPendingLocked(); i >= 0 && q.pending[i].seq < seq {
		seq, sub = q.pending[i].seq, 0
	}
	return seq, sub
}

// inFlightLocked reports whether a paged message of level may not be on
// disk yet.
func (q *Queue) inFlightLocked(level uint8) bool {
	if q.page.inLevel(level) {
		return true
	}
	for _, w := range q.pending {
		if w.paged && w.level == level {
			return true
		}
	}
	return false
}

// maybeLoadLocked starts a load for the levels whose memory runs low.
func (q *Queue) maybeLoadLocked() {
	if q.ready.paged == nil || q.page.loading || q.deleted || q.page.purging > 0 {
		return
	}
	var reqs []loadReq
	starved := false
	for l := range q.ready.paged {
		p := &q.ready.paged[l]
		if p.count > 0 && q.ready.levels[l].len() < q.lowWater() {
			reqs = append(reqs, loadReq{level: uint8(l), from: p.from})
			starved = starved || q.ready.levels[l].len() == 0
		}
	}
	if len(reqs) == 0 {
		return
	}
	q.pruneRecentLocked()
	horizon, horizonSub := q.horizonLocked()
	// A level that has read all of its paged part on disk takes the rest,
	// still on its way there, from memory.
	caughtUp := false
	for _, r := range reqs {
		if r.from >= horizon {
			q.catchUpLocked(r.level)
			caughtUp = true
		}
	}
	if caughtUp {
		reqs = reqs[:0]
		for l := range q.ready.paged {
			if p := &q.ready.paged[l]; p.count > 0 && q.ready.levels[l].len() < q.lowWater() && p.from < horizon {
				reqs = append(reqs, loadReq{level: uint8(l), from: p.from})
			}
		}
		if len(reqs) == 0 {
			return
		}
	}
	// A spent budget reads little at a time, unless consumers already
	// wait: then a small batch would make them wait again at once.
	batch := pageBatch
	if q.ready.budget.over() && !starved {
		batch = pageMin
	}
	gen := q.page.gen
	if q.group.Go(func() { q.load(gen, horizon, horizonSub, batch, reqs) }) {
		q.page.loading = true
		q.page.loadDone = make(chan struct{})
	}
	// Refused: the broker is stopping, and nothing more is read.
}

type loadReq struct {
	level uint8
	from  uint64
}

// loaded is one paged message read back.
type loaded struct {
	e     entry
	level uint8
	size  int64
}

// load reads paged messages back for reqs, without the queue's lock, and
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
		err = q.entries.store.Scan(q.entries.key, r.from, func(seq uint64, ent []byte, message func(uint64) []byte) bool {
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
				e:     entry{msg: m, seq: seq, deadline: rec.deadline, deliveries: rec.deliveries, redelivered: seq <= q.page.recoveredUpTo, stored: true},
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
		err = q.entries.store.WaitCommitted(horizonSub)
	}

	var fx effects
	q.mu.Lock()
	close(q.page.loadDone)
	q.page.loading, q.page.loadDone = false, nil
	if err != nil {
		q.entries.log.Error("reading a queue's paged messages failed", "queue", q.Name, "err", err)
	}
	if gen == q.page.gen && !q.deleted && err == nil {
		q.applyLoadLocked(reqs, next, got, missing, &fx)
		q.dispatchLocked(&fx)
		q.dropHeadLocked(&fx)
		if !retry || horizonSub > 0 {
			// Otherwise the horizon is a write not yet submitted; its
			// Release starts the next load.
			q.maybeLoadLocked()
		}
	}
	q.unlock(&fx)
	if err != nil {
		// Try again later rather than spin on a failing disk.
		time.AfterFunc(time.Second, q.Kick)
	}
}

// applyLoadLocked moves loaded messages from their paged parts to memory.
func (q *Queue) applyLoadLocked(reqs []loadReq, next []uint64, got, missing []loaded, fx *effects) {
	for _, l := range got {
		q.ready.takePaged(l.level, l.size)
		q.addLocked(l.level, l.e)
	}
	for _, l := range missing {
		// The message is gone (a format 1 file that lost it in a crash):
		// the entry goes too.
		q.ready.takePaged(l.level, l.size)
		fx.writes().DeleteEntry(q.entries.key, l.e.seq)
	}
	for i, r := range reqs {
		q.ready.readFrom(r.level, next[i])
		if p := &q.ready.paged[r.level]; p.count > 0 && !q.inFlightLocked(r.level) && p.from >= q.nextSeq+1 {
			// Counted but not on disk: an entry lost to a crash between
			// writes. Do not wait for it forever.
			n := q.ready.losePaged(r.level)
			q.entries.log.Warn("queue's paged messages fewer than counted", "queue", q.Name, "missing", n)
		}
	}
}

// catchUpLocked moves a level's paged messages that are still in memory
// (recent or pending) to the level's memory proper: its paged part on disk
// has been read up to them. Those not yet submitted stay pending.
func (q *Queue) catchUpLocked(level uint8) {
	kept := q.page.recent[:0]
	for _, r := range q.page.recent {
		if r.level != level {
			kept = append(kept, r)
			continue
		}
		q.ready.takePaged(level, int64(r.msg.Size()))
		q.addLocked(level, entry{msg: r.msg, seq: r.seq, deadline: r.deadline, stored: true})
	}
	clear(q.page.recent[len(kept):])
	q.page.recent = kept
	for i := range q.pending {
		if w := &q.pending[i]; w.paged && w.level == level {
			q.ready.takePaged(level, int64(w.msg.Size()))
			q.ready.add(level, entry{msg: w.msg, seq: w.seq, deadline: w.deadline, stored: true})
			w.paged = false
		}
	}
}

// waitLoadLocked starts a load if one is due and returns the channel that
// closes when the running load ends (nil if none runs); ok is false when no
// load can bring a message back (nothing paged, or the queue is gone).
func (q *Queue) waitLoadLocked() (wait <-chan struct{}, ok bool) {
	if q.ready.paged == nil || q.deleted || q.ready.pagedCount() == 0 {
		return nil, false
	}
	q.maybeLoadLocked()
	return q.page.loadDone, true
}

// pagedPurge is a purge's work on disk: every entry of a level's paged
// part from its from seq up to upTo, except the pending ones, which stay
// queued.
type pagedPurge struct {
	from []uint64 // by level; MaxUint64 for levels without a paged part
	upTo uint64
	keep map[uint64]bool
}

// pagedPurgeLocked returns the deletes a purge does on disk, and keeps
// loads off until they are done.
func (q *Queue) pagedPurgeLocked() *pagedPurge {
	job := &pagedPurge{from: make([]uint64, len(q.ready.paged)), upTo: q.nextSeq, keep: make(map[uint64]bool)}
	for l, p := range q.ready.paged {
		job.from[l] = ^uint64(0)
		if p.count > 0 {
			job.from[l] = p.from
		}
	}
	for _, w := range q.pending {
		if w.paged {
			job.keep[w.seq] = true
		}
	}
	q.page.purging++
	q.page.gen++
	return job
}

// purgePaged deletes a purge's paged entries, in chunks.
func (q *Queue) purgePaged(job *pagedPurge) {
	store := q.entries.store
	err := store.Flush()
	start := slices.Min(job.from)
	for err == nil && start <= job.upTo {
		var b storage.Batch
		next := job.upTo + 1
		var derr error
		err = store.Scan(q.entries.key, start, func(seq uint64, ent []byte, _ func(uint64) []byte) bool {
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
				b.DeleteEntry(q.entries.key, seq)
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
		q.entries.log.Error("purging a queue's paged messages failed", "queue", q.Name, "err", err)
	}
	var fx effects
	q.mu.Lock()
	q.page.purging--
	q.maybeLoadLocked()
	q.unlock(&fx)
}

// Recover reads the queue's stored entries back at start, in seq order:
// into memory while the budget lasts, the rest counted as paged. Every
// recovered message is marked redelivered (it may have been delivered
// before the restart), deadlines stay as they were (a message that expired
// meanwhile expires now), and transient messages that were written only for
// paging are deleted. It returns the number of messages recovered.
func (q *Queue) Recover() (int, error) {
	if q.entries == nil || !q.entries.durable {
		return 0, nil
	}
	var drop []uint64
	var derr error
	n := 0
	maxPrio := q.Config().MaxPriority
	var fx effects
	q.mu.Lock()
	q.wrote = true // whatever is there goes when the queue is deleted
	err := q.entries.store.Scan(q.entries.key, 0, func(seq uint64, ent []byte, message func(uint64) []byte) bool {
		rec, ok := decodeEntry(ent)
		if !ok {
			derr = fmt.Errorf("entry %d: %w", seq, errBadRecord)
			return false
		}
		q.nextSeq = max(q.nextSeq, seq)
		q.page.recoveredUpTo = q.nextSeq
		if rec.flags&flagTransient != 0 {
			drop = append(drop, seq)
			return true
		}
		level := min(rec.level, maxPrio)
		inMemory := q.ready.paged == nil || (q.ready.paged[level].count == 0 && !q.ready.budget.over())
		var m *Message
		if inMemory || rec.size < 0 {
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
		if q.dedup != nil && q.hooks.DedupKey != nil {
			// The header value is not in the stored record: read it again.
			if m.DedupKey = q.hooks.DedupKey(m.Properties); m.DedupKey != "" {
				q.dedup[m.DedupKey]++
			}
		}
		if inMemory {
			q.addLocked(level, entry{msg: m, seq: seq, deadline: rec.deadline, deliveries: rec.deliveries, redelivered: true, stored: true})
			return true
		}
		q.ready.addPaged(level, seq, rec.size)
		return true
	})
	if err == nil {
		err = derr
	}
	q.unlock(&fx)
	if err != nil {
		return n, err
	}
	// The dropped entries are gone before any load can read the paged
	// part past them.
	for len(drop) > 0 {
		var b storage.Batch
		for b.Len() < chunkOps && len(drop) > 0 {
			b.DeleteEntry(q.entries.key, drop[0])
			drop = drop[1:]
		}
		if err := q.entries.store.Commit(&b); err != nil {
			return n, err
		}
	}
	return n, nil
}

// StoreKey names the queue's entries in storage; "" for queues that keep
// nothing.
func (q *Queue) StoreKey() string {
	if q.entries == nil {
		return ""
	}
	return q.entries.key
}
