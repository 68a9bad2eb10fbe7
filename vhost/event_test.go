package vhost_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/vhost"
)

// recorder is an event.Emitter that keeps what it is given.
type recorder struct {
	enabled bool
	mu      sync.Mutex // guards got
	got     []string   // "key actor"
}

func (r *recorder) Enabled() bool { return r.enabled }

func (r *recorder) Emit(key string, h wire.Table) {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, _ := h["user_who_performed_action"].(string)
	r.got = append(r.got, key+" "+actor)
}

// TestDefinitionEvents: each op reports what it created and deleted, with
// who asked; what the broker does on its own (an auto-delete exchange, a
// deleted queue's bindings) names rmq-internal, as RabbitMQ does.
func TestDefinitionEvents(t *testing.T) {
	tests := []struct {
		name string
		ops  []vhost.Op
		want []string // after the setup ops' events
	}{
		{"declare and delete a queue", []vhost.Op{
			vhost.DeclareQueue{Name: "q"}, vhost.DeclareQueue{Name: "q"}, vhost.DeleteQueue{Name: "q"}, vhost.DeleteQueue{Name: "q"},
		}, []string{"queue.created alice", "queue.deleted alice"}},
		{"bind and unbind", []vhost.Op{
			vhost.DeclareQueue{Name: "q"}, vhost.Bind{Source: "amq.topic", Destination: "q", Key: "k"},
			vhost.Bind{Source: "amq.topic", Destination: "q", Key: "k"}, vhost.Unbind{Source: "amq.topic", Destination: "q", Key: "k"},
		}, []string{"queue.created alice", "binding.created alice", "binding.deleted alice"}},
		{"a deleted queue takes its bindings and an auto-delete exchange", []vhost.Op{
			vhost.DeclareExchange{Name: "x", Kind: "fanout", AutoDelete: true}, vhost.DeclareQueue{Name: "q"},
			vhost.Bind{Source: "x", Destination: "q"}, vhost.DeleteQueue{Name: "q"},
		}, []string{"exchange.created alice", "queue.created alice", "binding.created alice",
			"binding.deleted rmq-internal", "exchange.deleted rmq-internal", "queue.deleted alice"}},
		{"a deleted exchange takes its bindings", []vhost.Op{
			vhost.DeclareExchange{Name: "x", Kind: "direct"}, vhost.Bind{Source: "x", Destination: "amq.direct", ToExchange: true},
			vhost.DeleteExchange{Name: "x"},
		}, []string{"exchange.created alice", "binding.created alice", "exchange.deleted alice", "binding.deleted alice"}},
		{"policies", []vhost.Op{
			vhost.SetPolicy{Name: "p", Pattern: "^q", Definition: map[string]any{"max-length": 1}}, vhost.DeletePolicy{Name: "p"},
		}, []string{"policy.set alice", "policy.cleared alice"}},
		{"refused ops report nothing", []vhost.Op{
			vhost.DeclareExchange{Name: "x", Kind: "nope"}, vhost.Bind{Source: "amq.topic", Destination: "missing"},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{enabled: true}
			v := vhost.New("v", vhost.Options{Events: r})
			for _, op := range tt.ops {
				_, _ = v.ApplyAs(op, "alice")
			}
			require.Equal(t, tt.want, r.got)
		})
	}
}

// TestDefinitionEventsOff: with nobody listening, nothing is emitted.
func TestDefinitionEventsOff(t *testing.T) {
	r := &recorder{}
	v := vhost.New("v", vhost.Options{Events: r})
	apply(t, v, vhost.DeclareQueue{Name: "q"}, vhost.Bind{Source: "amq.topic", Destination: "q", Key: "k"}, vhost.DeleteQueue{Name: "q"})
	require.Empty(t, r.got)
}
