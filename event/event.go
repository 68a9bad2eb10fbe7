// Package event is what rabbitmq_event_exchange publishes: the names
// (routing keys) and headers of broker events, and the Emitter that the
// places where state changes report them to. Each event is a message to
// amq.rabbitmq.event in the default virtual host, whatever the virtual host
// it happened in (a "vhost" header says which); its headers are the event's
// properties, as RabbitMQ writes them.
//
// Emitting is meant to be free when nobody listens: callers check Enabled
// (an atomic load or two) before building any headers.
package event

import (
	"os"
	"strconv"

	"github.com/warrenmq/warren/amqp/wire"
)

// Exchange is where events are published: a durable, internal topic
// exchange in the default virtual host, as the plugin declares it.
const Exchange = "amq.rabbitmq.event"

// DefaultVhost is the virtual host that holds Exchange.
const DefaultVhost = "/"

// Internal is the acting user RabbitMQ names for what the broker does on
// its own (an exclusive queue deleted with its connection, an auto-delete
// exchange that lost its last binding).
const Internal = "rmq-internal"

// Emitter receives events. Implementations must not block and must not
// call back into the caller: Emit may be called with locks held.
type Emitter interface {
	// Enabled reports whether anybody would receive an event; when it is
	// false, callers skip building headers altogether.
	Enabled() bool
	// Emit publishes one event: its routing key (such as "queue.created")
	// and headers. The emitter adds timestamp_in_ms and owns h afterwards.
	Emit(key string, h wire.Table)
}

// Nop is an Emitter that is never enabled.
type Nop struct{}

// Enabled is always false.
func (Nop) Enabled() bool { return false }

// Emit drops the event.
func (Nop) Emit(string, wire.Table) {}

// node is this node's name in events, as elsewhere in Warren.
var node = func() string {
	h, _ := os.Hostname()
	return "warren@" + h
}()

// Node is this node's name ("warren@host"), for the node headers.
func Node() string { return node }

// Pid names a connection or a channel (by its id, unique in the node) the
// way RabbitMQ's events name their Erlang processes: "<warren@host.12.0>".
// The same id gives the same pid in every event, so a channel's events can
// be matched to its connection's, and an exclusive queue's to its owner's.
func Pid(id uint64) string { return "<" + node + "." + strconv.FormatUint(id, 10) + ".0>" }
