package broker

import (
	"testing"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/exchange"
)

// TestEventsNeverBlock: an emitter whose publisher is behind drops and
// counts rather than holding up the op that emitted.
func TestEventsNeverBlock(t *testing.T) {
	e := newEvents()
	for i := 0; i < eventQueueLen+10; i++ {
		e.Emit("queue.created", wire.Table{})
	}
	if got := e.dropped.Load(); got != 10 {
		t.Fatalf("dropped %d events, want 10", got)
	}
}

// TestEventsEnabled: enabled only while something is bound to the event
// exchange.
func TestEventsEnabled(t *testing.T) {
	e := newEvents()
	if e.Enabled() {
		t.Fatal("enabled without an exchange")
	}
	x := exchange.New("amq.rabbitmq.event", exchange.Topic, true, false, true, nil)
	e.x.Store(x)
	if e.Enabled() {
		t.Fatal("enabled with nothing bound")
	}
	dest := exchange.Destination{Name: "q"}
	if _, err := x.Bind(dest, "#", nil); err != nil {
		t.Fatal(err)
	}
	if !e.Enabled() {
		t.Fatal("not enabled with a queue bound")
	}
	x.Unbind(dest, "#", nil)
	if e.Enabled() {
		t.Fatal("still enabled after the unbind")
	}
}
