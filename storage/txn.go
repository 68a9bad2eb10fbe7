package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// idBlock is how many message ids one write of meta/last-id reserves.
const idBlock = 1 << 16

// fillPercent for buckets whose keys grow (message ids, entry seqs): pages
// split fuller because inserts land at the end, so less space is wasted than
// with bbolt's default 0.5.
const fillPercent = 0.9

// txn is the state of the transaction that writes one group: its buckets,
// the puts it skips (cancel.go), the queue buckets it has opened and an
// arena for its keys. The applier keeps one and resets it for every
// transaction, so that its maps and arena are reused.
type txn struct {
	defs, msgs, entries, refs *bolt.Bucket

	skip    cancelPlan
	skipped uint64                  // puts skipped, for Stats
	queues  map[string]*bolt.Bucket // entries buckets of the queues opened so far
	keys    []byte                  // arena of 8-byte keys; see key
}

func newTxn() txn {
	return txn{skip: newCancelPlan(), queues: make(map[string]*bolt.Bucket)}
}

// write applies reqs, holding nops writes, in one bbolt transaction, with
// the id high-water mark if it has moved. fault says whether the tests'
// failure hooks run in it (direct writes; the journal's are checked before
// they are journaled).
func (a *applier) write(reqs []request, nops int, fault bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s: commit: %v", ErrCorrupt, a.s.path, r)
		}
	}()
	t := &a.txn
	t.reset(reqs, nops)
	defer t.release()
	var reserved uint64 // the id high-water mark written, if any
	err = a.s.db.Update(func(tx *bolt.Tx) error {
		t.begin(tx)
		for i, o := range groupOps(reqs) {
			if err := t.apply(i, o); err != nil {
				return err
			}
		}
		var err error
		if reserved, err = a.reserveIDs(tx); err != nil {
			return err
		}
		if fault {
			return a.s.fault()
		}
		return nil
	})
	a.s.stats.applies.Add(1)
	a.s.touchWrites(nops)
	if err != nil {
		if errors.Is(err, berrors.ErrDatabaseNotOpen) {
			err = ErrClosed
		}
		return fmt.Errorf("storage: commit: %w", err)
	}
	if reserved != 0 {
		a.lastIDOut = reserved
	}
	a.s.stats.cancelled.Add(t.skipped)
	return nil
}

// groupOps yields the ops of reqs in order, numbered across the group: the
// number says whether a delete comes after a put (cancel.go).
func groupOps(reqs []request) iter.Seq2[int, *op] {
	return func(yield func(int, *op) bool) {
		i := 0
		for _, r := range reqs {
			for j := range r.b.ops {
				if !yield(i, &r.b.ops[j]) {
					return
				}
				i++
			}
		}
	}
}

// reserveIDs records a new id high-water mark when ids beyond the one on
// disk have been handed out, and returns it (0: none written). It reserves
// a block of ids, so that most commits leave the meta bucket alone (one page
// less to write); a restart skips the rest of the block.
func (a *applier) reserveIDs(tx *bolt.Tx) (uint64, error) {
	id := a.s.nextID.Load()
	if id <= a.lastIDOut {
		return 0, nil
	}
	id += idBlock
	return id, tx.Bucket(bucketMeta).Put(keyLastID, binary.BigEndian.AppendUint64(nil, id))
}

// fault runs the hooks with which tests fail a commit: Options.Fault and
// beforeCommit.
func (s *Store) fault() error {
	if s.opts.Fault != nil {
		if err := s.opts.Fault(); err != nil {
			return err
		}
	}
	if f := s.beforeCommit.Load(); f != nil {
		return (*f)()
	}
	return nil
}

// reset prepares t for a transaction writing reqs: it plans which puts to
// skip and sizes the key arena for nops keys.
func (t *txn) reset(reqs []request, nops int) {
	t.skip.build(reqs)
	t.skipped = 0
	if cap(t.keys) < 8*nops {
		t.keys = make([]byte, 0, 8*nops)
	}
	t.keys = t.keys[:0]
}

// begin opens the buckets of tx.
func (t *txn) begin(tx *bolt.Tx) {
	t.defs = tx.Bucket(bucketDefinitions)
	t.msgs = tx.Bucket(bucketMessages)
	t.msgs.FillPercent = fillPercent
	t.entries = tx.Bucket(bucketEntries)
	t.refs = tx.Bucket(bucketRefs)
}

// release forgets the transaction's buckets, which die with it.
func (t *txn) release() {
	t.defs, t.msgs, t.entries, t.refs = nil, nil, nil, nil
	clear(t.queues)
}

// apply writes o, the op at index i of the group, unless a later op undoes it.
func (t *txn) apply(i int, o *op) error {
	if t.skip.skips(i, o) {
		t.skipped++
		return nil
	}
	switch o.kind {
	case opPutDef:
		return t.defs.Bucket([]byte(o.name)).Put([]byte(o.key), o.value)
	case opDelDef:
		return t.defs.Bucket([]byte(o.name)).Delete([]byte(o.key))
	case opPutMsg:
		return t.putMessage(o)
	case opDelMsg:
		return t.deleteMessage(o.n)
	case opPutEntry:
		q, err := t.queue(o.name, true)
		if err != nil {
			return err
		}
		return q.Put(t.key(o.n), o.value)
	case opDelEntry:
		return t.deleteEntry(o)
	case opDelQueue:
		return t.deleteQueue(o.name)
	}
	return fmt.Errorf("storage: unknown op kind %d", o.kind)
}

// key returns n as an 8-byte big-endian key from the transaction's arena,
// or a fresh slice once the arena is full. bbolt keeps keys until the
// commit ends, so the arena never grows during the transaction: slices of
// it stay valid.
func (t *txn) key(n uint64) []byte {
	l := len(t.keys)
	if l+8 > cap(t.keys) {
		return binary.BigEndian.AppendUint64(make([]byte, 0, 8), n)
	}
	t.keys = binary.BigEndian.AppendUint64(t.keys, n)
	return t.keys[l : l+8 : l+8]
}

// queue returns queue's entries bucket, creating it if create is set; nil
// if it does not exist and create is not set.
func (t *txn) queue(queue string, create bool) (*bolt.Bucket, error) {
	if b, ok := t.queues[queue]; ok {
		return b, nil
	}
	var b *bolt.Bucket
	if create {
		var err error
		if b, err = t.entries.CreateBucketIfNotExists([]byte(queue)); err != nil {
			return nil, err
		}
	} else if b = t.entries.Bucket([]byte(queue)); b == nil {
		return nil, nil
	}
	b.FillPercent = fillPercent
	t.queues[queue] = b
	return b, nil
}
