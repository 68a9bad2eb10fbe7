package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/amqp/wire"
)

// rawProducer is a producer's raw connection and its pre-encoded message.
type rawProducer struct {
	c  *rawConn
	ch uint16
	// pub is the publish method, props the encoded content properties per
	// priority (one entry without -priority), body the reused body.
	pub   wire.BasicPublish
	props [][]byte
	body  []byte
	buf   []byte // encoding scratch
	// confirms is nil without confirms; only the reader goroutine uses it.
	confirms *confirmTracker
}

// rawConsumer is a consumer's raw connection.
type rawConsumer struct {
	c  *rawConn
	ch uint16
}

// connectRaw is consumer.connect for the raw client: the same connection,
// channel and settings.
func (c *consumer) connectRaw(b *bench, role, q string) error {
	cfg := b.cfg
	conn, err := b.dialRaw(role)
	if err != nil {
		return err
	}
	conn.flushOnRead = true
	c.raw = &rawConsumer{c: conn}
	if c.raw.ch, err = conn.openChannel(); err != nil {
		return fmt.Errorf("%w: %s: open channel: %v", errSetup, role, err)
	}
	if cfg.qos > 0 {
		if _, err := conn.rpc(c.raw.ch, &wire.BasicQos{PrefetchCount: uint16(cfg.qos)}, 60, 11); err != nil {
			return fmt.Errorf("%w: %s: basic.qos %d: %v", errSetup, role, cfg.qos, err)
		}
	}
	if _, err := conn.rpc(c.raw.ch, &wire.BasicConsume{Queue: q, NoAck: cfg.autoack}, 60, 21); err != nil {
		return fmt.Errorf("%w: %s: consume %q: %v", errSetup, role, q, err)
	}
	return nil
}

// connectRaw is producer.connect for the raw client; it also starts the
// connection's reader. p.exchange and p.key are set.
func (p *producer) connectRaw(b *bench, role string, headers amqp091.Table) error {
	cfg := b.cfg
	conn, err := b.dialRaw(role)
	if err != nil {
		return err
	}
	r := &rawProducer{c: conn, body: make([]byte, cfg.size), buf: make([]byte, 0, 2*cfg.size+512)}
	p.raw = r
	if r.ch, err = conn.openChannel(); err != nil {
		return fmt.Errorf("%w: %s: open channel: %v", errSetup, role, err)
	}
	if cfg.confirm > 0 {
		if _, err := conn.rpc(r.ch, &wire.ConfirmSelect{}, 85, 11); err != nil {
			return fmt.Errorf("%w: %s: confirm.select: %v", errSetup, role, err)
		}
		r.confirms = newConfirmTracker(cfg.confirm)
	}
	r.pub = wire.BasicPublish{Exchange: p.exchange, RoutingKey: p.key}
	props := wire.Properties{Headers: wire.Table(headers)}
	if cfg.persistent {
		props.DeliveryMode = 2
	}
	for prio := range cfg.priority + 1 {
		props.Priority = uint8(prio)
		r.props = append(r.props, props.Append(nil))
	}
	conn.async = true
	go p.readRaw(b)
	return nil
}

// readRaw is a raw producer's reader: confirms, flow control, errors.
func (p *producer) readRaw(b *bench) {
	r := p.raw
	c := r.c
	defer close(c.readerDone)
	defer c.signal()
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			if !c.closing.Load() {
				b.fail(fmt.Errorf("producer %d: %v", p.id, err))
			}
			return
		}
		if f.Type != wire.FrameMethod {
			continue
		}
		m, err := c.dec.Decode(f.Payload)
		if err != nil {
			b.fail(fmt.Errorf("producer %d: %v", p.id, err))
			return
		}
		switch m := m.(type) {
		case *wire.BasicAck:
			if r.confirms != nil {
				p.confirmed.Add(r.confirms.settle(m.DeliveryTag, m.Multiple))
				c.signal()
			}
			continue
		case *wire.BasicNack:
			if r.confirms != nil {
				p.nacked.Add(r.confirms.settle(m.DeliveryTag, m.Multiple))
				c.signal()
			}
			continue
		}
		if err := c.control(f.Channel, m); err != nil {
			if !errors.Is(err, errClosed) {
				b.fail(fmt.Errorf("producer %d: %v", p.id, err))
			}
			return
		}
	}
}

