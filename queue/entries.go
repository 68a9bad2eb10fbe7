package queue

import (
	"encoding/binary"
	"errors"
	"log/slog"

	"github.com/warrenmq/warren/storage"
)

// A queue keeps an entry in storage for each stored message it holds, under
// the queue's key and the message's seq (message id, deadline, delivery
// count, level, body size, flags): a durable queue for its persistent
// messages, any queue with a store for its paged messages. The message
// itself is stored once under its id however many queues hold it; storage
// deletes it with the last entry that references it. Writes are collected
// in a storage.Batch and group-committed.

// entryStore is where a queue keeps its entries; nil for queues that keep
// nothing. It never changes after New.
type entryStore struct {
	store *storage.Store
	key   string
	log   *slog.Logger
	// durable queues keep their persistent messages across restarts; the
	// others use storage only to page out a backlog.
	durable bool
}

// Entry record layout. Format 1 records stop after the level.
const (
	entryLen   = 26
	entryLenV1 = 21
	// flagTransient marks a transient message written only because the
	// queue's backlog was paged out; it does not survive a restart.
	flagTransient = 1
)

// record is a decoded entry record.
type record struct {
	id         uint64
	deadline   int64
	deliveries uint32
	level      uint8
	size       int64 // body size; -1 in a format 1 record
	flags      uint8
}

func decodeEntry(b []byte) (record, bool) {
	if len(b) != entryLen && len(b) != entryLenV1 {
		return record{}, false
	}
	r := record{
		id:         binary.BigEndian.Uint64(b),
		deadline:   int64(binary.BigEndian.Uint64(b[8:])),
		deliveries: binary.BigEndian.Uint32(b[16:]),
		level:      b[20],
		size:       -1,
	}
	if len(b) == entryLen {
		r.size = int64(binary.BigEndian.Uint32(b[21:]))
		r.flags = b[25]
	}
	return r, true
}

// persists reports whether m is kept across restarts in this queue: a
// stored (persistent) message in a durable queue.
func (q *Queue) persists(m *Message) bool {
	return m.ID != 0 && q.entries != nil && q.entries.durable
}

// recordLocked adds e's entry to b.
func (q *Queue) recordLocked(b *storage.Batch, e *entry, level uint8) {
	q.wrote = true
	b.PutEntry(q.entries.key, e.seq, encodeEntry(e, level))
}

// forget removes a stored message's entry; storage deletes the body with
// its last entry.
func (q *Queue) forget(fx *effects, m *Message, stored bool, seq uint64) {
	q.dropDedupLocked(m)
	if stored {
		fx.writes().DeleteEntry(q.entries.key, seq)
	}
}

// dropDedupLocked forgets m's x-deduplication-header value as m leaves
// the queue for good.
func (q *Queue) dropDedupLocked(m *Message) {
	if q.dedup == nil || m == nil || m.DedupKey == "" {
		return
	}
	if n := q.dedup[m.DedupKey]; n > 1 {
		q.dedup[m.DedupKey] = n - 1
	} else {
		delete(q.dedup, m.DedupKey)
	}
}

// submit commits what an operation changed, without waiting: acks and
// expiry need no confirmation, and the group commit orders them after the
// writes submitted before.
func (q *Queue) submit(b *storage.Batch) {
	if b == nil || b.Len() == 0 || q.entries == nil {
		return
	}
	q.entries.store.SubmitBackground(b, func(err error) {
		if err != nil {
			q.entries.log.Error("storage write failed", "queue", q.Name, "err", err)
		}
	})
}

// encodeEntry is a queue entry record: message id, deadline, delivery
// count, priority level, body size, flags.
func encodeEntry(e *entry, level uint8) []byte {
	b := make([]byte, 0, entryLen)
	b = binary.BigEndian.AppendUint64(b, e.msg.ID)
	b = binary.BigEndian.AppendUint64(b, uint64(e.deadline))
	b = binary.BigEndian.AppendUint32(b, e.deliveries)
	b = append(b, level)
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.msg.Body)))
	var flags uint8
	if !e.msg.Persistent {
		flags |= flagTransient
	}
	return append(b, flags)
}

var errBadRecord = errors.New("queue: malformed stored record")

// Message record versions: 1 is a persistent message (all a classic queue
// stores), 2 a transient one (quorum queues keep those in their log too, and
// a dead letter must stay transient).
const (
	recordPersistent = 1
	recordTransient  = 2
)

// EncodeMessage is a stored message record.
func EncodeMessage(m *Message) []byte {
	b := make([]byte, 0, 16+len(m.Exchange)+len(m.RoutingKey)+len(m.Properties)+len(m.Body))
	version := byte(recordPersistent)
	if !m.Persistent {
		version = recordTransient
	}
	b = append(b, version, m.Priority)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Exchange)))
	b = append(b, m.Exchange...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.RoutingKey)))
	b = append(b, m.RoutingKey...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Properties)))
	b = append(b, m.Properties...)
	return append(b, m.Body...)
}

// DecodeMessage reads a stored message record. The message keeps slices of
// b, which the caller must not reuse.
func DecodeMessage(id uint64, b []byte) (*Message, error) {
	take := func(n int) ([]byte, bool) {
		if len(b) < n {
			return nil, false
		}
		v := b[:n]
		b = b[n:]
		return v, true
	}
	h, ok := take(2)
	if !ok || (h[0] != recordPersistent && h[0] != recordTransient) {
		return nil, errBadRecord
	}
	m := &Message{ID: id, Priority: h[1], Persistent: h[0] == recordPersistent}
	var strs [2]string
	for i := range strs {
		l, ok := take(2)
		if !ok {
			return nil, errBadRecord
		}
		s, ok := take(int(binary.BigEndian.Uint16(l)))
		if !ok {
			return nil, errBadRecord
		}
		strs[i] = string(s)
	}
	m.Exchange, m.RoutingKey = strs[0], strs[1]
	l, ok := take(4)
	if !ok {
		return nil, errBadRecord
	}
	props, ok := take(int(binary.BigEndian.Uint32(l)))
	if !ok {
		return nil, errBadRecord
	}
	m.Properties = props[:len(props):len(props)]
	m.Body = b
	return m, nil
}
