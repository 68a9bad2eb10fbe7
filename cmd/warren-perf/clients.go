package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// producer publishes on its own connection. Its counters are read by the
// progress reporter; everything else belongs to its goroutine.
type producer struct {
	id       int
	conn     *amqp091.Connection
	ch       *amqp091.Channel
	confirms chan amqp091.Confirmation // nil without confirms

	exchange, key string
	msg           amqp091.Publishing

	raw *rawProducer // with -client raw; conn, ch and confirms are nil

	published atomic.Int64
	confirmed atomic.Int64
	nacked    atomic.Int64
	_         [64]byte // keep the next producer's counters off this cache line
}

// consumer consumes one queue on its own connection.
type consumer struct {
	id         int
	conn       *amqp091.Connection
	ch         *amqp091.Channel
	deliveries <-chan amqp091.Delivery
	closed     chan *amqp091.Error

	raw *rawConsumer // with -client raw; conn, ch, deliveries are nil

	recv atomic.Int64
	lat  recorder
}

// connectClients opens all consumers, then all producers, so that the first
// messages find their consumers. Each client is registered before it
// connects, so that closeClients also closes a half-open one.
func (b *bench) connectClients(t *topology) error {
	raw := b.cfg.client == clientRaw
	for i := range b.cfg.consumers {
		c := &consumer{id: i}
		b.mu.Lock()
		b.consumers = append(b.consumers, c)
		b.mu.Unlock()
		role, q := fmt.Sprintf("consumer %d", i), t.queues[i%len(t.queues)]
		var err error
		if raw {
			err = c.connectRaw(b, role, q)
		} else {
			err = c.connect(b, role, q)
		}
		if err != nil {
			return err
		}
	}
	for _, c := range b.consumers {
		if c.raw != nil {
			c.raw.c.async = true
			go c.runRaw(b)
		} else {
			go c.run(b)
		}
	}

	for i := range b.cfg.producers {
		p := &producer{id: i}
		b.mu.Lock()
		b.producers = append(b.producers, p)
		b.mu.Unlock()
		role := fmt.Sprintf("producer %d", i)
		var headers amqp091.Table
		p.exchange, p.key, headers = t.route(i)
		var err error
		if raw {
			err = p.connectRaw(b, role, headers)
		} else {
			err = p.connect(b, role, headers)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// connect opens the consumer's connection and channel and consumes q.
func (c *consumer) connect(b *bench, role, q string) error {
	cfg := b.cfg
	conn, err := b.dial(role)
	if err != nil {
		return err
	}
	c.conn = conn
	if c.ch, err = conn.Channel(); err != nil {
		return fmt.Errorf("%w: %s: open channel: %v", errSetup, role, err)
	}
	c.closed = c.ch.NotifyClose(make(chan *amqp091.Error, 1))
	if cfg.qos > 0 {
		if err := c.ch.Qos(cfg.qos, 0, false); err != nil {
			return fmt.Errorf("%w: %s: basic.qos %d: %v", errSetup, role, cfg.qos, err)
		}
	}
	if c.deliveries, err = c.ch.Consume(q, "", cfg.autoack, false, false, false, nil); err != nil {
		return fmt.Errorf("%w: %s: consume %q: %v", errSetup, role, q, err)
	}
	return nil
}

// connect opens the producer's connection and channel and prepares its
// message.
func (p *producer) connect(b *bench, role string, headers amqp091.Table) error {
	cfg := b.cfg
	conn, err := b.dial(role)
	if err != nil {
		return err
	}
	p.conn = conn
	if p.ch, err = conn.Channel(); err != nil {
		return fmt.Errorf("%w: %s: open channel: %v", errSetup, role, err)
	}
	if cfg.confirm > 0 {
		if err := p.ch.Confirm(false); err != nil {
			return fmt.Errorf("%w: %s: confirm.select: %v", errSetup, role, err)
		}
		// Never more than cfg.confirm outstanding, so the library's
		// sends to this channel never block its reader.
		p.confirms = p.ch.NotifyPublish(make(chan amqp091.Confirmation, cfg.confirm+1))
	}
	p.msg = amqp091.Publishing{Headers: headers, Body: make([]byte, cfg.size)}
	if cfg.persistent {
		p.msg.DeliveryMode = amqp091.Persistent
	}
	return nil
}

// closeClients closes producers' connections, then consumers'.
func (b *bench) closeClients() {
	b.mu.Lock()
	ps, cs := b.producers, b.consumers
	b.mu.Unlock()
	for _, p := range ps {
		if p.conn != nil {
			_ = p.conn.Close()
		}
		if p.raw != nil {
			_ = p.raw.c.close()
		}
	}
	for _, c := range cs {
		if c.conn != nil {
			_ = c.conn.Close()
		}
		if c.raw != nil {
			_ = c.raw.c.close()
		}
	}
}

// outstanding is how many of the producer's publishes await their confirm.
func (p *producer) outstanding() int64 {
	return p.published.Load() - p.confirmed.Load() - p.nacked.Load()
}

// newPriorities returns the source of producer id's random message
// priorities, or nil without -priority.
func newPriorities(id, maxPriority int) *rand.Rand {
	if maxPriority == 0 {
		return nil
	}
	return rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
}

// pacer spaces a producer's publishes to -rate. A nil pacer never waits.
type pacer struct {
	interval time.Duration
	next     time.Time
	timer    *time.Timer
}

func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return nil
	}
	return &pacer{
		interval: time.Duration(float64(time.Second) / rate),
		next:     time.Now(),
		timer:    time.NewTimer(time.Hour),
	}
}

// wait returns when the next publish is due, false if stop closed first.
// Before it sleeps it calls idle (if not nil); idle returning false stops
// the producer too.
func (p *pacer) wait(stop <-chan struct{}, idle func() bool) bool {
	if p == nil {
		return true
	}
	now := time.Now()
	if d := p.next.Sub(now); d > 0 {
		if idle != nil && !idle() {
			return false
		}
		p.timer.Reset(d)
		select {
		case <-p.timer.C:
		case <-stop:
			return false
		}
	} else if d < -time.Second {
		// Far behind (the broker held us up): do not burst to catch up.
		p.next = now
	}
	p.next = p.next.Add(p.interval)
	return true
}

func (p *producer) run(b *bench) {
	if p.raw != nil {
		p.runRaw(b)
		return
	}
	cfg := b.cfg
	body := p.msg.Body
	rng := newPriorities(p.id, cfg.priority)
	pace := newPacer(cfg.rate)
	for {
		select {
		case <-b.stop:
			return
		default:
		}
		if p.confirms != nil && !p.takeConfirms(b) {
			return
		}
		if !pace.wait(b.stop, nil) {
			return
		}
		binary.LittleEndian.PutUint64(body, uint64(time.Since(b.base)))
		if rng != nil {
			p.msg.Priority = uint8(rng.IntN(cfg.priority + 1))
		}
		if err := p.ch.Publish(p.exchange, p.key, false, false, p.msg); err != nil {
			b.fail(fmt.Errorf("producer %d: publish: %v", p.id, err))
			return
		}
		p.published.Add(1)
	}
}

// takeConfirms counts the confirms that arrived and, while the window of
// outstanding confirms is full, waits for more. It returns false when the
// producer must stop.
func (p *producer) takeConfirms(b *bench) bool {
	window := int64(b.cfg.confirm)
	for {
		var c amqp091.Confirmation
		var ok bool
		if p.outstanding() < window {
			select {
			case c, ok = <-p.confirms:
			default:
				return true
			}
		} else {
			select {
			case c, ok = <-p.confirms:
			case <-b.stop:
				return false
			}
		}
		if !ok {
			b.fail(fmt.Errorf("producer %d: channel closed while waiting for confirms", p.id))
			return false
		}
		if c.Ack {
			p.confirmed.Add(1)
		} else {
			p.nacked.Add(1)
		}
	}
}

// acker decides which deliveries a consumer acks: none with -autoack, each
// one, or every -multi-ack'th with multiple=true.
type acker struct {
	manual bool
	multi  uint64
	n      uint64 // deliveries so far, with manual acks
}

func newAcker(cfg *config) acker {
	return acker{manual: !cfg.autoack, multi: uint64(cfg.multiAck)}
}

// next counts a delivery and says whether to ack it now, and how.
func (a *acker) next() (ack, multiple bool) {
	if !a.manual {
		return false, false
	}
	a.n++
	if a.multi > 1 {
		return a.n%a.multi == 0, true
	}
	return true, false
}

func (c *consumer) run(b *bench) {
	acks := newAcker(b.cfg)
	for d := range c.deliveries {
		if len(d.Body) >= timestampSize {
			sent := time.Duration(binary.LittleEndian.Uint64(d.Body))
			c.lat.record(time.Since(b.base) - sent)
		}
		c.recv.Add(1)
		if ack, multiple := acks.next(); ack {
			if err := c.ch.Ack(d.DeliveryTag, multiple); err != nil {
				b.fail(fmt.Errorf("consumer %d: ack: %v", c.id, err))
				return
			}
		}
	}
	reason := "deliveries ended"
	select {
	case err := <-c.closed:
		if err != nil {
			reason = "channel closed: " + err.Error()
		}
	default:
	}
	b.fail(fmt.Errorf("consumer %d: %s", c.id, reason))
}
