package vhost

import (
	"fmt"
	"sync"
	"time"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
)

// Deduplication exchanges, as rabbitmq-message-deduplication: a message
// whose x-deduplication-header value was seen within the cache's TTL is
// not routed (so a publisher confirm acks it, and a mandatory publish is
// returned, as with the plugin); any other message is routed to every
// binding, as fanout, and its value remembered for its x-cache-ttl header's
// milliseconds, or the exchange's x-cache-ttl, or until the cache of
// x-cache-size values is full and it is the oldest.

// dedupCaches holds each deduplication exchange's cache.
type dedupCaches struct {
	mu     sync.Mutex // guards caches and every cache's contents
	caches map[*exchange.Exchange]*dedupCache
}

// dedupCache is one exchange's values, oldest first in order.
type dedupCache struct {
	cfg     exchange.DedupConfig
	expires map[string]int64 // value → unix ms it expires at (0: never)
	order   []string         // insertion order, for eviction when full
	head    int              // order[head:] is live
}

// dedupKey renders a header value as a map key that keeps its type, as
// the plugin's Mnesia keys are Erlang terms.
func dedupKey(v any) string {
	switch v := v.(type) {
	case string:
		return "S" + v
	case []byte:
		return "S" + string(v) // a binary, as a longstr is
	}
	return fmt.Sprintf("%s:%v", exchange.TypeName(v), v)
}

// duplicate reports whether p is a duplicate at deduplication exchange e,
// remembering its value if not.
func (v *VHost) duplicate(e *exchange.Exchange, p *Publishing) bool {
	hv, ok := p.Headers["x-deduplication-header"]
	if !ok {
		return false
	}
	key := dedupKey(hv)
	now := time.Now().UnixMilli()
	ttl := int64(0)
	if t, ok := queue.IntArg(p.Headers["x-cache-ttl"]); ok {
		ttl = t
	}
	d := &v.dedup
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.caches == nil {
		d.caches = make(map[*exchange.Exchange]*dedupCache)
	}
	c := d.caches[e]
	if c == nil {
		c = &dedupCache{cfg: exchange.ParseDedupConfig(e.Args), expires: make(map[string]int64)}
		d.caches[e] = c
	}
	if exp, ok := c.expires[key]; ok {
		if exp == 0 || exp > now {
			return true
		}
		delete(c.expires, key) // expired: the plugin deletes it on lookup
	}
	if ttl == 0 {
		ttl = c.cfg.TTL
	}
	if c.cfg.Size > 0 && len(c.expires) >= c.cfg.Size {
		c.evictOne()
	}
	exp := int64(0)
	if ttl > 0 {
		exp = now + ttl
	}
	c.expires[key] = exp
	c.order = append(c.order, key)
	if c.head > 1024 && c.head > len(c.order)/2 {
		c.order = append([]string(nil), c.order[c.head:]...)
		c.head = 0
	}
	return false
}

// evictOne drops the oldest value still cached.
func (c *dedupCache) evictOne() {
	for c.head < len(c.order) {
		k := c.order[c.head]
		c.order[c.head] = ""
		c.head++
		if _, ok := c.expires[k]; ok {
			delete(c.expires, k)
			return
		}
	}
}

// drop forgets a deleted exchange's cache.
func (d *dedupCaches) drop(e *exchange.Exchange) {
	d.mu.Lock()
	delete(d.caches, e)
	d.mu.Unlock()
}

// storedDedupKey reads a recovered message's x-deduplication-header from
// its encoded properties, for a deduplicating queue's restart.
func storedDedupKey(properties []byte) string {
	var props wire.Properties
	if props.Decode(properties) != nil {
		return ""
	}
	hv, ok := props.Headers["x-deduplication-header"]
	if !ok {
		return ""
	}
	return dedupKey(hv)
}

// readDedupKey sets the message's DedupKey from its x-deduplication-header,
// once, before it is enqueued, for deduplicating queues.
func (p *Publishing) readDedupKey() {
	if hv, ok := p.Headers["x-deduplication-header"]; ok && p.Message.DedupKey == "" {
		p.Message.DedupKey = dedupKey(hv)
	}
}
