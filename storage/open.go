package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/warrenmq/warren/storage/wal"
)

// FormatVersion is the storage format this package writes and reads. Open
// refuses a file with a newer version rather than misread it.
const FormatVersion = 3

// Format 1 kept no reference counts: the broker counted references in memory
// and collected unreferenced messages at start. Open upgrades such a file by
// counting the entries once (upgradeRefs). Format 3 adds the journal
// (journal.go) beside the file: nothing in the file changes, but a Warren
// that reads only format 2 would ignore writes still in the journal, so it
// must refuse the directory.

// lockTimeout is how long Open waits for bbolt's file lock. A second broker on
// the same directory should fail fast, not hang.
const lockTimeout = 200 * time.Millisecond

// Open opens (creating if needed) the store in dir, in the file dir/warren.db.
// It fails with an error wrapping ErrLocked if another process has the
// directory open, ErrNewerFormat if the file was written by a newer format,
// and ErrCorrupt if the file cannot be read as a Warren store.
func Open(dir string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
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
		in:      intake{owners: make(map[any]struct{}), drained: make(chan struct{})},
		kick:    make(chan struct{}, 1),
		full:    make(chan struct{}, 1),
		closeCh: make(chan struct{}),
		stopped: make(chan struct{}),
	}
	s.chans.New = func() any { return make(chan error, 1) }
	lastID, err := s.init()
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.nextID.Store(lastID)
	s.ap = newApplier(s, lastID)
	index, err := s.openJournal(dir)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	// Rebuilding the freelist (NoFreelistSync) read every page of the
	// file: hand them back, or a large data directory shows in RSS.
	_ = s.view(func(tx *bolt.Tx) error { s.releaseMapped(tx); return nil })
	go newCommitter(s, index).run() // Close waits for it (stopped)
	go s.ap.run()                   // and for this one (ap.stopped)
	return s, nil
}

// openJournal opens the journal, applies to the file what a crash left
// unapplied and makes that checkpoint durable, and returns the journal
// index the next record follows.
func (s *Store) openJournal(dir string) (uint64, error) {
	log, rec, err := wal.Open(filepath.Join(dir, JournalDir), wal.Options{
		SegmentSize: s.opts.JournalSegmentSize,
		MaxPending:  int(min(s.opts.MaxPendingBytes, 1<<30)),
	})
	if err != nil {
		return 0, fmt.Errorf("storage: journal: %w", err)
	}
	s.wal = log
	st := rec.Streams[journalStream]
	if st == nil {
		return 0, nil
	}
	var index uint64
	if st.Checkpoint > 0 {
		index = st.Checkpoint - 1
	}
	if len(st.Records) == 0 {
		return index, nil
	}
	_, last, err := s.ap.replay(st.Records)
	if err == nil {
		ch := make(chan error, 1)
		if err = log.Checkpoint(journalStream, last+1, func(e error) { ch <- e }); err == nil {
			err = <-ch
		}
	}
	if err != nil {
		_ = log.Close()
		return 0, fmt.Errorf("storage: replaying the journal: %w", err)
	}
	s.ap.applied = last
	return max(index, last), nil
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

// init checks the format version, upgrades an older one, creates missing
// buckets and returns the message id high-water mark: ids up to it may be
// in use.
func (s *Store) init() (lastID uint64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path, r)
		}
	}()
	err = s.db.Update(func(tx *bolt.Tx) error {
		ver, err := s.formatVersion(tx)
		if err != nil {
			return err
		}
		if err := createBuckets(tx); err != nil {
			return err
		}
		if ver < 2 {
			if err := upgradeRefs(tx); err != nil {
				return err
			}
		}
		if ver < FormatVersion {
			if err := putFormat(tx.Bucket(bucketMeta)); err != nil {
				return err
			}
		}
		lastID = storedLastID(tx)
		return nil
	})
	if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNewerFormat) {
		err = fmt.Errorf("storage: open %s: %w", s.path, err)
	}
	return lastID, err
}

// formatVersion returns the file's format version, writing the current one
// into a new file. Another bbolt database, an unreadable version record or
// a newer version is an error.
func (s *Store) formatVersion(tx *bolt.Tx) (uint32, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		// A new file has no buckets at all; anything else is some other
		// bbolt database, which we must not write into.
		empty := true
		_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
		if !empty {
			return 0, fmt.Errorf("%w: %s: no meta bucket", ErrCorrupt, s.path)
		}
		var err error
		if meta, err = tx.CreateBucket(bucketMeta); err != nil {
			return 0, err
		}
		if err := putFormat(meta); err != nil {
			return 0, err
		}
	}
	v := meta.Get(keyFormat)
	if len(v) != 4 {
		return 0, fmt.Errorf("%w: %s: bad format record", ErrCorrupt, s.path)
	}
	ver := binary.BigEndian.Uint32(v)
	if ver > FormatVersion {
		return 0, fmt.Errorf("%w: %s has format %d, this Warren reads up to %d", ErrNewerFormat, s.path, ver, FormatVersion)
	}
	return ver, nil
}

func putFormat(meta *bolt.Bucket) error {
	return meta.Put(keyFormat, binary.BigEndian.AppendUint32(nil, FormatVersion))
}

// createBuckets creates the buckets a file older than the current layout
// may lack (all of them, in a new file, but meta).
func createBuckets(tx *bolt.Tx) error {
	defs, err := tx.CreateBucketIfNotExists(bucketDefinitions)
	if err != nil {
		return err
	}
	for _, k := range kinds {
		if _, err := defs.CreateBucketIfNotExists([]byte(k)); err != nil {
			return err
		}
	}
	for _, name := range [][]byte{bucketMessages, bucketEntries, bucketRefs} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// storedLastID returns the highest message id that may be in use: the
// reserved high-water mark, or the last stored message if that is higher.
func storedLastID(tx *bolt.Tx) uint64 {
	var last uint64
	if v := tx.Bucket(bucketMeta).Get(keyLastID); len(v) == 8 {
		last = binary.BigEndian.Uint64(v)
	}
	if k, _ := tx.Bucket(bucketMessages).Cursor().Last(); len(k) == 8 {
		last = max(last, binary.BigEndian.Uint64(k))
	}
	return last
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
