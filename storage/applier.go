package storage

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/storage/wal"
)

// maxApplyOps caps one apply transaction, in ops; a larger backlog is
// applied in several.
const maxApplyOps = 100_000

// applyDelay is how long journaled writes may wait for the applier when
// nobody waits for them. A bbolt transaction costs two fsyncs on the disk
// the journal syncs to; applying every group would double the syncs the
// journal saved. Waiting lets many groups share a transaction, and a
// message published and acked within the delay never reaches bbolt.
// Commit and Flush callers, and a backlog of MaxBatchOps writes (so that
// applying keeps pace with a publisher long before Throttle holds it), do
// not wait.
const applyDelay = 50 * time.Millisecond

// applyItem is one committed group on its way to bbolt.
type applyItem struct {
	recs  [][]byte // its journal records, in order
	ops   int      // ops in recs
	bytes int      // bytes in recs
	index uint64   // the last record's journal index (0: none)
	seq   uint64   // submission number of the group's last batch
	// waiters are the group's barriers and Commit callers: they learn the
	// outcome once the group is readable in bbolt.
	waiters []request
	err     error // the group failed before the journal: nothing to apply
	// direct is a group with a batch too large for a journal record: it is
	// written straight into bbolt, after everything before it, and its
	// outcome sent on directDone.
	direct     []request
	directDone chan error
}

// applier writes the journal's records into bbolt, in order, many groups
// per transaction, and checkpoints the journal behind them. Its goroutine
// (run) owns txn, lastIDOut, applied and broken; the queue is shared with
// the committer under mu.
type applier struct {
	s *Store

	mu      sync.Mutex    // guards queue, urgent and closing
	queue   []applyItem   // groups committed to the journal, not yet applied
	urgent  bool          // queue holds a group somebody waits for
	closing bool          // Close has begun: apply what is queued, then stop
	kick    chan struct{} // cap 1: queue went from empty to non-empty
	now     chan struct{} // cap 1: apply without waiting for applyDelay
	stopped chan struct{}

	txn       txn
	lastIDOut uint64 // id high-water mark on disk (see Store.NextMessageID)
	applied   uint64 // journal index applied and checkpointed (lazily)
	broken    error  // a failed apply: bbolt no longer follows the journal
	scratch   Batch  // decoded ops of one transaction, reused

	// hold, set by tests in this package, runs before each apply: a test
	// that blocks in it keeps writes in the journal only.
	hold atomic.Pointer[func()]
}

func newApplier(s *Store, lastID uint64) *applier {
	return &applier{
		s:         s,
		kick:      make(chan struct{}, 1),
		now:       make(chan struct{}, 1),
		stopped:   make(chan struct{}),
		txn:       newTxn(),
		lastIDOut: lastID,
	}
}

// push queues a committed group.
func (a *applier) push(it applyItem) {
	urgent := it.direct != nil
	for i := range it.waiters {
		urgent = urgent || it.waiters[i].ch != nil
	}
	a.mu.Lock()
	a.queue = append(a.queue, it)
	first := len(a.queue) == 1
	a.urgent = a.urgent || urgent
	a.mu.Unlock()
	if first {
		signal(a.kick)
	}
	if urgent || a.due() {
		signal(a.now)
	}
}

// due reports whether the journal's backlog is large enough to apply now.
func (a *applier) due() bool {
	s := a.s
	return s.unapplied.Load() >= int64(s.opts.MaxBatchOps) || s.unappliedBytes.Load() >= s.opts.MaxPendingBytes/4
}

// close makes run apply what is queued and return.
func (a *applier) close() {
	a.mu.Lock()
	a.closing = true
	a.mu.Unlock()
	signal(a.kick)
	signal(a.now)
	<-a.stopped
}

// run applies queued groups until close, each no later than applyDelay
// after it was journaled.
func (a *applier) run() {
	defer close(a.stopped)
	var items []applyItem
	timer := time.NewTimer(applyDelay)
	timer.Stop()
	for {
		a.mu.Lock()
		empty, urgent, closing := len(a.queue) == 0, a.urgent, a.closing
		a.mu.Unlock()
		if empty {
			if closing {
				return
			}
			select {
			case <-a.kick:
			case <-a.now:
			}
			continue
		}
		if !urgent && !closing && !a.due() {
			timer.Reset(applyDelay)
			select {
			case <-timer.C:
			case <-a.now:
			}
			timer.Stop()
		}
		a.mu.Lock()
		items, a.queue = a.queue, items[:0]
		a.urgent = false
		a.mu.Unlock()
		if h := a.hold.Load(); h != nil {
			(*h)()
		}
		a.process(items)
		clear(items)
	}
}

