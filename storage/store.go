// Package storage is Warren's durable store: definitions, message bodies and
// per-queue entries in one bbolt file, written by group commit.
//
// Storage knows bytes, keys and batches; the broker encodes the values.
// Every write goes through a Batch handed to Submit or Commit. One committer
// goroutine gathers the batches of all callers and applies them in one bbolt
// transaction, so many publishers share one fsync; a batch's callback runs
// only once its writes are on disk ("confirmed = fsynced").
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
package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FormatVersion is the storage format this package writes and reads. Open
// refuses a file with a newer version rather than misread it.
const FormatVersion = 2

// Format 1 kept no reference counts: the broker counted references in memory
// and collected unreferenced messages at start. Open upgrades such a file by
// counting the entries once.

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

// lockTimeout is how long Open waits for bbolt's file lock. A second broker on
// the same directory should fail fast, not hang.
const lockTimeout = 200 * time.Millisecond

// idBlock is how many message ids one write of meta/last-id reserves.
const idBlock = 1 << 16

// Defaults of Options.
const (
	DefaultMaxBatchDelay = time.Millisecond
	DefaultMaxBatchOps   = 10000
)

// fillPercent for buckets whose keys grow (message ids, entry seqs): pages
// split fuller because inserts land at the end, so less space is wasted than
// with bbolt's default 0.5.
const fillPercent = 0.9

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
	// NoSync skips fsync. For tests only: nothing is durable.
	NoSync bool
	// Fault, for tests, runs inside every commit before it is written; an
	// error fails the commit as a full or broken disk would.
	Fault func() error
}

// Stats counts the committer's work since Open.
type Stats struct {
	Commits   uint64 // bbolt write transactions attempted by the committer
	Failures  uint64 // of those, how many failed
	Batches   uint64 // batches committed (or failed)
	Ops       uint64 // writes in those batches
	Cancelled uint64 // puts skipped because a later delete in the same group removed them
}

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

// Store is Warren's durable store. All methods are safe for concurrent use.
//
// Locking: mu is the only mutex and is held only to append to or swap the
// pending list; no callback, bbolt call or channel send happens under it.
type Store struct {
	db   *bolt.DB
	path string
	opts Options

	mu sync.Mutex // guards pending, pendingOps, want, closing, throttled, drained
	// submitted counts the batches submitted so far; it changes under mu,
	// so that it follows submission order, and is read without it.
	submitted atomic.Uint64
	// backlog mirrors pendingOps for Throttle's lock-free fast path.
	backlog atomic.Int64
	// throttled: someone waits in Throttle for drained to close.
	throttled bool
	drained   chan struct{}
	// owners are the distinct owners (Batch.Owner) of the pending batches
	// that are not background; lastOwners those of the group being
	// committed. The committer waits for the owners it expects, not for a
	// count of batches: a publisher with 100 unconfirmed messages is one
	// owner, and waiting for 100 batches from it only adds latency.
	owners, lastOwners map[any]struct{}
	committed          atomic.Uint64
	pending            []request // batches waiting for the next group commit, in submission order
	pendingOps         int       // writes in pending
	want               int       // while the committer waits: the pending count that ends the wait; else 0
	closing            bool      // Close has begun; Submit refuses

	kick    chan struct{} // cap 1: pending went from empty to non-empty
	full    chan struct{} // cap 1: pending reached want, or pendingOps reached MaxBatchOps
	closeCh chan struct{} // closed by Close: drain and stop
	stopped chan struct{} // closed by the committer when it has exited

	closeOnce sync.Once
	closeErr  error

	nextID atomic.Uint64 // last id handed out by NextMessageID
	// touched estimates the bytes of the file that reads (Scan) and writes
	// (commits read the pages they change through the map) have made
	// resident since the mapping's pages were last released
	// pages were last released (see releaseMapped).
	touched atomic.Int64

	// Owned by the committer goroutine; no lock needed.
	spare     []request               // the previous pending slice, reused
	lastIDOut uint64                  // last-id value known to be on disk: ids up to it may be in use
	queues    map[string]*bolt.Bucket // per-transaction cache of queue buckets
	dels      map[opKey]int           // per-transaction: last index of a delete of each key
	drops     map[string]int          // per-transaction: last index of a DeleteQueue of each queue
	// Per transaction: the entries whose put was skipped because a delete
	// follows, with the message each referenced (the delete drops that
	// reference), and the messages whose put is skipped because every entry
	// referencing them is.
	cancelledEntries map[opKey]uint64
	cancelledMsgs    map[uint64]bool
	keyBuf           []byte // per-transaction arena for 8-byte keys

	chans sync.Pool // chan error for Commit, reused

	// beforeCommit, set by tests in this package, runs inside the commit's
	// transaction after the writes; an error fails (rolls back) the commit.
	beforeCommit atomic.Pointer[func() error]

	stats struct {
		commits, failures, batches, ops, cancelled atomic.Uint64
	}
}

