package queue

import "github.com/warrenmq/warren/storage"

// Type is a queue's type, as x-queue-type names it.
type Type uint8

// The queue types.
const (
	TypeClassic Type = iota
	TypeQuorum
	TypeStream
)

func (t Type) String() string {
	switch t {
	case TypeQuorum:
		return "quorum"
	case TypeStream:
		return "stream"
	}
	return "classic"
}

// Decl is what a queue was declared with; it never changes after the
// queue is made.
type Decl struct {
	Name       string
	Type       Type
	Durable    bool
	Exclusive  bool
	AutoDelete bool
	Args       map[string]any
	// Owner is the connection that owns an exclusive queue, 0 otherwise.
	Owner uint64
}

// Declared returns the declaration; every queue type embeds a Decl.
func (d *Decl) Declared() *Decl { return d }

// Interface is what the protocol, the virtual host and the management API
// need of a queue, whatever its type: the classic Queue, a quorum queue
// (Quorum), a stream. It is RabbitMQ's rabbit_queue_type at the depth Warren
// needs: each type keeps its own messages, consumers and storage, and
// delivers through the Consumer it is given. All methods are safe for
// concurrent use.
type Interface interface {
	// Declared returns the declaration.
	Declared() *Decl
	// Config is the queue's behaviour: its arguments merged with a policy.
	Config() *Config
	// SetConfig applies a changed policy.
	SetConfig(c Config)

	// Push enqueues m. A classic queue adds a stored message's entry to
	// b and holds the message until Release; other types ignore b and
	// confirm through Enqueuer when they implement it.
	Push(m *Message, b *storage.Batch) PushResult
	// Release lets consumers have m once b was submitted.
	Release(m *Message)

	// AddConsumer attaches c; RemoveConsumer detaches it and reports
	// whether an auto-delete queue should now go.
	AddConsumer(c Consumer, exclusive, noAck bool, priority int) error
	RemoveConsumer(c Consumer) (autoDelete bool)
	// Kick says a consumer has room again; Handover runs a single active
	// consumer queue whose active consumer's channel went away.
	Kick()
	Handover()
	// Get is basic.get: the next message and how many remain.
	Get(noAck bool) (d Delivery, remaining int, ok bool)
	// Ack, Reject (dead-letter or drop) and Requeue settle deliveries the
	// queue handed out.
	Ack(ds []Delivery)
	Reject(ds []Delivery)
	Requeue(ds []Delivery)

	// Purge drops the ready messages and returns how many.
	Purge() int
	// Delete ends the queue: consumers are cancelled, messages dropped;
	// it returns how many were ready.
	Delete() int
	// Touch records a use, for x-expires.
	Touch()
	// Stats returns the counters.
	Stats() Stats
	// StoreKey names the queue's data in storage ("" if it keeps none).
	StoreKey() string
}

// Enqueuer is implemented by queue types whose publishes are confirmed
// on their own commit (quorum queues: once the raft entry is committed and
// fsynced) rather than with the publisher's storage batch.
type Enqueuer interface {
	// Enqueue proposes m; done runs, maybe on another goroutine, once it
	// is committed, with refused set if the queue's overflow turned it
	// away, or with the error that kept it from being committed.
	Enqueue(m *Message, done func(refused bool, err error))
}

var _ Interface = (*Queue)(nil)