// runRaw is the raw producer's publish loop. Publishes collect in the write
// buffer, which is flushed when it fills, before the producer waits (confirm
// window full, connection blocked, pacing) and at least every rawFlushEvery.
func (p *producer) runRaw(b *bench) {
	cfg := b.cfg
	r := p.raw
	c := r.c
	go func() {
		// A producer stuck writing to a broker that stopped reading must not
		// hold up the end of the run for ever.
		select {
		case <-b.stop:
			_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		case <-c.readerDone:
		}
	}()
	rng := newPriorities(p.id, cfg.priority)
	pace := newPacer(cfg.rate)
	window := int64(cfg.confirm)
	var lastFlush time.Duration
	flush := func() bool {
		if err := c.flush(); err != nil {
			b.fail(fmt.Errorf("producer %d: publish: %v", p.id, err))
			return false
		}
		lastFlush = time.Since(b.base)
		return true
	}
	// wait flushes and waits for a signal from the reader; false: stop.
	wait := func() bool {
		if !flush() {
			return false
		}
		select {
		case <-c.notify:
			return true
		case <-b.stop:
		case <-c.readerDone:
		}
		return false
	}
	defer func() { _ = c.flush() }()
	for {
		select {
		case <-b.stop:
			return
		case <-c.readerDone:
			return // the reader reported why
		default:
		}
		if c.blocked.Load() {
			if !wait() {
				return
			}
			continue
		}
		if window > 0 && p.outstanding() >= window {
			if !wait() {
				return
			}
			continue
		}
		if !pace.wait(b.stop, flush) {
			return
		}
		prio := 0
		if rng != nil {
			prio = rng.IntN(cfg.priority + 1)
		}
		now := time.Since(b.base)
		binary.LittleEndian.PutUint64(r.body, uint64(now))
		r.buf = c.appendPublish(r.buf[:0], r.ch, &r.pub, r.props[prio], r.body)
		if err := c.write(r.buf); err != nil {
			b.fail(fmt.Errorf("producer %d: publish: %v", p.id, err))
			return
		}
		p.published.Add(1)
		if now-lastFlush > rawFlushEvery && !flush() {
			return
		}
	}
}

// runRaw is the raw consumer's loop: it reads deliveries in place and acks
// through the write buffer, flushed whenever the reader waits for data.
func (c *consumer) runRaw(b *bench) {
	rc := c.raw
	conn := rc.c
	defer close(conn.readerDone)
	acks := newAcker(b.cfg)
	var tag, remaining uint64
	var sent time.Duration
	inBody, haveTS := false, false
	deliver := func() bool {
		if haveTS {
			c.lat.record(time.Since(b.base) - sent)
		}
		c.recv.Add(1)
		if ack, multiple := acks.next(); ack && !conn.closing.Load() {
			if err := conn.sendAck(rc.ch, tag, multiple); err != nil {
				b.fail(fmt.Errorf("consumer %d: ack: %v", c.id, err))
				return false
			}
		}
		return true
	}
	for {
		f, err := conn.fr.ReadFrame()
		if err != nil {
			if !conn.closing.Load() {
				b.fail(fmt.Errorf("consumer %d: %v", c.id, err))
			}
			return
		}
		switch f.Type {
		case wire.FrameMethod:
			if t, ok := parseDeliver(f.Payload); ok {
				tag, inBody, haveTS = t, false, false
				continue
			}
			m, err := conn.dec.Decode(f.Payload)
			if err != nil {
				b.fail(fmt.Errorf("consumer %d: %v", c.id, err))
				return
			}
			if err := conn.control(f.Channel, m); err != nil {
				if !errors.Is(err, errClosed) {
					b.fail(fmt.Errorf("consumer %d: %v", c.id, err))
				}
				return
			}
		case wire.FrameHeader:
			_, size, _, err := wire.ParseContentHeader(f.Payload)
			if err != nil {
				b.fail(fmt.Errorf("consumer %d: %v", c.id, err))
				return
			}
			remaining, inBody = size, true
			if size == 0 {
				inBody = false
				if !deliver() {
					return
				}
			}
		case wire.FrameBody:
			if !inBody {
				continue
			}
			if !haveTS && len(f.Payload) >= timestampSize {
				sent = time.Duration(binary.LittleEndian.Uint64(f.Payload))
				haveTS = true
			}
			remaining -= min(remaining, uint64(len(f.Payload)))
			if remaining == 0 {
				inBody = false
				if !deliver() {
					return
				}
			}
		}
	}
}