// opKey names the target of a put or delete, for cancelling pairs.
type opKey struct {
	kind opKind // the delete's kind
	name string
	key  string
	n    uint64
}

// Open opens (creating if needed) the store in dir, in the file dir/warren.db.
// It fails with an error wrapping ErrLocked if another process has the
// directory open, ErrNewerFormat if the file was written by a newer format,
// and ErrCorrupt if the file cannot be read as a Warren store.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MaxBatchOps <= 0 {
		opts.MaxBatchOps = DefaultMaxBatchOps
	}
	if opts.MaxPendingOps <= 0 {
		opts.MaxPendingOps = 5 * opts.MaxBatchOps
	}
	switch {
	case opts.MaxBatchDelay == 0:
		opts.MaxBatchDelay = DefaultMaxBatchDelay
	case opts.MaxBatchDelay < 0:
		opts.MaxBatchDelay = 0
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("storage: create data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{
		db:      db,
		path:    path,
		opts:    opts,
		kick:    make(chan struct{}, 1),
		drained: make(chan struct{}),
		full:    make(chan struct{}, 1),
		closeCh: make(chan struct{}),
		stopped: make(chan struct{}),
		queues:  make(map[string]*bolt.Bucket),
		dels:    make(map[opKey]int),
		owners:  make(map[any]struct{}),

		lastOwners: make(map[any]struct{}),
		drops:      make(map[string]int),

		cancelledEntries: make(map[opKey]uint64),
		cancelledMsgs:    make(map[uint64]bool),
	}
	s.chans.New = func() any { return make(chan error, 1) }
	if err := s.init(); err != nil {
		_ = db.Close()
		return nil, err
	}
	go s.run()
	return s, nil
}

func openBolt(path string, opts Options) (db *bolt.DB, err error) {
	defer func() {
		// bbolt panics on some malformed files; a bad file must be an error.
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout: lockTimeout,
		NoSync:  opts.NoSync,
		// The freelist is not written on each commit: fewer pages per fsync.
		// The price is at Open, where bbolt rebuilds the freelist by scanning
		// the file; that is linear in the file size, paid once per start.
		NoFreelistSync: true,
		// The hashmap freelist allocates in O(1) instead of scanning an
		// array, which matters once message churn has freed many pages.
		FreelistType: bolt.FreelistMapType,
	})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s (lock on %s held)", ErrLocked, filepath.Dir(path), path)
	case isSystemError(err):
		return nil, fmt.Errorf("storage: open %s: %w", path, err)
	default:
		// bbolt reports malformed files with its own sentinels (ErrInvalid,
		// ErrChecksum, ErrVersionMismatch) but also with plain strings such as
		// "file size too small"; anything that is not an OS error is the file.
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
}

// isSystemError reports whether err came from the OS (permissions, missing
// files, I/O errors) rather than from the file's contents.
func isSystemError(err error) bool {
	var pe *fs.PathError
	var errno syscall.Errno
	return errors.As(err, &pe) || errors.As(err, &errno)
}

