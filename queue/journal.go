package queue

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/warrenmq/warren/storage"
)

// A durable queue journals its persistent messages: one entry per message
// under the queue's key (message id, deadline, delivery count, level), the
// message itself stored once under its id however many queues hold it.
// Writes are collected in a storage.Batch and group-committed.

// storedRefs counts the durable queues that hold a stored message, so the
// body is deleted with the last entry. It lives beside Message to keep the
// message struct plain.
type storedRefs = atomic.Int32

// journal is a queue's handle on storage; nil for queues that keep nothing.
type journal struct {
	store *storage.Store
	key   string
	log   *slog.Logger
}

// journaled reports whether m has entries to keep in step in this queue.
func (q *Queue) journaled(m *Message) bool { return q.journal != nil && m.ID != 0 }

// recordLocked adds e's entry to b.
func (q *Queue) recordLocked(b *storage.Batch, e *entry, level uint8) {
	b.PutEntry(q.journal.key, e.seq, encodeEntry(e, level))
}

// forget removes a message's entry and, with the last reference, its body.
func (q *Queue) forget(b **storage.Batch, m *Message, seq uint64) {
	if !q.journaled(m) {
		return
	}
	if *b == nil {
		*b = new(storage.Batch)
	}
	(*b).DeleteEntry(q.journal.key, seq)
	if m.refs.Add(-1) == 0 {
		(*b).DeleteMessage(m.ID)
	}
}

// submit commits what an operation changed, without waiting: acks and
// expiry need no confirmation, and the group commit orders them after the
// writes submitted before.
func (q *Queue) submit(b *storage.Batch) {
	if b == nil || b.Len() == 0 || q.journal == nil {
		return
	}
	q.journal.store.Submit(b, func(err error) {
		if err != nil {
			q.journal.log.Error("storage write failed", "queue", q.Name, "err", err)
		}
	})
}

// encodeEntry is a queue entry record: message id, deadline, delivery
// count, priority level.
func encodeEntry(e *entry, level uint8) []byte {
	b := make([]byte, 0, 21)
	b = binary.BigEndian.AppendUint64(b, e.msg.ID)
	b = binary.BigEndian.AppendUint64(b, uint64(e.deadline))
	b = binary.BigEndian.AppendUint32(b, e.deliveries)
	return append(b, level)
}

var errBadRecord = errors.New("queue: malformed stored record")

// EncodeMessage is a stored message record.
func EncodeMessage(m *Message) []byte {
	b := make([]byte, 0, 16+len(m.Exchange)+len(m.RoutingKey)+len(m.Properties)+len(m.Body))
	b = append(b, 1, m.Priority) // record version, priority
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
	if !ok || h[0] != 1 {
		return nil, errBadRecord
	}
	m := &Message{ID: id, Priority: h[1], Persistent: true}
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

// EntryMessageID is the stored message an entry record names.
func EntryMessageID(record []byte) (uint64, bool) {
	if len(record) != 21 {
		return 0, false
	}
	return binary.BigEndian.Uint64(record), true
}

// Restore puts back a message read from storage at start, given its entry
// record: it goes to its position by seq, marked redelivered (it may have
// been delivered before the restart), with its deadline as it was.
func (q *Queue) Restore(seq uint64, record []byte, m *Message) error {
	if len(record) != 21 {
		return errBadRecord
	}
	e := entry{
		msg: m, seq: seq, redelivered: true,
		deadline:   int64(binary.BigEndian.Uint64(record[8:])),
		deliveries: binary.BigEndian.Uint32(record[16:]),
	}
	level := min(record[20], q.Config().MaxPriority)
	m.refs.Add(1)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.nextSeq = max(q.nextSeq, seq)
	q.addLocked(level, e)
	return nil
}
