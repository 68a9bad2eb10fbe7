package vhost

import (
	"time"

	"github.com/warrenmq/warren/queue"
)

// Death is one dead-lettering event, as x-death records it.
type Death struct {
	Queue  string
	Reason queue.Reason
	Time   time.Time
	// DeadLetterExchange is where the message goes now; RoutingKey replaces
	// its routing keys when HasRoutingKey.
	DeadLetterExchange string
	RoutingKey         string
	HasRoutingKey      bool
}

// DeathKey is one x-death entry's identity.
type DeathKey struct {
	Queue  string
	Reason queue.Reason
}

// Codec is what the virtual host needs from the protocol layer, which owns
// the encodings: recording deaths in messages, and field tables for stored
// definitions (their arguments keep their AMQP types that way).
type Codec interface {
	// DeadLetter returns the publishing that carries m to its dead-letter
	// exchange (headers updated, expiration removed) and the message's
	// x-death history, most recent first.
	DeadLetter(m *queue.Message, d Death) (Publishing, []DeathKey)
	EncodeTable(t map[string]any) []byte
	DecodeTable(b []byte) (map[string]any, error)
}

// deadLetter re-publishes a queue's dead letters to its dead-letter
// exchange, dropping any that would cycle back without a rejection.
func (v *VHost) deadLetter(q *queue.Queue, dls []queue.DeadLetter) {
	if v.codec == nil {
		return
	}
	cfg := q.Config()
	now := time.Now()
	var s Scratch
	for _, dl := range dls {
		p, history := v.codec.DeadLetter(dl.Message, Death{
			Queue: q.Name, Reason: dl.Reason, Time: now,
			DeadLetterExchange: cfg.DeadLetterExchange,
			RoutingKey:         cfg.DeadLetterRoutingKey, HasRoutingKey: cfg.HasDeadLetterKey,
		})
		v.mu.RLock()
		src := v.exchanges[p.Exchange]
		if src == nil {
			// A missing dead-letter exchange drops the message, as in RabbitMQ.
			v.mu.RUnlock()
			continue
		}
		s.queues = s.queues[:0]
		v.routeLocked(src, &p, &s)
		v.mu.RUnlock()
		kept := s.queues[:0]
		for _, target := range s.queues {
			if dl.Reason != queue.Rejected && cycles(target.Name, history) {
				continue
			}
			kept = append(kept, target)
		}
		v.enqueue(kept, p.Message, nil, nil)
	}
}

// cycles is RabbitMQ's cycle detection: a message that already died in the
// target queue, with no rejection since, would loop forever, so it is dropped.
func cycles(target string, history []DeathKey) bool {
	for _, d := range history {
		if d.Reason == queue.Rejected {
			return false
		}
		if d.Queue == target {
			return true
		}
	}
	return false
}