// init checks the format version, creates missing buckets and recovers the
// message id high-water mark.
func (s *Store) init() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, r)
		}
	}()
	err = s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			// A new file has no buckets at all; anything else is some other
			// bbolt database, which we must not write into.
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return fmt.Errorf("%w: %s: no meta bucket", ErrCorrupt, s.path)
			}
			var err error
			if meta, err = tx.CreateBucket(bucketMeta); err != nil {
				return err
			}
			if err := meta.Put(keyFormat, binary.BigEndian.AppendUint32(nil, FormatVersion)); err != nil {
				return err
			}
		}
		v := meta.Get(keyFormat)
		if len(v) != 4 {
			return fmt.Errorf("%w: %s: bad format record", ErrCorrupt, s.path)
		}
		ver := binary.BigEndian.Uint32(v)
		if ver > FormatVersion {
			return fmt.Errorf("%w: %s has format %d, this Warren reads up to %d", ErrNewerFormat, s.path, ver, FormatVersion)
		}
		defs, err := tx.CreateBucketIfNotExists(bucketDefinitions)
		if err != nil {
			return err
		}
		for _, k := range kinds {
			if _, err := defs.CreateBucketIfNotExists([]byte(k)); err != nil {
				return err
			}
		}
		msgs, err := tx.CreateBucketIfNotExists(bucketMessages)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketEntries); err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketRefs); err != nil {
			return err
		}
		if ver < 2 {
			if err := upgradeRefs(tx); err != nil {
				return err
			}
			if err := meta.Put(keyFormat, binary.BigEndian.AppendUint32(nil, FormatVersion)); err != nil {
				return err
			}
		}
		var last uint64
		if v := meta.Get(keyLastID); len(v) == 8 {
			last = binary.BigEndian.Uint64(v)
		}
		if k, _ := msgs.Cursor().Last(); len(k) == 8 {
			last = max(last, binary.BigEndian.Uint64(k))
		}
		s.nextID.Store(last)
		s.lastIDOut = last
		return nil
	})
	if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNewerFormat) {
		err = fmt.Errorf("storage: open %s: %w", s.path, err)
	}
	return err
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Close commits every batch submitted before it, stops the committer and
// closes the file. Later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		close(s.drained) // nobody waits in Throttle for a closed store
		s.throttled = false
		s.mu.Unlock()
		close(s.closeCh)
		<-s.stopped
		s.closeErr = s.db.Close()
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
	}
}

// NextMessageID returns a new message id: unique and increasing, also across
// restarts. Each commit records the high-water mark, so an id that reached
// the disk in any form is never handed out again.
func (s *Store) NextMessageID() uint64 { return s.nextID.Add(1) }

// view runs fn in a read transaction. bbolt panics on some corrupt pages; that
// becomes ErrCorrupt instead of taking the broker down.
func (s *Store) view(fn func(tx *bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, r)
		}
	}()
	err = s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		err = ErrClosed
	}
	return err
}

// Definitions calls fn for every definition of kind, in key order. fn gets
// its own copy of value. fn runs inside a read transaction: it must not call
// Commit (a commit that grows the file waits for the read to end); Submit
// is fine. An error from fn stops the walk and is returned.
func (s *Store) Definitions(kind string, fn func(key string, value []byte) error) error {
	if !validKind(kind) {
		return fmt.Errorf("%w: unknown definition kind %q", ErrInvalid, kind)
	}
	return s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDefinitions).Bucket([]byte(kind))
		return b.ForEach(func(k, v []byte) error {
			return fn(string(k), clone(v))
		})
	})
}

