package vhost

import (
	"errors"
	"strings"

	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/storage"
)

// ReplyToPrefix is the routing-key prefix of RabbitMQ's direct reply-to
// pseudo-queues.
const ReplyToPrefix = "amq.rabbitmq.reply-to."

// ReplyTarget receives direct reply-to messages for one channel.
type ReplyTarget interface {
	// DeliverReply hands m to the channel's reply consumer.
	DeliverReply(m *queue.Message) bool
}

// Publishing is one message on its way in.
type Publishing struct {
	Exchange   string
	RoutingKey string
	// Headers are the message headers, for headers exchanges.
	Headers map[string]any
	// CC and BCC are the sender-selected extra routing keys.
	CC, BCC []string
	// Props are the properties a consistent-hash exchange may hash on.
	Props   exchange.MessageProperties
	Message *queue.Message
	// Owner identifies the publisher (its channel) to storage's group
	// commit; nil is fine.
	Owner any
}

// Scratch holds buffers one publisher reuses between publishes, so routing
// does not allocate per message. It is not safe for concurrent use.
type Scratch struct {
	dests  []exchange.Destination
	seen   []string // exchanges visited, against exchange-to-exchange cycles
	queues []queue.Interface
	// Routed names the queues of the last publish, only while tracing is
	// on (the firehose's routed_queues).
	Routed []string
	// delayed lists the delayed exchanges the message waits at; err is an
	// x-delay that cannot be read.
	delayed []delayAt
	err     error
}

// delayAt is a delayed exchange a message waits at, and for how long (ms).
type delayAt struct {
	x  *exchange.Exchange
	ms int64
}

// ErrRefused is what onDisk gets when a full queue (x-overflow
// reject-publish) refused a stored message: confirms report it as a nack.
var ErrRefused = errors.New("vhost: refused by a full queue")

// Routed is the
// outcome: how many queues took it, and how many refused it because they
// were full (x-overflow reject-publish), which publisher confirms report as
// a nack. Routed and refused both zero means unroutable.
type Routed struct {
	Queues  int
	Refused int
	// Stored says the message is being written to disk: onDisk will be
	// called once it is there (or failed).
	Stored bool
}

// Publish routes p and enqueues it on every matching queue. A persistent
// message that reaches durable queues is stored; onDisk (may be nil) is
// called when that write is on disk, and only then (Routed.Stored).
func (v *VHost) Publish(p *Publishing, s *Scratch, onDisk func(error)) (Routed, error) {
	if p.Exchange == "" && strings.HasPrefix(p.RoutingKey, ReplyToPrefix) {
		return Routed{Queues: v.publishReply(p)}, nil
	}
	v.mu.RLock()
	src := v.exchanges[p.Exchange]
	if src == nil {
		v.mu.RUnlock()
		return Routed{}, v.noExchange(p.Exchange)
	}
	if src.Internal {
		v.mu.RUnlock()
		return Routed{}, errorf(AccessRefused, "cannot publish to internal exchange '%s' in vhost '%s'", p.Exchange, v.Name)
	}
	s.queues = s.queues[:0]
	v.routeLocked(src, p, s)
	if s.err != nil {
		v.mu.RUnlock()
		err := s.err
		s.err = nil
		clear(s.queues)
		s.delayed = s.delayed[:0]
		return Routed{}, err
	}
	var b *storage.Batch
	var submitted []*delayedExchange
	for _, d := range s.delayed {
		v.delay(d.x, p, d.ms, &b, p.Owner, &submitted)
	}
	clear(s.delayed)
	s.delayed = s.delayed[:0]
	v.mu.RUnlock()
	src.CountPublish(len(s.queues) > 0)
	if v.tracing.Load() {
		s.Routed = s.Routed[:0]
		for _, q := range s.queues {
			s.Routed = append(s.Routed, q.Declared().Name)
		}
	}

	p.readDedupKey()
	r := v.enqueueBatch(s.queues, p.Message, b, p.Owner, onDisk)
	v.delaysSubmitted(submitted)
	clear(s.queues)
	return r, nil
}

