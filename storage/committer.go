package storage

import (
	"encoding/binary"
	"time"

	"github.com/warrenmq/warren/storage/wal"
)

// committer applies the batches submitted to a Store, a group at a time,
// and runs their callbacks. Its goroutine (run) owns every field: nothing
// else reads or writes them, so they need no lock. What it shares with
// submitters is the Store's intake, under Store.mu.
type committer struct {
	s *Store

	// expect is how many owners the next group should have; gather waits
	// for them. See expected.
	expect int
	// lastOwners are the owners of the group being committed. take swaps
	// it with the intake's owners, so neither map is made again.
	lastOwners map[any]struct{}
	timer      *time.Timer // gather's, reused
	spare      []request   // the last group's slice, reused as the next pending list
	// index is the journal index of the last record appended.
	index  uint64
	synced chan error // the journal's callback for the last record of a group
}

func newCommitter(s *Store, index uint64) *committer {
	return &committer{
		s:          s,
		lastOwners: make(map[any]struct{}),
		index:      index,
		synced:     make(chan error, 1),
	}
}

// run commits a group whenever batches are pending, until Close; then it
// commits what is still pending and exits.
func (c *committer) run() {
	defer close(c.s.stopped)
	for {
		select {
		case <-c.s.kick:
			c.gather()
			c.commitPending()
		case <-c.s.closeCh:
			for c.commitPending() {
			}
			return
		}
	}
}

// gather waits, up to MaxBatchDelay, for the owners the next group is
// expected to have, so that they share its fsync. It stops waiting as soon
// as they have all submitted or MaxBatchOps writes are pending (the full
// signal), or at Close. A lone publisher (expect 1) never waits.
func (c *committer) gather() {
	d := c.s.opts.MaxBatchDelay
	if d == 0 || c.expect <= 1 || !c.startWait() {
		return
	}
	select { // a stale signal must not cut this wait short
	case <-c.s.full:
	default:
	}
	if c.timer == nil {
		c.timer = time.NewTimer(d)
	} else {
		c.timer.Reset(d)
	}
	select {
	case <-c.timer.C:
	case <-c.s.full:
	case <-c.s.closeCh:
	}
	c.timer.Stop()
	c.s.mu.Lock()
	c.s.in.want = 0
	c.s.mu.Unlock()
}

// startWait reports whether the group pending is short of what is expected,
// and if so sets the intake's want, so that the submitter who completes it
// signals full.
func (c *committer) startWait() bool {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.in.owners) >= c.expect || s.in.pendingOps >= s.opts.MaxBatchOps {
		return false
	}
	s.in.want = c.expect
	return true
}

// commitPending commits everything pending, and reports whether there was
// anything.
func (c *committer) commitPending() bool {
	group := c.take()
	if len(group) == 0 {
		return false
	}
	c.commit(group)
	c.expect = c.expected()
	clear(group) // drop the batches
	c.spare = group[:0]
	return true
}

// take swaps out the pending list and the owners that submitted it, and lets
// the publishers held by Throttle go.
func (c *committer) take() []request {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	group := s.in.pending
	s.in.pending = c.spare[:0]
	s.in.pendingOps = 0
	s.backlog.Store(0)
	s.releaseThrottledLocked()
	s.in.owners, c.lastOwners = c.lastOwners, s.in.owners
	clear(s.in.owners)
	return group
}

// expected returns how many owners the next group should have. The callers
// just released will mostly submit again soon (a publisher waiting for each
// confirm); together with those that arrived during the commit they are the
// next group worth waiting for. A lone publisher, however many messages it
// has in flight, gives 1: no wait at all.
func (c *committer) expected() int {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	n := len(c.lastOwners)
	for o := range c.s.in.owners {
		if _, ok := c.lastOwners[o]; !ok {
			n++
		}
	}
	return n
}

// commit makes group durable in the journal with one fdatasync, tells the
// submitters, and hands the group to the applier; barriers and Commit
// callers hear from the applier once it is readable in bbolt. A group
// holding a batch too large for a journal record goes to bbolt directly.
func (c *committer) commit(group []request) {
	s := c.s
	ops, size, limit := 0, 8, maxRecord(s.opts.JournalSegmentSize)
	for i := range group {
		n := batchSize(group[i].b)
		if n > limit-8 {
			c.commitDirect(group)
			return
		}
		ops += len(group[i].b.ops)
		size += n
	}
	var err error
	var recs [][]byte
	bytes := 0
	if ops > 0 {
		s.stats.commits.Add(1)
		if err = s.fault(); err == nil {
			if recs, bytes, err = c.journal(group, size, limit); err != nil {
				// The log is unusable (its errors are sticky), and some
				// of the group's records may be durable all the same.
				s.breakStore(err)
			}
		}
		if err != nil {
			s.stats.failures.Add(1)
		}
	}
	s.stats.batches.Add(uint64(len(group)))
	s.stats.ops.Add(uint64(ops))
	it := applyItem{recs: recs, seq: group[len(group)-1].seq, err: err}
	if err == nil {
		it.ops, it.bytes, it.index = ops, bytes, c.index
		s.unapplied.Add(int64(ops))
		s.unappliedBytes.Add(int64(bytes))
	}
	for i := range group {
		if r := &group[i]; r.ch != nil || len(r.b.ops) == 0 {
			it.waiters = append(it.waiters, *r)
		} else {
			r.finish(err)
		}
	}
	s.ap.push(it)
}

// journal encodes group (size bytes at most) into records of at most limit
// bytes, split between batches, appends them and waits for the one
// fdatasync that makes them durable.
func (c *committer) journal(group []request, size, limit int) (recs [][]byte, bytes int, err error) {
	buf := make([]byte, 0, size+8*(size/limit+1))
	high := binary.LittleEndian.AppendUint64(nil, c.s.nextID.Load())
	start := len(buf)
	buf = append(buf, high...)
	for i := range group {
		b := group[i].b
		if len(b.ops) == 0 {
			continue
		}
		if len(buf)-start > 8 && len(buf)-start+batchSize(b) > limit {
			recs = append(recs, buf[start:len(buf):len(buf)])
			start = len(buf)
			buf = append(buf, high...)
		}
		buf = appendOps(buf, b)
	}
	recs = append(recs, buf[start:])
	for i, r := range recs {
		c.index++
		var done func(error)
		if i == len(recs)-1 {
			done = c.done
		}
		if err := c.s.wal.Append(wal.Record{Stream: journalStream, Kind: journalKindOps, Index: c.index, Payload: r}, done); err != nil {
			return nil, 0, err
		}
	}
	if err := <-c.synced; err != nil {
		return nil, 0, err
	}
	return recs, len(buf), nil
}

// done is the journal's callback for a group's last record.
func (c *committer) done(err error) { c.synced <- err }

// commitDirect writes group straight into bbolt, after the applier has
// applied everything before it, and tells its callers.
func (c *committer) commitDirect(group []request) {
	s := c.s
	ops := 0
	for i := range group {
		ops += len(group[i].b.ops)
	}
	ch := make(chan error, 1)
	s.ap.push(applyItem{direct: group, seq: group[len(group)-1].seq, directDone: ch})
	err := <-ch
	s.stats.commits.Add(1)
	if err != nil {
		s.stats.failures.Add(1)
	}
	s.stats.batches.Add(uint64(len(group)))
	s.stats.ops.Add(uint64(ops))
	for i := range group {
		group[i].finish(err)
	}
}
