// Package storage is Warren's durable store: definitions, message bodies and
// per-queue entries in one bbolt file, written by group commit through a
// write-ahead journal.
//
// Storage knows bytes, keys and batches; the broker encodes the values.
// Every write goes through a Batch handed to Submit or Commit. One committer
// goroutine gathers the batches of all callers and makes them durable in the
// journal with one fdatasync, so many publishers share one; a batch's
// callback runs only once its writes are on disk ("confirmed = fsynced").
// The applier writes them into the bbolt file behind (journal.go).
//
// Layout of the file (all keys of ids and seqs are big-endian uint64, so
// bbolt's cursor order is numeric order):
//
//	meta/format           uint32 storage format version
//	meta/last-id          uint64 high-water mark of NextMessageID
//	definitions/<kind>/<key>  opaque definition value
//	messages/<id>         message value
//	refs/<id>             uint32 entries referencing the message, when more than one
//	entries/<queue>/<seq> entry value: the referenced message id, then the caller's bytes
//
// A message lives as long as entries reference it: deleting an entry drops
// its reference in the same transaction, and the last one deletes the
// message, so a crash can neither orphan a message nor lose a shared one.
//
// The files, by concern: store.go the Store and its lifecycle; open.go
// opening, the format version and its upgrade, replaying the journal;
// journal.go the journal's records; applier.go applying them to bbolt; read.go the reads; mapped.go
// releasing the pages reads leave mapped; submit.go handing batches to the
// committer; throttle.go flow control; committer.go the committer goroutine;
// txn.go applying one group in a transaction; cancel.go the puts a group
// need not write; refs.go reference counting; batch.go the Batch.
package storage

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/warrenmq/warren/storage/wal"
)

// FileName is the name of the database file inside the data directory.
const FileName = "warren.db"

// Errors of Open; each is wrapped with the path, so test them with errors.Is.
var (
	// ErrLocked: another process holds the data directory.
	ErrLocked = errors.New("storage: data directory is in use by another process")
	// ErrNewerFormat: the file was written by a newer Warren.
	ErrNewerFormat = errors.New("storage: data file has a newer format version")
	// ErrCorrupt: the file is not a readable Warren store.
	ErrCorrupt = errors.New("storage: data file is corrupt or not a Warren store")
)

// ErrClosed is returned by every method once Close has begun; a batch
// submitted after Close gets it through its callback.
var ErrClosed = errors.New("storage: store is closed")

// ErrNotFound is returned by Message when no message has that id.
var ErrNotFound = errors.New("storage: not found")

var (
	bucketMeta        = []byte("meta")
	bucketDefinitions = []byte("definitions")
	bucketMessages    = []byte("messages")
	bucketEntries     = []byte("entries")
	bucketRefs        = []byte("refs")

	keyFormat = []byte("format")
	keyLastID = []byte("last-id")
)

// Defaults of Options.
const (
	DefaultMaxBatchDelay = time.Millisecond
	DefaultMaxBatchOps   = 10000
)

// Options tunes a Store. The zero value gives the defaults.
type Options struct {
	// MaxBatchDelay bounds how long the committer waits for more writes
	// before committing. It waits only for writers it expects: those whose
	// callbacks the previous commit just ran (they typically submit again at
	// once) plus those that arrived meanwhile. So a lone publisher never waits,
	// and concurrent publishers gather into one group instead of alternating
	// between two half-size groups. Default 1ms; negative: never wait, commit
	// as soon as the committer is free.
	MaxBatchDelay time.Duration
	// MaxBatchOps caps one transaction: when this many writes are pending the
	// committer stops waiting, and a larger group is split (between batches,
	// never inside one) into transactions of about this size, which bounds
	// the memory of one transaction. Default 10000.
	MaxBatchOps int
	// MaxPendingOps is how many writes may wait for the committer before
	// Throttle holds publishers back. Default 5 × MaxBatchOps.
	MaxPendingOps int
	// MaxPendingBytes is how many bytes of journaled writes may wait for
	// the applier before Throttle holds publishers back. Default 64 MiB.
	MaxPendingBytes int64
	// JournalSegmentSize is the size of the journal's segment files
	// (journal.go); a batch larger than half of it bypasses the journal.
	// Default DefaultJournalSegmentSize.
	JournalSegmentSize int64
	// NoSync skips bbolt's fsync. For tests only: nothing is durable.
	NoSync bool
	// Fault, for tests, runs inside every commit before it is written; an
	// error fails the commit as a full or broken disk would.
	Fault func() error
}

// withDefaults returns o with its zero fields set to the defaults, and a
// negative MaxBatchDelay as 0 (never wait).
func (o Options) withDefaults() Options {
	if o.MaxBatchOps <= 0 {
		o.MaxBatchOps = DefaultMaxBatchOps
	}
	if o.MaxPendingOps <= 0 {
		o.MaxPendingOps = 5 * o.MaxBatchOps
	}
	if o.MaxPendingBytes <= 0 {
		o.MaxPendingBytes = 64 << 20
	}
	if o.JournalSegmentSize <= 0 {
		o.JournalSegmentSize = DefaultJournalSegmentSize
	}
	switch {
	case o.MaxBatchDelay == 0:
		o.MaxBatchDelay = DefaultMaxBatchDelay
	case o.MaxBatchDelay < 0:
		o.MaxBatchDelay = 0
	}
	return o
}

