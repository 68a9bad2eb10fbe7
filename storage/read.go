package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Reads run in bbolt read transactions, beside the committer's write
// transaction, and never wait for it. A callback that runs inside a read
// (Definitions, Messages, Entries, Scan) must not call Commit: a commit
// that grows the file remaps it, which waits for every read to end.

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
//
// This is how queues load their entries at start and read back the part of
// a backlog that is on disk; what it reads counts towards releasing the
// mapped pages (mapped.go).
func (s *Store) Scan(queue string, from uint64, fn func(seq uint64, entry []byte, message func(id uint64) []byte) bool) error {
	return s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEntries).Bucket([]byte(queue))
		if b == nil {
			return nil
		}
		msgs := tx.Bucket(bucketMessages)
		read := int64(0)
		defer func() { s.touch(tx, read) }()
		var key [8]byte
		message := func(id uint64) []byte {
			binary.BigEndian.PutUint64(key[:], id)
			m := msgs.Get(key[:])
			read += int64(len(m))
			return m
		}
		var start [8]byte
		binary.BigEndian.PutUint64(start[:], from)
		c := b.Cursor()
		for k, v := c.Seek(start[:]); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("%w: %s: entry key of %d bytes in %q", ErrCorrupt, s.path, len(k), queue)
			}
			read += int64(len(v)) + 16
			if !fn(binary.BigEndian.Uint64(k), v, message) {
				return nil
			}
		}
		return nil
	})
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

func clone(v []byte) []byte {
	if v == nil {
		return nil
	}
	return append(make([]byte, 0, len(v)), v...)
}