// Message returns a copy of the value stored under id, or an error wrapping
// ErrNotFound.
func (s *Store) Message(id uint64) ([]byte, error) {
	var out []byte
	var key [8]byte
	binary.BigEndian.PutUint64(key[:], id)
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMessages).Get(key[:])
		if v == nil {
			return fmt.Errorf("%w: message %d", ErrNotFound, id)
		}
		out = clone(v)
		return nil
	})
	return out, err
}

// Messages calls fn with the id of every stored message, in id order. Like
// Definitions, fn must not call Commit.
func (s *Store) Messages(fn func(id uint64) error) error {
	return s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketMessages).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("%w: %s: message key of %d bytes", ErrCorrupt, s.path, len(k))
			}
			if err := fn(binary.BigEndian.Uint64(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Entries calls fn for each of queue's entries in seq order; fn gets its own
// copy of value. A queue without entries is not an error. Like Definitions,
// fn must not call Commit.
func (s *Store) Entries(queue string, fn func(seq uint64, value []byte) error) error {
	var ferr error
	err := s.Scan(queue, 0, func(seq uint64, entry []byte, _ func(uint64) []byte) bool {
		ferr = fn(seq, clone(entry))
		return ferr == nil
	})
	if ferr != nil {
		return ferr
	}
	return err
}

// Scan walks queue's entries in seq order from seq from, in one read
// transaction, until fn returns false. fn gets each entry and a lookup of
// stored messages by id (nil when missing); the bytes of both are valid only
// during fn, so copy what is kept. A queue without entries is not an error.
// Like Definitions, fn must not call Commit.
func (s *Store) Scan(queue string, from uint64, fn func(seq uint64, entry []byte, message func(id uint64) []byte) bool) error {
	return s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEntries).Bucket([]byte(queue))
		if b == nil {
			return nil
		}
		msgs := tx.Bucket(bucketMessages)
		var key [8]byte
		message := func(id uint64) []byte {
			binary.BigEndian.PutUint64(key[:], id)
			return msgs.Get(key[:])
		}
		var start [8]byte
		binary.BigEndian.PutUint64(start[:], from)
		read := int64(0)
		defer func() {
			if s.touched.Add(read) > releaseEvery {
				s.touched.Store(0)
				s.releaseMapped(tx)
			}
		}()
		lookup := func(id uint64) []byte {
			m := message(id)
			read += int64(len(m))
			return m
		}
		c := b.Cursor()
		for k, v := c.Seek(start[:]); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("%w: %s: entry key of %d bytes in %q", ErrCorrupt, s.path, len(k), queue)
			}
			read += int64(len(v)) + 16
			if !fn(binary.BigEndian.Uint64(k), v, lookup) {
				return nil
			}
		}
		return nil
	})
}

// releaseEvery is how many bytes are read through the map between releases
// of its resident pages.
const releaseEvery = 64 << 20

