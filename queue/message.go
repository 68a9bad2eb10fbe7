// Package queue holds message queues: ordering (FIFO within priority
// levels), TTL, length limits, dead-lettering, consumers with prefetch-aware
// dispatch, acknowledgements and redelivery. It knows nothing of frames: a
// message's properties are opaque bytes here, consumers are reached through
// the small Consumer interface that the AMQP channel implements, and dead
// letters leave through a hook that the virtual host provides.
package queue

// Message is one published message. It is shared, read-only, by every queue
// it was routed to, so a fan-out copies pointers, not bodies. Fields are
// ordered by size: a queued message costs its struct, and padding adds up
// over millions of them.
type Message struct {
	Exchange   string
	RoutingKey string
	// Properties is the encoded content-header property list, forwarded to
	// consumers byte for byte.
	Properties []byte
	Body       []byte
	// DedupKey is the x-deduplication-header value as a map key ("" when
	// absent), read once at publish for deduplicating queues.
	DedupKey string
	// Expiration is the per-message TTL in milliseconds from the expiration
	// property, when HasExpiration.
	Expiration int64
	// ID is the message's storage id, set when it is persistent and went to
	// a durable queue, or when a paged-out queue wrote it; 0 when not
	// stored. Storage counts the queues that reference it.
	ID uint64
	// Priority is the priority property (0 when absent).
	Priority uint8
	// Persistent is delivery-mode 2.
	Persistent    bool
	HasExpiration bool
}

// Size is the body size, which is what RabbitMQ counts for byte limits.
func (m *Message) Size() int { return len(m.Body) }

// Delivery is a message as it leaves a queue. The consumer hands it back
// unchanged to Ack, Reject or Requeue.
type Delivery struct {
	Message     *Message
	Redelivered bool
	// DeliveryCount is how often the message was delivered and returned
	// before; consumers of queues with a delivery limit see it as the
	// x-delivery-count header.
	DeliveryCount uint32
	seq           uint64
	deadline      int64
	level         uint8
	stored        bool // the queue has an entry on disk for it
}

// Consumer receives deliveries pushed by a queue. Its methods are called with
// the queue's lock held, so they must not block, do I/O or call back into the
// queue: the AMQP channel implements Deliver by appending frames to its
// connection's outbound buffer.
type Consumer interface {
	// Deliver hands d to the consumer if it has capacity (prefetch, flow,
	// buffer) and reports whether it took it.
	Deliver(q Interface, d Delivery) bool
	// Cancel tells the consumer that the queue went away (deleted), so the
	// client can be sent basic.cancel.
	Cancel(q Interface)
}

// Reason says why a message was dead-lettered, in x-death's words.
type Reason string

// The dead-letter reasons.
const (
	Rejected      Reason = "rejected"
	Expired       Reason = "expired"
	MaxLen        Reason = "maxlen"
	DeliveryLimit Reason = "delivery_limit"
)

// DeadLetter is a message leaving a queue for its dead-letter exchange.
type DeadLetter struct {
	Message *Message
	Reason  Reason
}

// Hooks connect a queue to its virtual host. They are called without the
// queue's lock held.
type Hooks struct {
	// DeadLetter routes messages to the queue's dead-letter exchange.
	DeadLetter func(q Interface, dls []DeadLetter)
	// Expired is called when x-expires says the unused queue should go.
	Expired func(q Interface)
	// DedupKey reads a recovered message's x-deduplication-header from its
	// encoded properties, for deduplicating queues ("" when absent).
	DedupKey func(properties []byte) string
}
