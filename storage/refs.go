package storage

import (
	"encoding/binary"
	"errors"

	berrors "go.etcd.io/bbolt/errors"
)

// Reference counting: a message stored once for many queues lives as long as
// an entry references it. Its count is in refs only when above one, so the
// common message, in one queue, costs no refs record. Every op that removes
// an entry drops its reference here, in the same transaction.

// putMessage stores o's message with its reference count.
func (t *txn) putMessage(o *op) error {
	k := t.key(o.n)
	if err := t.msgs.Put(k, o.value); err != nil {
		return err
	}
	if o.refs > 1 {
		return t.refs.Put(k, binary.BigEndian.AppendUint32(nil, o.refs))
	}
	return nil
}

// deleteMessage deletes message id whatever references it.
func (t *txn) deleteMessage(id uint64) error {
	k := t.key(id)
	if err := t.msgs.Delete(k); err != nil {
		return err
	}
	return t.refs.Delete(k)
}

// deleteEntry deletes o's entry and drops the reference it held: the one
// on disk, or, when the entry's put was skipped in this group, the one the
// put would have written.
func (t *txn) deleteEntry(o *op) error {
	q, err := t.queue(o.name, false)
	if err != nil {
		return err
	}
	ck := entryKey(o)
	id, held := t.skip.entries[ck]
	if q != nil {
		c := q.Cursor()
		k := t.key(o.n)
		if ek, v := c.Seek(k); ek != nil && string(ek) == string(k) {
			if len(v) >= 8 {
				id, held = binary.BigEndian.Uint64(v), true
			}
			if err := c.Delete(); err != nil {
				return err
			}
		}
	}
	if !held {
		return nil // gone already: its reference went with it
	}
	delete(t.skip.entries, ck)
	return t.unref(id)
}

// deleteQueue deletes queue's entries bucket, dropping the reference of
// every entry in it and of every entry put earlier in the group but skipped.
func (t *txn) deleteQueue(queue string) error {
	delete(t.queues, queue)
	if q := t.entries.Bucket([]byte(queue)); q != nil {
		err := q.ForEach(func(_, v []byte) error {
			if len(v) < 8 {
				return nil
			}
			return t.unref(binary.BigEndian.Uint64(v))
		})
		if err != nil {
			return err
		}
	}
	for ck, id := range t.skip.entries {
		if ck.name == queue {
			delete(t.skip.entries, ck)
			if err := t.unref(id); err != nil {
				return err
			}
		}
	}
	err := t.entries.DeleteBucket([]byte(queue))
	if err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
		return err
	}
	return nil
}

// unref drops one reference to message id, deleting it with the last. A
// message referenced once has no refs record.
func (t *txn) unref(id uint64) error {
	k := t.key(id)
	if v := t.refs.Get(k); len(v) == 4 {
		if n := binary.BigEndian.Uint32(v); n > 2 {
			return t.refs.Put(k, binary.BigEndian.AppendUint32(nil, n-1))
		}
		return t.refs.Delete(k)
	}
	return t.msgs.Delete(k)
}
