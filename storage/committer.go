package storage

import "time"

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
	// lastIDOut is the message id high-water mark known to be on disk: ids
	// up to it may be in use after a restart.
	lastIDOut uint64
	txn       txn // the state of one transaction, reused (txn.go)
}

func newCommitter(s *Store, lastID uint64) *committer {
	return &committer{
		s:          s,
		lastOwners: make(map[any]struct{}),
		lastIDOut:  lastID,
		txn:        newTxn(),
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
	for rest := group; len(rest) > 0; {
		n, ops := c.nextTxn(rest)
		c.commit(rest[:n], ops)
		rest = rest[n:]
	}
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

// nextTxn returns how many of group's first batches go into one transaction,
// and how many writes they hold: batches while they fit in MaxBatchOps, at
// least one. A batch is never split.
func (c *committer) nextTxn(group []request) (n, ops int) {
	for n < len(group) && (n == 0 || ops+len(group[n].b.ops) <= c.s.opts.MaxBatchOps) {
		ops += len(group[n].b.ops)
		n++
	}
	return n, ops
}

// commit writes reqs, holding ops writes, in one transaction and tells
// their callers how it went.
func (c *committer) commit(reqs []request, ops int) {
	s := c.s
	var err error
	// Empty batches are barriers (Flush, WaitCommitted, a queue waiting for
	// its writes): everything before them is committed already, so a group
	// of nothing else needs no transaction, and no fsync.
	if ops > 0 {
		err = c.write(reqs, ops)
		s.touchWrites(ops)
		s.stats.commits.Add(1)
		if err != nil {
			s.stats.failures.Add(1)
		}
	}
	s.stats.batches.Add(uint64(len(reqs)))
	s.stats.ops.Add(uint64(ops))
	s.committed.Store(reqs[len(reqs)-1].seq)
	for i := range reqs {
		reqs[i].finish(err)
	}
}
