package broker

import (
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/event"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/vhost"
)

// eventQueueLen bounds the events waiting to be published. Emitters never
// wait: past this, events are dropped and counted (Broker.EventsDropped).
const eventQueueLen = 4096

// events is the broker's event.Emitter (rabbitmq_event_exchange): events
// from every vhost go, in the order emitted, to amq.rabbitmq.event in the
// default vhost. Emit only queues the event; one goroutine publishes, so no
// emitter waits on routing and none publishes under its own locks.
type events struct {
	// x is the default vhost's event exchange, nil while there is none.
	// Enabled loads it and its bindings: nobody bound, nothing built.
	x       atomic.Pointer[exchange.Exchange]
	pending chan pendingEvent
	dropped atomic.Uint64
}

type pendingEvent struct {
	key     string
	headers wire.Table
	at      time.Time
}

func newEvents() *events {
	return &events{pending: make(chan pendingEvent, eventQueueLen)}
}

// Enabled reports whether a queue or an exchange is bound to the event
// exchange.
func (e *events) Enabled() bool {
	x := e.x.Load()
	return x != nil && x.Bound()
}

// Emit queues an event without waiting; a full queue drops it.
func (e *events) Emit(key string, h wire.Table) {
	select {
	case e.pending <- pendingEvent{key: key, headers: h, at: time.Now()}:
	default:
		e.dropped.Add(1)
	}
}

// publishEvents publishes queued events until stop is closed.
func (b *Broker) publishEvents(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case ev := <-b.events.pending:
			v := b.VHost(event.DefaultVhost)
			if v == nil {
				continue
			}
			ev.headers["timestamp_in_ms"] = ev.at.UnixMilli()
			props := (&wire.Properties{
				Headers: ev.headers, DeliveryMode: 2, Timestamp: uint64(ev.at.Unix()),
				Present: wire.FlagHeaders | wire.FlagDeliveryMode | wire.FlagTimestamp,
			}).Append(nil)
			v.PublishEvent(ev.key, props)
		}
	}
}

// declareEventExchange gives the default vhost the event exchange, as the
// plugin does at start, and points the emitter at it.
func (b *Broker) declareEventExchange() {
	v := b.VHost(event.DefaultVhost)
	if v == nil {
		b.events.x.Store(nil)
		return
	}
	_, err := v.Apply(vhost.DeclareExchange{Name: event.Exchange, Kind: "topic", Durable: true, Internal: true})
	if err != nil {
		b.log.Error("declaring the event exchange failed", "err", err)
		return
	}
	x, _ := v.Exchange(event.Exchange)
	b.events.x.Store(x)
}

// Events is the emitter that protocol servers report connection, channel
// and consumer events to.
func (b *Broker) Events() event.Emitter { return b.events }

// EventsDropped counts the events dropped because too many were waiting.
func (b *Broker) EventsDropped() uint64 { return b.events.dropped.Load() }

// emit reports one of the broker's own events; build runs only if
// somebody listens.
func (b *Broker) emit(key string, build func() wire.Table) {
	if b.events.Enabled() {
		b.events.Emit(key, build())
	}
}
