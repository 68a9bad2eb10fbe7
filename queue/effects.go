package queue

import "github.com/warrenmq/warren/storage"

// effects is what an operation under Queue.mu leaves to do once the lock
// is released: dead letters to route, writes to submit, a message to
// release. Locked code only collects them; Queue.unlock does them, so
// nothing that can call back into the queue runs under its lock by
// construction: the dead-letter hook publishes to other queues (maybe this
// one), and storage runs a submission's callback on the submitting
// goroutine when the store is closed. (A requeue's rewritten entries are
// the exception: they are submitted under the lock, see Requeue.)
type effects struct {
	// batch collects the operation's removals and writes; nil until one is
	// needed.
	batch *storage.Batch
	// callers: batch is the one the caller passed to Push, which the caller
	// submits (removals go with the entry they follow).
	callers     bool
	deadLetters []DeadLetter
	// release is a message written in batch (a transient one paged out):
	// it becomes deliverable once batch is submitted.
	release *Message
	// prune asks for an empty background batch after which
	// pruneAfterCommit forgets the recent paged messages now on disk.
	prune bool
}

// writes returns the operation's batch, made on first use.
func (fx *effects) writes() *storage.Batch {
	if fx.batch == nil {
		fx.batch = new(storage.Batch)
	}
	return fx.batch
}

func (fx *effects) deadLetter(m *Message, r Reason) {
	fx.deadLetters = append(fx.deadLetters, DeadLetter{Message: m, Reason: r})
}

// unlock checks the invariants (in the invariants build), releases q.mu
// and does what the operation left: the dead letters go first, so that
// they are stored at their new home before the removals that made them
// reach the disk (a crash in between duplicates rather than loses); then
// the writes; then a message written in them is released.
func (q *Queue) unlock(fx *effects) {
	q.checkLocked()
	q.mu.Unlock()
	if fx.batch != nil || fx.deadLetters != nil || fx.release != nil || fx.prune {
		q.finish(fx) // most operations leave nothing: keep unlock inlined
	}
}

func (q *Queue) finish(fx *effects) {
	q.deadLetter(fx.deadLetters)
	if !fx.callers {
		q.submit(fx.batch)
	}
	if fx.prune {
		q.entries.store.SubmitBackground(&storage.Batch{}, q.pruneAfterCommit)
	}
	if fx.release != nil {
		q.Release(fx.release)
	}
}
