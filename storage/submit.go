package storage

// request is one submitted batch: exactly one of done and ch is set.
type request struct {
	b    *Batch
	done func(error)
	ch   chan error // Commit's waiter; avoids a closure allocation per call
	seq  uint64     // submission number, see Submitted
	// background requests (SubmitBackground) have nobody waiting for them,
	// so the committer does not wait for more of them either.
	background bool
}

// finish tells r's caller how its commit ended.
func (r *request) finish(err error) {
	if r.ch != nil {
		r.ch <- err
	} else {
		r.done(err)
	}
}

// Submit queues b for the next group commit and returns at once. done(err)
// runs on the committer goroutine once the commit is over: err nil means b's
// writes are on disk. Batches commit in the order they were submitted.
//
// done must be quick and must not call Commit (the committer would wait for
// itself); it may call Submit. b and its values must not be modified until
// done runs. An invalid batch, or one submitted after Close, gets its error
// through done on the caller's goroutine, before Submit returns.
func (s *Store) Submit(b *Batch, done func(error)) {
	if err := s.enqueue(request{b: b, done: done}); err != nil {
		done(err)
	}
}

// SubmitBackground is Submit for writes nobody waits for (acks, expiry,
// deletes): they join the next group like any other, but the committer does
// not delay a commit expecting more of them.
func (s *Store) SubmitBackground(b *Batch, done func(error)) {
	if err := s.enqueue(request{b: b, done: done, background: true}); err != nil {
		done(err)
	}
}

// Commit submits b and waits until it is on disk or has failed. Committing an
// empty Batch is a barrier: it returns once everything submitted before it is
// on disk.
func (s *Store) Commit(b *Batch) error {
	ch := s.chans.Get().(chan error)
	if err := s.enqueue(request{b: b, ch: ch}); err != nil {
		s.chans.Put(ch)
		return err
	}
	err := <-ch
	s.chans.Put(ch)
	return err
}

// Flush returns once every batch submitted before it is on disk (or failed).
func (s *Store) Flush() error { return s.Commit(&Batch{}) }

// Submitted returns how many batches have been submitted so far; pass it to
// WaitCommitted to wait for those.
func (s *Store) Submitted() uint64 { return s.submitted.Load() }

// Committed returns how many of the submitted batches have been committed
// (or failed).
func (s *Store) Committed() uint64 { return s.committed.Load() }

// WaitCommitted returns once the first n submitted batches have been
// committed (or failed): at once if they have, else like Flush.
func (s *Store) WaitCommitted(n uint64) error {
	if s.committed.Load() >= n {
		return nil
	}
	return s.Flush()
}

// DropEntries deletes all of queue's entries, and with them their references,
// in transactions of at most MaxBatchOps deletes, then the queue's bucket. It
// waits for each; run it off any hot path. Entries put meanwhile are deleted
// too.
func (s *Store) DropEntries(queue string) error {
	for {
		var b Batch
		err := s.Scan(queue, 0, func(seq uint64, _ []byte, _ func(uint64) []byte) bool {
			b.DeleteEntry(queue, seq)
			return b.Len() < s.opts.MaxBatchOps
		})
		if err != nil {
			return err
		}
		if b.Len() == 0 {
			break
		}
		if err := s.Commit(&b); err != nil {
			return err
		}
	}
	var b Batch
	b.DeleteQueue(queue)
	return s.Commit(&b)
}

// enqueue appends r to the pending list and wakes the committer: with kick
// when the list was empty, and with full when r completes the group the
// committer waits for (the owners it expects, or MaxBatchOps writes).
func (s *Store) enqueue(r request) error {
	if r.b.err != nil {
		return r.b.err
	}
	s.mu.Lock()
	in := &s.in
	if in.closing {
		s.mu.Unlock()
		return ErrClosed
	}
	if err := s.broken.Load(); err != nil {
		s.mu.Unlock()
		return *err
	}
	wasEmpty := len(in.pending) == 0
	before := in.pendingOps
	r.seq = s.submitted.Add(1)
	in.pending = append(in.pending, r)
	in.pendingOps += len(r.b.ops)
	after := in.pendingOps
	s.backlog.Store(int64(after))
	if !r.background {
		in.owners[r.b.owner()] = struct{}{}
	}
	full := (in.want > 0 && len(in.owners) >= in.want) ||
		(before < s.opts.MaxBatchOps && after >= s.opts.MaxBatchOps)
	s.mu.Unlock()
	if wasEmpty {
		signal(s.kick)
	}
	if full {
		signal(s.full)
	}
	return nil
}

// signal sends on a channel of capacity 1 unless a signal is there already.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
