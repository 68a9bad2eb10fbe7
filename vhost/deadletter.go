package vhost

import (
	"time"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/storage"
)

// death is one dead-lettering event, as x-death records it.
type death struct {
	queue  string
	reason queue.Reason
	time   time.Time
	// exchange is where the message goes now; routingKey replaces its
	// routing keys when hasRoutingKey.
	exchange      string
	routingKey    string
	hasRoutingKey bool
}

// deathKey is one x-death entry's identity.
type deathKey struct {
	queue  string
	reason queue.Reason
}

// deadLetter re-publishes a queue's dead letters to its dead-letter
// exchange, dropping any that would cycle back without a rejection.
func (v *VHost) deadLetter(q queue.Interface, dls []queue.DeadLetter) {
	cfg := q.Config()
	d := death{
		queue: q.Declared().Name, time: time.Now(), exchange: cfg.DeadLetterExchange,
		routingKey: cfg.DeadLetterRoutingKey, hasRoutingKey: cfg.HasDeadLetterKey,
	}
	var s Scratch
	for _, dl := range dls {
		d.reason = dl.Reason
		p, history := recordDeath(dl.Message, d)
		v.mu.RLock()
		src := v.exchanges[p.Exchange]
		if src == nil {
			// A missing dead-letter exchange drops the message, as in RabbitMQ.
			v.mu.RUnlock()
			continue
		}
		s.queues = s.queues[:0]
		v.routeLocked(src, &p, &s)
		// A dead letter may wait at a delayed exchange, as any message.
		var b *storage.Batch
		var submitted []*delayedExchange
		for _, d := range s.delayed {
			v.delay(d.x, &p, d.ms, &b, nil, &submitted)
		}
		s.delayed, s.err = s.delayed[:0], nil
		v.mu.RUnlock()
		kept := s.queues[:0]
		for _, target := range s.queues {
			if dl.Reason != queue.Rejected && cycles(target.Declared().Name, history) {
				continue
			}
			kept = append(kept, target)
		}
		p.readDedupKey()
		v.enqueueBatch(kept, p.Message, b, nil, nil)
		v.delaysSubmitted(submitted)
	}
}

// recordDeath returns the publishing that carries m to its dead-letter
// exchange, with the death recorded in its headers the way RabbitMQ 3.10
// does, and the message's x-death history, most recent first.
func recordDeath(m *queue.Message, d death) (Publishing, []deathKey) {
	var props wire.Properties
	_ = props.Decode(m.Properties) // it decoded when published; none is fine
	headers := props.Headers
	if headers == nil {
		headers = wire.Table{}
	}
	// The routing keys a message had: its key and its CC keys (BCC never
	// reaches a queue).
	keys := append([]string{m.RoutingKey}, RoutingKeys(headers["CC"])...)
	rks := make([]any, len(keys))
	for i, k := range keys {
		rks[i] = k
	}
	entry := wire.Table{
		"count":        int64(1),
		"reason":       string(d.reason),
		"queue":        d.queue,
		"time":         d.time.Truncate(time.Second).UTC(),
		"exchange":     m.Exchange,
		"routing-keys": rks,
	}
	if props.Present&wire.FlagExpiration != 0 || props.Expiration != "" {
		// The message must not expire again on its way: its TTL moves into
		// the record.
		entry["original-expiration"] = props.Expiration
		props.Expiration = ""
		props.Present &^= wire.FlagExpiration
	}

	// One entry per queue and reason, most recent first: a repeat bumps the
	// count of the existing entry and moves it to the front.
	old, _ := headers["x-death"].([]any)
	deaths := make([]any, 0, len(old)+1)
	deaths = append(deaths, entry)
	bumped := false
	for _, x := range old {
		t, ok := x.(wire.Table)
		if ok && !bumped && t["queue"] == d.queue && t["reason"] == string(d.reason) {
			again := make(wire.Table, len(t))
			for k, v := range t {
				again[k] = v
			}
			n, _ := queue.IntArg(t["count"])
			again["count"] = n + 1
			deaths[0] = again
			bumped = true
			continue
		}
		deaths = append(deaths, x)
	}
	headers["x-death"] = deaths
	if _, ok := headers["x-first-death-reason"]; !ok {
		headers["x-first-death-reason"] = string(d.reason)
		headers["x-first-death-queue"] = d.queue
		headers["x-first-death-exchange"] = m.Exchange
	}
	props.Headers = headers

	if d.hasRoutingKey {
		// The dead-letter routing key replaces all the message's keys, so
		// its CC list goes too, as in RabbitMQ.
		keys = []string{d.routingKey}
		delete(headers, "CC")
	}
	out := &queue.Message{
		Exchange:   d.exchange,
		RoutingKey: keys[0],
		Properties: props.Append(make([]byte, 0, len(m.Properties)+128)),
		Body:       m.Body,
		Persistent: m.Persistent,
		Priority:   m.Priority,
	}
	history := make([]deathKey, 0, len(deaths))
	for _, x := range deaths {
		if t, ok := x.(wire.Table); ok {
			q, _ := t["queue"].(string)
			r, _ := t["reason"].(string)
			history = append(history, deathKey{queue: q, reason: queue.Reason(r)})
		}
	}
	return Publishing{
		Exchange: d.exchange, RoutingKey: keys[0], CC: keys[1:],
		Headers: headers, Message: out,
	}, history
}

// RoutingKeys reads a CC or BCC header: a string or an array of strings.
func RoutingKeys(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		keys := make([]string, 0, len(v))
		for _, k := range v {
			if s, ok := k.(string); ok {
				keys = append(keys, s)
			}
		}
		return keys
	}
	return nil
}

// cycles is RabbitMQ's cycle detection: a message that already died in the
// target queue, with no rejection since, would loop forever, so it is dropped.
func cycles(target string, history []deathKey) bool {
	for _, d := range history {
		if d.reason == queue.Rejected {
			return false
		}
		if d.queue == target {
			return true
		}
	}
	return false
}
