package storage

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Definition kinds: the fixed set of buckets that hold definitions.
const (
	KindVhost      = "vhost"
	KindUser       = "user"
	KindPermission = "permission"
	KindExchange   = "exchange"
	KindQueue      = "queue"
	KindBinding    = "binding"
	KindPolicy     = "policy"
	KindParameter  = "parameter" // runtime parameters (shovels): component, vhost, name
	// KindGlobal holds global runtime parameters (cluster_name among them)
	// by name, and KindTopicPermission topic permissions by vhost, user and
	// exchange.
	KindGlobal          = "global"
	KindTopicPermission = "topic-permission"
	// KindOperatorPolicy holds operator policies, keyed as policies are.
	KindOperatorPolicy = "operator-policy"
)

// kinds lists every definition kind; Open creates one bucket per kind.
var kinds = []string{KindVhost, KindUser, KindPermission, KindExchange, KindQueue, KindBinding, KindPolicy, KindParameter,
	KindGlobal, KindTopicPermission, KindOperatorPolicy}

// ErrInvalid is returned (wrapped) by Submit's callback, Commit, Definitions
// or Entries when an argument can never be stored: an unknown definition kind,
// an empty key or queue name, or a key or value over bbolt's limits.
// Invalid batches are refused before they join a group, so one bad caller
// cannot fail the commit of everybody else's writes.
var ErrInvalid = errors.New("storage: invalid argument")

func validKind(kind string) bool {
	for _, k := range kinds {
		if k == kind {
			return true
		}
	}
	return false
}

type opKind uint8

const (
	opPutDef opKind = iota + 1
	opDelDef
	opPutMsg
	opDelMsg
	opPutEntry
	opDelEntry
	opDelQueue
)

// op is one write. name is the definition kind or the queue name, key the
// definition key, n the message id or entry seq.
type op struct {
	kind  opKind
	refs  uint32 // opPutMsg: the entries that will reference the message
	n     uint64
	name  string
	key   string
	value []byte
}

// Batch collects writes that are applied atomically, in the order they were
// added, within one group commit. The zero value is ready to use. A Batch is
// not safe for concurrent use.
//
// Values are kept by reference, not copied: the caller must not modify a
// value slice, nor reuse the Batch, until the batch's callback has run.
type Batch struct {
	// Owner identifies who waits for the batch (a publishing channel), so
	// that group commit waits for the owners it expects, not for a number
	// of batches; nil: the batch is its own owner.
	Owner any

	ops []op
	err error // first invalid argument; reported by Submit
}

func (b *Batch) owner() any {
	if b.Owner != nil {
		return b.Owner
	}
	return b
}

func (b *Batch) fail(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
	}
}

func (b *Batch) checkValue(value []byte) {
	if int64(len(value)) > bolt.MaxValueSize {
		b.fail("value of %d bytes is too large", len(value))
	}
}

func (b *Batch) checkDef(kind, key string) {
	switch {
	case !validKind(kind):
		b.fail("unknown definition kind %q", kind)
	case key == "":
		b.fail("empty %s key", kind)
	case len(key) > bolt.MaxKeySize:
		b.fail("%s key of %d bytes is too long", kind, len(key))
	}
}

func (b *Batch) checkQueue(queue string) {
	if queue == "" || len(queue) > bolt.MaxKeySize {
		b.fail("queue name of %d bytes", len(queue))
	}
}

// PutDefinition stores value under (kind, key), replacing any previous value.
func (b *Batch) PutDefinition(kind, key string, value []byte) {
	b.checkDef(kind, key)
	b.checkValue(value)
	b.ops = append(b.ops, op{kind: opPutDef, name: kind, key: key, value: value})
}

// DeleteDefinition removes (kind, key); deleting a missing key is not an error.
func (b *Batch) DeleteDefinition(kind, key string) {
	b.checkDef(kind, key)
	b.ops = append(b.ops, op{kind: opDelDef, name: kind, key: key})
}

// PutMessage stores a message body (or any encoding of the message) under id,
// referenced by one entry unless SetMessageRefs says otherwise. Store it once
// and reference it from each queue's entry: the message is deleted with the
// last entry that references it.
func (b *Batch) PutMessage(id uint64, value []byte) {
	b.checkValue(value)
	b.ops = append(b.ops, op{kind: opPutMsg, refs: 1, n: id, value: value})
}

// SetMessageRefs sets how many entries will reference the message put under
// id in this batch, once the queues it went to are known (a fan-out, or a
// queue refusing it). With 0 the message is not stored at all.
func (b *Batch) SetMessageRefs(id uint64, refs int) {
	for i := range b.ops {
		if o := &b.ops[i]; o.kind == opPutMsg && o.n == id {
			o.refs = uint32(refs)
			return
		}
	}
	b.fail("no message %d in the batch", id)
}

// DeleteMessage removes the message stored under id whatever references it;
// entries still naming it will find it missing.
func (b *Batch) DeleteMessage(id uint64) {
	b.ops = append(b.ops, op{kind: opDelMsg, n: id})
}

// PutEntry stores a queue's entry under seq. Its value starts with the
// big-endian id of the message it references (8 bytes); the rest is the
// caller's (flags, deadline...). Entries are read back in seq order.
// Putting an entry that exists replaces its value and keeps its reference.
func (b *Batch) PutEntry(queue string, seq uint64, value []byte) {
	b.checkQueue(queue)
	b.checkValue(value)
	if len(value) < 8 {
		b.fail("entry value of %d bytes has no message id", len(value))
	}
	b.ops = append(b.ops, op{kind: opPutEntry, name: queue, n: seq, value: value})
}

// DeleteEntry removes a queue's entry (ack, reject, expiry, dead-lettering)
// and drops its reference to its message. Deleting an entry that is gone
// (deleted twice, or by DeleteQueue) does nothing, so the reference is
// dropped exactly once however the deletes race.
func (b *Batch) DeleteEntry(queue string, seq uint64) {
	b.checkQueue(queue)
	b.ops = append(b.ops, op{kind: opDelEntry, name: queue, n: seq})
}

// DeleteQueue drops all of a queue's entries and their references. It does
// not touch the queue's definition. Every entry is visited in one
// transaction: delete a large queue's entries in chunks first (DropEntries).
func (b *Batch) DeleteQueue(queue string) {
	b.checkQueue(queue)
	b.ops = append(b.ops, op{kind: opDelQueue, name: queue})
}

// Len returns the number of writes in the batch.
func (b *Batch) Len() int { return len(b.ops) }

// Reset empties the batch, keeping its capacity, so it can be reused once
// its callback has run.
func (b *Batch) Reset() {
	clear(b.ops) // drop references to values so they can be collected
	b.ops = b.ops[:0]
	b.err = nil
}