// Stats counts the committer's work since Open.
type Stats struct {
	Commits   uint64 // bbolt write transactions attempted by the committer
	Failures  uint64 // of those, how many failed
	Batches   uint64 // batches committed (or failed)
	Ops       uint64 // writes in those batches
	Cancelled uint64 // puts skipped because a later delete in the same apply removed them
	Applies   uint64 // bbolt write transactions (applying the journal, or direct)
	Replayed  uint64 // journal records Open applied again after a crash

	// Journal is the write-ahead log's own counters: Syncs per Commits
	// (less Failures) is the fdatasyncs a group commit costs.
	Journal wal.Stats
}

// Store is Warren's durable store. All methods are safe for concurrent use.
//
// Submitters append their batches to in under mu; the committer goroutine
// (committer.go) swaps the whole list out under mu and commits it. Nothing
// else is shared between them: the committer's own state is in its type.
type Store struct {
	db   *bolt.DB
	path string
	opts Options

	// mu guards every field of in: the pending list (pending, pendingOps),
	// the committer's wait (owners, want), closing, and flow control
	// (throttled, drained). submitted and backlog change only under it, so
	// that they follow pending, and are read without it. It is held only
	// to append to or swap out the pending list and to read or change the
	// state beside it; no callback, bbolt call or channel send happens
	// under it (closing drained is the one channel operation). It is a
	// leaf: nothing else is locked while it is held.
	mu sync.Mutex
	in intake // guarded by mu

	// submitted counts the batches submitted so far (see mu).
	submitted atomic.Uint64
	// committed is the submission number of the last batch committed (or
	// failed); written by the committer only.
	committed atomic.Uint64
	// backlog mirrors in.pendingOps for Throttle's lock-free fast path
	// (see mu).
	backlog atomic.Int64

	// wal is the journal (journal.go); ap applies it to db (applier.go).
	wal *wal.Log
	ap  *applier
	// unapplied and unappliedBytes count the journaled writes the applier
	// has not applied yet, for Throttle.
	unapplied, unappliedBytes atomic.Int64
	// broken is set once the journal or an apply has failed: bbolt no
	// longer follows what was confirmed, so nothing more is accepted.
	broken atomic.Pointer[error]

	kick    chan struct{} // cap 1: pending went from empty to non-empty
	full    chan struct{} // cap 1: in.owners reached in.want, or pendingOps reached MaxBatchOps
	closeCh chan struct{} // closed by Close: drain and stop
	stopped chan struct{} // closed by the committer when it has exited

	closeOnce sync.Once
	closeErr  error

	nextID atomic.Uint64 // last id handed out by NextMessageID
	// touched estimates the bytes of the file that reads (Scan) and writes
	// (commits read the pages they change through the map) have made
	// resident since the mapping's pages were last released (mapped.go).
	touched atomic.Int64

	chans sync.Pool // chan error for Commit, reused

	// beforeCommit, set by tests in this package, runs inside the commit's
	// transaction after the writes; an error fails (rolls back) the commit.
	beforeCommit atomic.Pointer[func() error]

	stats struct {
		commits, failures, batches, ops, cancelled, applies, replayed atomic.Uint64
	}
}

// intake is what submitters hand to the committer: the batches waiting for
// the next group commit and the state of the committer's wait for them.
// Every field is guarded by Store.mu.
type intake struct {
	pending    []request // batches waiting for the next group commit, in submission order
	pendingOps int       // writes in pending
	// owners are the distinct owners (Batch.Owner) of the pending batches
	// that are not background. The committer waits for the owners it
	// expects, not for a count of batches: a publisher with 100 unconfirmed
	// messages is one owner, and waiting for 100 batches from it only adds
	// latency.
	owners  map[any]struct{}
	want    int  // while the committer waits: the owner count that ends the wait; else 0
	closing bool // Close has begun; Submit refuses

	// Flow control (throttle.go): throttled says somebody waits in Throttle
	// for drained to close; the committer closes it when it takes pending.
	throttled bool
	drained   chan struct{}
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Close commits every batch submitted before it, stops the committer and
// closes the file. Later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.in.closing = true
		s.releaseThrottledLocked() // nobody waits in Throttle for a closed store
		s.mu.Unlock()
		close(s.closeCh)
		<-s.stopped
		s.ap.close()
		werr := s.wal.Close()
		s.closeErr = s.db.Close()
		if s.closeErr == nil && werr != nil {
			s.closeErr = fmt.Errorf("storage: journal: %w", werr)
		}
	})
	return s.closeErr
}

// Stats returns the committer's counters.
func (s *Store) Stats() Stats {
	return Stats{
		Commits:   s.stats.commits.Load(),
		Failures:  s.stats.failures.Load(),
		Batches:   s.stats.batches.Load(),
		Ops:       s.stats.ops.Load(),
		Cancelled: s.stats.cancelled.Load(),
		Applies:   s.stats.applies.Load(),
		Replayed:  s.stats.replayed.Load(),
		Journal:   s.wal.Stats(),
	}
}

// breakStore records the failure after which bbolt no longer follows the
// journal; every later submission fails with it.
func (s *Store) breakStore(err error) {
	err = fmt.Errorf("storage: %w", err)
	s.broken.CompareAndSwap(nil, &err)
}

// NextMessageID returns a new message id: unique and increasing, also across
// restarts. Each commit records the high-water mark, so an id that reached
// the disk in any form is never handed out again.
func (s *Store) NextMessageID() uint64 { return s.nextID.Add(1) }