// releaseMapped unmaps the file pages that reads have made resident in the
// process. bbolt reads through a shared read-only mmap, so every page a scan
// touches counts in the broker's RSS until the kernel needs the memory:
// draining a 10 GB backlog would show 10 GB of RSS that is really page
// cache. Unmapping keeps the pages in the page cache; they fault back in if
// read again. It runs inside a read transaction (tx), during which bbolt
// cannot remap the file, so the range is the live mapping.
func (s *Store) releaseMapped(tx *bolt.Tx) {
	unmapResident(s.db.Info().Data, uintptr(tx.Size()))
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

// Flush returns once every batch submitted before it is on disk (or failed).
func (s *Store) Flush() error { return s.Commit(&Batch{}) }

// Submitted returns how many batches have been submitted so far; pass it to
// WaitCommitted to wait for those.
func (s *Store) Submitted() uint64 { return s.submitted.Load() }

// Throttle blocks while more than MaxPendingOps writes wait for the
// committer. Publishers call it so that they slow down to what the disk
// takes, as RabbitMQ's flow control slows them, rather than queue writes in
// memory without bound (a backlog paged to disk writes every message).
func (s *Store) Throttle() {
	if s.backlog.Load() <= int64(s.opts.MaxPendingOps) {
		return
	}
	s.mu.Lock()
	for s.pendingOps > s.opts.MaxPendingOps && !s.closing {
		s.throttled = true
		ch := s.drained
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	s.mu.Unlock()
}

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

// Queues returns the names of the queues that have stored entries, sorted.
// A durable queue that never held a persistent message may be missing here:
// the queue definitions are the list of queues; this is for finding entries
// whose queue no longer exists.
func (s *Store) Queues() ([]string, error) {
	var out []string
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEntries).ForEachBucket(func(k []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	return out, err
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

func (s *Store) enqueue(r request) error {
	if r.b.err != nil {
		return r.b.err
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrClosed
	}
	wasEmpty := len(s.pending) == 0
	before := s.pendingOps
	r.seq = s.submitted.Add(1)
	s.pending = append(s.pending, r)
	s.pendingOps += len(r.b.ops)
	after := s.pendingOps
	s.backlog.Store(int64(after))
	if !r.background {
		s.owners[r.b.owner()] = struct{}{}
	}
	signal := (s.want > 0 && len(s.owners) >= s.want) ||
		(before < s.opts.MaxBatchOps && after >= s.opts.MaxBatchOps)
	s.mu.Unlock()
	if wasEmpty {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	if signal {
		select {
		case s.full <- struct{}{}:
		default:
		}
	}
	return nil
}

// run is the committer: it takes all pending batches, commits them and calls
// their callbacks, until Close, when it drains what is pending and exits.
func (s *Store) run() {
	defer close(s.stopped)
	var timer *time.Timer
	expect := 0 // batches expected in the next group; see below
	for {
		closing := false
		select {
		case <-s.kick:
		case <-s.closeCh:
			closing = true
		}
		if d := s.opts.MaxBatchDelay; d > 0 && !closing && expect > 1 {
			s.mu.Lock()
			wait := len(s.owners) < expect && s.pendingOps < s.opts.MaxBatchOps
			if wait {
				s.want = expect
			}
			s.mu.Unlock()
			if wait {
				select { // a stale signal must not cut this wait short
				case <-s.full:
				default:
				}
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				select {
				case <-timer.C:
				case <-s.full:
				case <-s.closeCh:
				}
				timer.Stop()
				s.mu.Lock()
				s.want = 0
				s.mu.Unlock()
			}
		}
		for {
			s.mu.Lock()
			reqs := s.pending
			s.pending = s.spare[:0]
			s.pendingOps = 0
			s.backlog.Store(0)
			if s.throttled {
				close(s.drained) // publishers held by Throttle go on
				s.drained = make(chan struct{})
				s.throttled = false
			}
			s.owners, s.lastOwners = s.lastOwners, s.owners
			clear(s.owners)
			s.mu.Unlock()
			if len(reqs) == 0 {
				break
			}
			s.commitAll(reqs)
			// The callers just released will mostly submit again soon (a
			// publisher waiting for each confirm); together with those that
			// arrived during the commit they are the next group worth
			// waiting for. A lone publisher, however many messages it has
			// in flight, gives expect 1: no wait at all.
			s.mu.Lock()
			expect = len(s.lastOwners)
			for o := range s.owners {
				if _, ok := s.lastOwners[o]; !ok {
					expect++
				}
			}
			s.mu.Unlock()
			clear(reqs) // drop batch references
			s.spare = reqs[:0]
			if !closing {
				break // wait for the next kick (already sent if more is pending)
			}
		}
		if closing {
			return
		}
	}
}

// commitAll commits reqs in transactions of about MaxBatchOps writes each and
// calls the callbacks of each transaction as soon as it is over.
func (s *Store) commitAll(reqs []request) {
	for len(reqs) > 0 {
		n, ops := 0, 0
		for n < len(reqs) && (n == 0 || ops+len(reqs[n].b.ops) <= s.opts.MaxBatchOps) {
			ops += len(reqs[n].b.ops)
			n++
		}
		chunk := reqs[:n]
		reqs = reqs[n:]
		// Empty batches are barriers (Flush, WaitCommitted, a queue waiting
		// for its writes): everything before them is committed already, so
		// a group of nothing else needs no transaction, and no fsync.
		var err error
		if ops > 0 {
			err = s.commit(chunk, ops)
			// A write reads the pages it changes through the map; count a
			// page per op, generously, and let go of them now and then as
			// Scan does.
			if s.touched.Add(int64(ops)*512) > releaseEvery {
				s.touched.Store(0)
				_ = s.view(func(tx *bolt.Tx) error { s.releaseMapped(tx); return nil })
			}
			s.stats.commits.Add(1)
			if err != nil {
				s.stats.failures.Add(1)
			}
		}
		s.stats.batches.Add(uint64(len(chunk)))
		s.stats.ops.Add(uint64(ops))
		s.committed.Store(chunk[len(chunk)-1].seq)
		for _, r := range chunk {
			if r.ch != nil {
				r.ch <- err
			} else {
				r.done(err)
			}
		}
	}
}

// commit applies reqs in one bbolt transaction.
func (s *Store) commit(reqs []request, nops int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: commit: %v", ErrCorrupt, s.path, r)
		}
	}()
	s.markCancelled(reqs)
	if cap(s.keyBuf) < 8*nops {
		s.keyBuf = make([]byte, 0, 8*nops)
	}
	// Keys stay referenced by bbolt until the commit ends; the arena never
	// grows during the transaction, so slices of it stay valid.
	s.keyBuf = s.keyBuf[:0]
	defer clear(s.queues)

	var wroteID uint64   // the id high-water mark written by this transaction
	var cancelled uint64 // puts skipped
	err = s.db.Update(func(tx *bolt.Tx) error {
		defs := tx.Bucket(bucketDefinitions)
		msgs := tx.Bucket(bucketMessages)
		msgs.FillPercent = fillPercent
		entries := tx.Bucket(bucketEntries)
		refs := tx.Bucket(bucketRefs)
		i := -1
		for _, r := range reqs {
			for j := range r.b.ops {
				i++
				o := &r.b.ops[j]
				switch o.kind {
				case opPutDef:
					if s.superseded(i, o) {
						cancelled++
						continue
					}
					if err := defs.Bucket([]byte(o.name)).Put([]byte(o.key), o.value); err != nil {
						return err
					}
				case opDelDef:
					if err := defs.Bucket([]byte(o.name)).Delete([]byte(o.key)); err != nil {
						return err
					}
				case opPutMsg:
					if o.refs == 0 || s.cancelledMsgs[o.n] {
						cancelled++
						continue
					}
					k := s.key(o.n)
					if err := msgs.Put(k, o.value); err != nil {
						return err
					}
					if o.refs > 1 {
						if err := refs.Put(k, binary.BigEndian.AppendUint32(nil, o.refs)); err != nil {
							return err
						}
					}
				case opDelMsg:
					k := s.key(o.n)
					if err := msgs.Delete(k); err != nil {
						return err
					}
					if err := refs.Delete(k); err != nil {
						return err
					}
				case opPutEntry:
					if s.superseded(i, o) {
						cancelled++
						continue
					}
					q, err := s.queueBucket(entries, o.name, true)
					if err != nil {
						return err
					}
					if err := q.Put(s.key(o.n), o.value); err != nil {
						return err
					}
				case opDelEntry:
					q, err := s.queueBucket(entries, o.name, false)
					if err != nil {
						return err
					}
					if err := s.deleteEntry(q, msgs, refs, o); err != nil {
						return err
					}
				case opDelQueue:
					delete(s.queues, o.name)
					if q := entries.Bucket([]byte(o.name)); q != nil {
						if err := q.ForEach(func(_, v []byte) error {
							if len(v) < 8 {
								return nil
							}
							return s.unref(msgs, refs, binary.BigEndian.Uint64(v))
						}); err != nil {
							return err
						}
					}
					// Entries put earlier in this group were skipped, not
					// written: their references go here.
					for ck, id := range s.cancelledEntries {
						if ck.name == o.name {
							delete(s.cancelledEntries, ck)
							if err := s.unref(msgs, refs, id); err != nil {
								return err
							}
						}
					}
					err := entries.DeleteBucket([]byte(o.name))
					if err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
						return err
					}
				}
			}
		}
		if id := s.nextID.Load(); id > s.lastIDOut {
			// Reserve a block of ids, so that most commits leave the meta
			// bucket alone (one page less to write); a restart skips the
			// rest of the block.
			id += idBlock
			if err := tx.Bucket(bucketMeta).Put(keyLastID, binary.BigEndian.AppendUint64(nil, id)); err != nil {
				return err
			}
			wroteID = id
		}
		if s.opts.Fault != nil {
			if err := s.opts.Fault(); err != nil {
				return err
			}
		}
		if f := s.beforeCommit.Load(); f != nil {
			return (*f)()
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, berrors.ErrDatabaseNotOpen) {
			err = ErrClosed
		}
		return fmt.Errorf("storage: commit: %w", err)
	}
	if wroteID != 0 {
		s.lastIDOut = wroteID
	}
	s.stats.cancelled.Add(cancelled)
	return nil
}

// deleteEntry deletes o's entry and drops the reference it held: the one
// on disk, or, when the entry's put was skipped in this group, the one the
// put would have written.
func (s *Store) deleteEntry(q, msgs, refs *bolt.Bucket, o *op) error {
	ck := opKey{kind: opDelEntry, name: o.name, n: o.n}
	id, skipped := s.cancelledEntries[ck]
	if q != nil {
		c := q.Cursor()
		k := s.key(o.n)
		if ek, v := c.Seek(k); ek != nil && string(ek) == string(k) {
			if len(v) >= 8 {
				id, skipped = binary.BigEndian.Uint64(v), true
			}
			if err := c.Delete(); err != nil {
				return err
			}
		}
	}
	if !skipped {
		return nil // gone already: its reference went with it
	}
	delete(s.cancelledEntries, ck)
	return s.unref(msgs, refs, id)
}

// unref drops one reference to message id, deleting it with the last. A
// message referenced once has no refs record.
func (s *Store) unref(msgs, refs *bolt.Bucket, id uint64) error {
	k := s.key(id)
	if v := refs.Get(k); len(v) == 4 {
		if n := binary.BigEndian.Uint32(v); n > 2 {
			return refs.Put(k, binary.BigEndian.AppendUint32(nil, n-1))
		}
		return refs.Delete(k)
	}
	return msgs.Delete(k)
}

// markCancelled records, for this group, where each key is last deleted and
// each queue last dropped. A put followed later in the group by a delete of
// the same key (publish then ack before the commit) need not be written: the
// delete is still applied, so the result is the same as applying every op.
// A message put in the group is skipped when every entry that references it
// is.
func (s *Store) markCancelled(reqs []request) {
	clear(s.dels)
	clear(s.drops)
	clear(s.cancelledEntries)
	clear(s.cancelledMsgs)
	i := -1
	puts := 0
	for _, r := range reqs {
		for j := range r.b.ops {
			i++
			o := &r.b.ops[j]
			switch o.kind {
			case opDelDef, opDelMsg, opDelEntry:
				s.dels[opKey{kind: o.kind, name: o.name, key: o.key, n: o.n}] = i
			case opDelQueue:
				s.drops[o.name] = i
			case opPutMsg:
				puts++
			}
		}
	}
	if len(s.dels) == 0 && len(s.drops) == 0 {
		return
	}
	// Which entry puts are skipped, and how many skipped entries reference
	// each message.
	var skipped map[uint64]uint32
	if puts > 0 {
		skipped = make(map[uint64]uint32)
	}
	i = -1
	for _, r := range reqs {
		for j := range r.b.ops {
			i++
			o := &r.b.ops[j]
			if o.kind != opPutEntry || !s.superseded(i, o) {
				continue
			}
			ck := opKey{kind: opDelEntry, name: o.name, n: o.n}
			if _, seen := s.cancelledEntries[ck]; seen {
				continue // a second put of the same entry (a requeue)
			}
			id := binary.BigEndian.Uint64(o.value)
			s.cancelledEntries[ck] = id
			if skipped != nil {
				skipped[id]++
			}
		}
	}
	if len(skipped) == 0 {
		return
	}
	for _, r := range reqs {
		for j := range r.b.ops {
			if o := &r.b.ops[j]; o.kind == opPutMsg && o.refs > 0 && skipped[o.n] >= o.refs {
				s.cancelledMsgs[o.n] = true
			}
		}
	}
}

// superseded reports whether the put o at index i is undone later in the group.
func (s *Store) superseded(i int, o *op) bool {
	if len(s.dels) == 0 && len(s.drops) == 0 {
		return false
	}
	var del opKind
	switch o.kind {
	case opPutDef:
		del = opDelDef
	case opPutEntry:
		if d, ok := s.drops[o.name]; ok && d > i {
			return true
		}
		del = opDelEntry
	}
	d, ok := s.dels[opKey{kind: del, name: o.name, key: o.key, n: o.n}]
	return ok && d > i
}

// key returns n as an 8-byte big-endian key from the transaction's arena,
// or a fresh slice once the arena is full (bbolt keeps keys until the commit,
// so the arena must never move).
func (s *Store) key(n uint64) []byte {
	l := len(s.keyBuf)
	if l+8 > cap(s.keyBuf) {
		return binary.BigEndian.AppendUint64(make([]byte, 0, 8), n)
	}
	s.keyBuf = binary.BigEndian.AppendUint64(s.keyBuf, n)
	return s.keyBuf[l : l+8 : l+8]
}

// queueBucket returns queue's entries bucket, creating it if create is set;
// nil if it does not exist and create is not set.
func (s *Store) queueBucket(entries *bolt.Bucket, queue string, create bool) (*bolt.Bucket, error) {
	if b, ok := s.queues[queue]; ok {
		return b, nil
	}
	var b *bolt.Bucket
	if create {
		var err error
		if b, err = entries.CreateBucketIfNotExists([]byte(queue)); err != nil {
			return nil, err
		}
	} else if b = entries.Bucket([]byte(queue)); b == nil {
		return nil, nil
	}
	b.FillPercent = fillPercent
	s.queues[queue] = b
	return b, nil
}

func clone(v []byte) []byte {
	if v == nil {
		return nil
	}
	return append(make([]byte, 0, len(v)), v...)
}

// upgradeRefs turns a format 1 file into format 2: it counts the entries
// referencing each message, records the counts above one and deletes the
// messages nothing references (format 1 left those to a collection at start).
func upgradeRefs(tx *bolt.Tx) error {
	counts := make(map[uint64]uint32)
	err := tx.Bucket(bucketEntries).ForEachBucket(func(name []byte) error {
		return tx.Bucket(bucketEntries).Bucket(name).ForEach(func(_, v []byte) error {
			if len(v) >= 8 {
				counts[binary.BigEndian.Uint64(v)]++
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	msgs, refs := tx.Bucket(bucketMessages), tx.Bucket(bucketRefs)
	var orphans [][]byte
	c := msgs.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) != 8 {
			continue
		}
		switch n := counts[binary.BigEndian.Uint64(k)]; {
		case n == 0:
			orphans = append(orphans, clone(k))
		case n > 1:
			if err := refs.Put(clone(k), binary.BigEndian.AppendUint32(nil, n)); err != nil {
				return err
			}
		}
	}
	for _, k := range orphans {
		if err := msgs.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