// routeLocked collects the queues for p into s.queues, each once, following
// exchange-to-exchange bindings and alternate exchanges.
func (v *VHost) routeLocked(src *exchange.Exchange, p *Publishing, s *Scratch) {
	s.dests = s.dests[:0]
	s.seen = s.seen[:0]
	s.dests = v.routeExchangeLocked(src, p, s, s.dests)
	for _, d := range s.dests {
		q := v.queues[d.Name]
		if q == nil || containsQueue(s.queues, q) {
			continue
		}
		s.queues = append(s.queues, q)
	}
}

// routeExchangeLocked appends the queue destinations reachable from e.
func (v *VHost) routeExchangeLocked(e *exchange.Exchange, p *Publishing, s *Scratch, out []exchange.Destination) []exchange.Destination {
	for _, name := range s.seen {
		if name == e.Name {
			return out
		}
	}
	s.seen = append(s.seen, e.Name)
	start := len(out)
	switch {
	case e.Kind == exchange.Delayed && v.delayedLocked(e, p, s):
		// It waits; the exchange matched nothing now, as in the plugin.
	case e.Kind == exchange.Deduplication && v.duplicate(e, p):
		// A duplicate goes nowhere.
	case e.HashesProperty():
		out = e.RouteProperties(&p.Props, out)
	case e.RoutesOnce():
		out = v.matchLocked(e, p.RoutingKey, p.Headers, out)
	default:
		out = v.matchLocked(e, p.RoutingKey, p.Headers, out)
		for _, k := range p.CC {
			out = v.matchLocked(e, k, p.Headers, out)
		}
		for _, k := range p.BCC {
			out = v.matchLocked(e, k, p.Headers, out)
		}
	}
	// The alternate exchange is for messages this exchange's own bindings
	// did not match; a match to an exchange that reaches nothing counts.
	matched := len(out) > start
	// Follow exchange destinations; they are replaced by what they reach.
	for i := start; i < len(out); i++ {
		d := out[i]
		if !d.Exchange {
			continue
		}
		out = append(out[:i], out[i+1:]...)
		i--
		if next := v.exchanges[d.Name]; next != nil {
			out = v.routeExchangeLocked(next, p, s, out)
		}
	}
	if !matched {
		if ae, ok := v.alternateLocked(e); ok {
			if alt := v.exchanges[ae]; alt != nil {
				out = v.routeExchangeLocked(alt, p, s, out)
			}
		}
	}
	return out
}

// delayedLocked reports whether p waits at delayed exchange e (its x-delay
// is a delay the plugin honours), noting it in s.
func (v *VHost) delayedLocked(e *exchange.Exchange, p *Publishing, s *Scratch) bool {
	ms, ok, err := delayOf(p.Headers)
	if err != nil {
		s.err = err
		return true
	}
	if ok {
		s.delayed = append(s.delayed, delayAt{e, ms})
	}
	return ok
}

// matchLocked applies one exchange's bindings; the default exchange binds
// every queue by its name implicitly.
func (v *VHost) matchLocked(e *exchange.Exchange, key string, headers map[string]any, out []exchange.Destination) []exchange.Destination {
	if e.Name == "" {
		if v.queues[key] != nil {
			out = append(out, exchange.Destination{Name: key})
		}
		return out
	}
	return e.Route(key, headers, out)
}

func containsQueue(qs []queue.Interface, q queue.Interface) bool {
	for _, x := range qs {
		if x == q {
			return true
		}
	}
	return false
}

// RegisterReplyTo makes token route direct replies to t.
func (v *VHost) RegisterReplyTo(token string, t ReplyTarget) {
	v.replyMu.Lock()
	v.replyTo[token] = t
	v.replyMu.Unlock()
}

// UnregisterReplyTo forgets token.
func (v *VHost) UnregisterReplyTo(token string) {
	v.replyMu.Lock()
	delete(v.replyTo, token)
	v.replyMu.Unlock()
}

// publishReply delivers a reply to the channel waiting on its reply-to
// pseudo-queue; a reply for a channel that is gone is dropped, as in RabbitMQ.
func (v *VHost) publishReply(p *Publishing) int {
	token := strings.TrimPrefix(p.RoutingKey, ReplyToPrefix)
	v.replyMu.RLock()
	t := v.replyTo[token]
	v.replyMu.RUnlock()
	if t == nil || !t.DeliverReply(p.Message) {
		return 0
	}
	return 1
}
