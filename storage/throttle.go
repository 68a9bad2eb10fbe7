package storage

// Flow control: Throttle holds publishers while the committer is behind;
// the committer lets them go each time it takes the pending writes, and
// Close lets them all go.

// Throttle blocks while more than MaxPendingOps writes wait for the
// committer. Publishers call it so that they slow down to what the disk
// takes, as RabbitMQ's flow control slows them, rather than queue writes in
// memory without bound (a backlog paged to disk writes every message).
func (s *Store) Throttle() {
	if s.backlog.Load() <= int64(s.opts.MaxPendingOps) {
		return
	}
	s.mu.Lock()
	for s.in.pendingOps > s.opts.MaxPendingOps && !s.in.closing {
		s.in.throttled = true
		ch := s.in.drained
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	s.mu.Unlock()
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