// process applies items in order: runs of journal groups in transactions
// of up to maxApplyOps, direct groups one at a time.
func (a *applier) process(items []applyItem) {
	for i := 0; i < len(items); {
		if items[i].direct != nil {
			a.applyDirect(&items[i])
			i++
			continue
		}
		j, ops := i, 0
		for j < len(items) && items[j].direct == nil && (j == i || ops+items[j].ops <= maxApplyOps) {
			ops += items[j].ops
			j++
		}
		a.applyJournal(items[i:j], ops)
		i = j
	}
}

// applyJournal writes the records of items, holding ops ops, in one
// transaction, then checkpoints the journal after them and tells the
// waiters.
func (a *applier) applyJournal(items []applyItem, ops int) {
	s := a.s
	err := a.broken
	var last uint64
	bytes := 0
	if err == nil && ops > 0 {
		b := &a.scratch
		for _, it := range items {
			for _, r := range it.recs {
				if _, err = decodeRecord(r, b); err != nil {
					break
				}
			}
			if it.index != 0 {
				last = it.index
			}
		}
		if err == nil {
			err = a.write([]request{{b: b}}, len(b.ops), false)
		}
		b.Reset()
		if err != nil {
			a.broken = err
			s.breakStore(err)
		} else if last != 0 {
			// Lazily: the checkpoint travels with the next group's
			// fdatasync (or Close), never costing one of its own. Until
			// then a crash replays records already applied, which is
			// harmless (replay.go).
			a.applied = last
			_ = s.wal.CheckpointLazy(journalStream, last+1)
		}
	}
	for _, it := range items {
		bytes += it.bytes
	}
	s.unapplied.Add(-int64(ops))
	s.unappliedBytes.Add(-int64(bytes))
	s.committed.Store(items[len(items)-1].seq)
	s.releaseThrottled()
	for _, it := range items {
		for i := range it.waiters {
			werr := err
			if it.err != nil {
				werr = it.err
			}
			it.waiters[i].finish(werr)
		}
	}
}

// applyDirect writes a group that bypasses the journal straight into bbolt.
// Every record before it is applied already; its checkpoint is made durable
// first, so that a restart never replays those records over this write.
func (a *applier) applyDirect(it *applyItem) {
	s := a.s
	err := a.broken
	if err == nil && a.applied != 0 {
		ch := make(chan error, 1)
		if err = s.wal.Checkpoint(journalStream, a.applied+1, func(e error) { ch <- e }); err == nil {
			err = <-ch
		}
	}
	if err == nil {
		ops := 0
		for _, r := range it.direct {
			ops += len(r.b.ops)
		}
		for rest := it.direct; len(rest) > 0; {
			n, nops := 0, 0
			for n < len(rest) && (n == 0 || nops+len(rest[n].b.ops) <= s.opts.MaxBatchOps) {
				nops += len(rest[n].b.ops)
				n++
			}
			if err = a.write(rest[:n], nops, true); err != nil {
				break
			}
			rest = rest[n:]
		}
	}
	s.committed.Store(it.seq)
	it.directDone <- err
}

// replay applies the records a restart found in the journal, in order, in
// transactions of up to maxApplyOps, before the store serves anything.
// Records applied before the crash are applied again; the ops are
// idempotent in sequence (puts and deletes of keys; a deleted entry drops
// its reference only if it was there), so the result is the same.
func (a *applier) replay(recs []wal.Record) (highID, lastIndex uint64, err error) {
	b := &a.scratch
	defer b.Reset()
	for i, r := range recs {
		h, err := decodeRecord(r.Payload, b)
		if err != nil {
			return 0, 0, err
		}
		highID = max(highID, h)
		lastIndex = r.Index
		a.s.stats.replayed.Add(1)
		if len(b.ops) >= maxApplyOps || i == len(recs)-1 {
			a.s.nextID.Store(max(a.s.nextID.Load(), highID))
			if err := a.write([]request{{b: b}}, len(b.ops), false); err != nil {
				return 0, 0, err
			}
			b.Reset()
		}
	}
	return highID, lastIndex, nil
}
