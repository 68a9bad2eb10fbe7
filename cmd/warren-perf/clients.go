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
// messages find their consumers.
func (b *bench) connectClients(t *topology) error {
	if b.cfg.client == clientRaw {
		return b.connectRaw(t)
	}
	cfg := b.cfg
	for i := range cfg.consumers {
		c := &consumer{id: i}
		b.mu.Lock()
		b.consumers = append(b.consumers, c)
		b.mu.Unlock()
		role := fmt.Sprintf("consumer %d", i)
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
		q := t.queues[i%len(t.queues)]
		if c.deliveries, err = c.ch.Consume(q, "", cfg.autoack, false, false, false, nil); err != nil {
			return fmt.Errorf("%w: %s: consume %q: %v", errSetup, role, q, err)
		}
	}
	for _, c := range b.consumers {
		go c.run(b)
	}

	for i := range cfg.producers {
		p := &producer{id: i}
		b.mu.Lock()
		b.producers = append(b.producers, p)
		b.mu.Unlock()
		role := fmt.Sprintf("producer %d", i)
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
		var headers amqp091.Table
		p.exchange, p.key, headers = t.route(i)
		p.msg = amqp091.Publishing{Headers: headers, Body: make([]byte, cfg.size)}
		if cfg.persistent {
			p.msg.DeliveryMode = amqp091.Persistent
		}
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

func (p *producer) run(b *bench) {
	if p.raw != nil {
		p.runRaw(b)
		return
	}
	cfg := b.cfg
	body := p.msg.Body
	var rng *rand.Rand
	if cfg.priority > 0 {
		rng = rand.New(rand.NewPCG(uint64(p.id), uint64(time.Now().UnixNano())))
	}
	var pace *time.Timer
	var interval time.Duration
	if cfg.rate > 0 {
		interval = time.Duration(float64(time.Second) / cfg.rate)
		pace = time.NewTimer(time.Hour)
		defer pace.Stop()
	}
	next := time.Now()
	outstanding := 0
	for {
		select {
		case <-b.stop:
			return
		default:
		}
		if p.confirms != nil {
			if !p.takeConfirms(b, &outstanding) {
				return
			}
		}
		if pace != nil {
			now := time.Now()
			if wait := next.Sub(now); wait > 0 {
				pace.Reset(wait)
				select {
				case <-pace.C:
				case <-b.stop:
					return
				}
			} else if wait < -time.Second {
				// Far behind (the broker held us up): do not burst to catch up.
				next = now
			}
			next = next.Add(interval)
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
		outstanding++
	}
}

// takeConfirms counts the confirms that arrived and, while the window of
// outstanding confirms is full, waits for more. It returns false when the
// producer must stop.
func (p *producer) takeConfirms(b *bench, outstanding *int) bool {
	for {
		var c amqp091.Confirmation
		var ok bool
		if *outstanding < b.cfg.confirm {
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
		*outstanding--
		if c.Ack {
			p.confirmed.Add(1)
		} else {
			p.nacked.Add(1)
		}
	}
}

func (c *consumer) run(b *bench) {
	multi := uint64(b.cfg.multiAck)
	manual := !b.cfg.autoack
	var n uint64
	for d := range c.deliveries {
		if len(d.Body) >= timestampSize {
			sent := time.Duration(binary.LittleEndian.Uint64(d.Body))
			c.lat.record(time.Since(b.base) - sent)
		}
		c.recv.Add(1)
		if manual {
			n++
			var err error
			if multi > 1 {
				if n%multi == 0 {
					err = c.ch.Ack(d.DeliveryTag, true)
				}
			} else {
				err = c.ch.Ack(d.DeliveryTag, false)
			}
			if err != nil {
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
