package storage

// Flow control: Throttle holds publishers while the committer is behind;
// the committer lets them go each time it takes the pending writes, and
// Close lets them all go.

// Throttle blocks while more than MaxPendingOps writes wait for the
// committer or the applier, or more than MaxPendingBytes for the applier. Publishers call it so that they slow down to what the disk
// takes, as RabbitMQ's flow control slows them, rather than queue writes in
// memory without bound (a backlog paged to disk writes every message).
func (s *Store) Throttle() {
	if !s.behind(s.backlog.Load()) {
		return
	}
	s.mu.Lock()
	for s.behind(int64(s.in.pendingOps)) && !s.in.closing {
		s.in.throttled = true
		ch := s.in.drained
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	s.mu.Unlock()
}

// behind reports whether the committer and the applier are too far behind,
// with pending writes waiting for the committer.
func (s *Store) behind(pending int64) bool {
	return pending+s.unapplied.Load() > int64(s.opts.MaxPendingOps) ||
		s.unappliedBytes.Load() > s.opts.MaxPendingBytes
}

// releaseThrottled is releaseThrottledLocked for the applier, which has
// just applied writes.
func (s *Store) releaseThrottled() {
	s.mu.Lock()
	s.releaseThrottledLocked()
	s.mu.Unlock()
}

// Throttling reports whether Throttle may block now. It does not block.
func (s *Store) Throttling() bool {
	return s.behind(s.backlog.Load())
}

// releaseThrottledLocked lets go whoever waits in Throttle; they look at
// the backlog again. s.mu must be held.
func (s *Store) releaseThrottledLocked() {
	if s.in.throttled {
		close(s.in.drained)
		s.in.drained = make(chan struct{})
		s.in.throttled = false
	}
}
