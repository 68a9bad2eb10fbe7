package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/storage/streamlog"
)

// Refusals of what a stream does not do over AMQP 0-9-1, with RabbitMQ
// 3.10.8's codes and texts.
func refuse(op, vhost, name string) *Error {
	return errorf(NotImplemented, "%s not supported by stream queues queue '%s' in vhost '%s'", op, name, vhost)
}

// Stream is one stream: its log and its consumers.
type Stream struct {
	Vhost, Name string

	log *streamlog.Log

	mu     sync.Mutex // guards subs, closed
	subs   map[*Sub]struct{}
	closed bool

	wg sync.WaitGroup // the subscriptions' goroutines

	// retain ends the retention ticker.
	retain chan struct{}
}

// Open opens (or creates) the stream stored in dir.
func Open(dir, vhost, name string, c Config) (*Stream, error) {
	s := &Stream{Vhost: vhost, Name: name, subs: make(map[*Sub]struct{}), retain: make(chan struct{})}
	l, _, err := streamlog.Open(dir, streamlog.Options{
		MaxSegmentBytes: c.MaxSegmentBytes,
		MaxBytes:        c.MaxBytes,
		MaxAge:          c.MaxAge,
		OnDurable:       s.wakeAll,
	})
	if err != nil {
		return nil, err
	}
	s.log = l
	if c.MaxAge > 0 {
		// Age retention also runs between roll-overs, so an idle stream
		// still loses what is too old.
		every := c.MaxAge / 10
		if every < time.Second {
			every = time.Second
		}
		if every > time.Minute {
			every = time.Minute
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					l.Retain()
				case <-s.retain:
					return
				}
			}
		}()
	}
	return s, nil
}

// Log is the stream's log (its figures, for management).
func (s *Stream) Log() *streamlog.Log { return s.log }

// Publish appends a message; done runs once it is durable (the publisher's
// confirm). filter is the x-stream-filter-value ("" if none).
func (s *Stream) Publish(m *queue.Message, filter string, done func(error)) error {
	b := encode(nil, m, filter)
	_, err := s.log.Append(b, done)
	return err
}

// Get, Purge and Nack are refused by streams, as RabbitMQ does.
func (s *Stream) Get() error   { return refuse("basic.get", s.Vhost, s.Name) }
func (s *Stream) Purge() error { return refuse("queue.purge", s.Vhost, s.Name) }
func (s *Stream) Nack() error  { return refuse("basic.nack and basic.reject", s.Vhost, s.Name) }

// Consumer receives a stream's deliveries.
type Consumer interface {
	// Deliver hands d over if the consumer has room (its channel's
	// buffer, flow) and reports whether it took it. It must not block.
	Deliver(d Delivery) bool
	// Cancel says the stream was deleted.
	Cancel()
}

// Delivery is a message as a stream delivers it: its properties carry the
// x-stream-offset header.
type Delivery struct {
	Offset  uint64
	Message *queue.Message
}

// ConsumeOptions are basic.consume's, as a stream reads them.
type ConsumeOptions struct {
	NoAck    bool
	Prefetch int // the channel's basic.qos prefetch count, per consumer
	Args     map[string]any
	Now      time.Time // for an interval offset; zero means time.Now
}

// Subscribe attaches a consumer, checking basic.consume as RabbitMQ 3.10.8
// does.
func (s *Stream) Subscribe(c Consumer, o ConsumeOptions) (*Sub, error) {
	if o.NoAck {
		return nil, errorf(NotImplemented, "automatic acknowledgement not supported by stream queues queue '%s' in vhost '%s'", s.Name, s.Vhost)
	}
	if o.Prefetch <= 0 {
		return nil, errorf(PreconditionFailed, "consumer prefetch count is not set for 'queue '%s' in vhost '%s''", s.Name, s.Vhost)
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	v, present := o.Args["x-stream-offset"]
	spec, err := ParseOffset(v, present, now)
	if err != nil {
		return nil, err
	}
	start, err := spec.start(s.log)
	if err != nil {
		return nil, err
	}
	sub := &Sub{s: s, c: c, credit: o.Prefetch, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	if f, ok := o.Args["x-stream-filter"]; ok {
		sub.filter = map[string]bool{}
		switch x := f.(type) {
		case string:
			sub.filter[x] = true
		case []any:
			for _, e := range x {
				if str, ok := e.(string); ok {
					sub.filter[str] = true
				}
			}
		}
		sub.matchUnfiltered, _ = o.Args["x-stream-match-unfiltered"].(bool)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("stream: closed")
	}
	s.subs[sub] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	r := s.log.NewReader(start)
	go sub.run(r)
	return sub, nil
}

// wakeAll tells every subscription that entries became durable.
func (s *Stream) wakeAll(uint64) {
	s.mu.Lock()
	for sub := range s.subs {
		sub.wake()
	}
	s.mu.Unlock()
}

// Delete cancels the consumers and removes the stream's files.
func (s *Stream) Delete() error {
	for _, sub := range s.stopAll() {
		sub.c.Cancel()
	}
	return s.log.Delete()
}

// Close stops the consumers (without cancelling them: the broker is
// shutting down) and closes the log.
func (s *Stream) Close() error {
	s.stopAll()
	return s.log.Close()
}

func (s *Stream) stopAll() []*Sub {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var subs []*Sub
	for sub := range s.subs {
		subs = append(subs, sub)
		close(sub.stop)
	}
	s.subs = nil
	s.mu.Unlock()
	close(s.retain)
	s.wg.Wait()
	return subs
}

// Sub is one consumer's subscription: its own reader and credit.
type Sub struct {
	s *Stream
	c Consumer

	filter          map[string]bool // nil: no x-stream-filter
	matchUnfiltered bool

	mu     sync.Mutex // guards credit
	credit int        // deliveries the consumer may still take (prefetch - unacked)

	kick chan struct{} // wakes run: data, credit or room
	stop chan struct{} // closed by Cancel or the stream's end
	once sync.Once
}

func (sub *Sub) wake() {
	select {
	case sub.kick <- struct{}{}:
	default:
	}
}

// Ack returns n deliveries' credit (acks remove nothing from a stream).
func (sub *Sub) Ack(n int) {
	sub.mu.Lock()
	sub.credit += n
	sub.mu.Unlock()
	sub.wake()
}

// Kick says the consumer has room again after refusing a delivery.
func (sub *Sub) Kick() { sub.wake() }

// Cancel detaches the subscription (basic.cancel, channel close).
func (sub *Sub) Cancel() {
	s := sub.s
	s.mu.Lock()
	if _, ok := s.subs[sub]; ok {
		delete(s.subs, sub)
		close(sub.stop)
	}
	s.mu.Unlock()
}

// run reads and delivers while the consumer has credit and room.
func (sub *Sub) run(r *streamlog.Reader) {
	defer sub.s.wg.Done()
	var pending *Delivery // read but refused by a full consumer
	for {
		select {
		case <-sub.stop:
			return
		default:
		}
		sub.mu.Lock()
		credit := sub.credit
		sub.mu.Unlock()
		if credit <= 0 {
			if !sub.wait() {
				return
			}
			continue
		}
		if pending == nil {
			e, ok, err := r.Next()
			if err != nil || !ok {
				// An I/O error on a segment leaves the consumer waiting
				// at its offset rather than skipping entries.
				if !sub.wait() {
					return
				}
				continue
			}
			m, filter, err := decode(e.Payload)
			if err != nil {
				continue // not an entry this version wrote; nothing to deliver
			}
			if sub.filter != nil && !(filter == "" && sub.matchUnfiltered) && !sub.filter[filter] {
				continue
			}
			m.Properties = withOffset(m.Properties, e.Offset)
			pending = &Delivery{Offset: e.Offset, Message: m}
		}
		if !sub.c.Deliver(*pending) {
			if !sub.wait() {
				return
			}
			continue
		}
		pending = nil
		sub.mu.Lock()
		sub.credit--
		sub.mu.Unlock()
	}
}

// wait blocks until kicked; false once the subscription ended.
func (sub *Sub) wait() bool {
	select {
	case <-sub.kick:
		return true
	case <-sub.stop:
		return false
	}
}

// withOffset returns properties with the x-stream-offset header, a long
// ('l') as RabbitMQ sends it.
func withOffset(props []byte, off uint64) []byte {
	var p wire.Properties
	if err := p.Decode(props); err != nil {
		p = wire.Properties{}
	}
	h := make(wire.Table, len(p.Headers)+1)
	for k, v := range p.Headers {
		h[k] = v
	}
	h["x-stream-offset"] = int64(off)
	p.Headers = h
	p.Present |= wire.FlagHeaders
	return p.Append(nil)
}

// encode lays a message out as a log entry: exchange, routing key, filter
// value, properties, body.
func encode(b []byte, m *queue.Message, filter string) []byte {
	b = append(b, byte(len(m.Exchange)))
	b = append(b, m.Exchange...)
	b = append(b, byte(len(m.RoutingKey)))
	b = append(b, m.RoutingKey...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(filter)))
	b = append(b, filter...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Properties)))
	b = append(b, m.Properties...)
	return append(b, m.Body...)
}

var errEntry = errors.New("stream: malformed entry")

// decode reads an entry back into a message that owns its bytes.
func decode(b []byte) (*queue.Message, string, error) {
	take := func(n int) ([]byte, bool) {
		if n > len(b) {
			return nil, false
		}
		x := b[:n]
		b = b[n:]
		return x, true
	}
	var m queue.Message
	var ok bool
	var x []byte
	if len(b) < 1 {
		return nil, "", errEntry
	}
	if x, ok = take(int(b[0]) + 1); !ok {
		return nil, "", errEntry
	}
	m.Exchange = string(x[1:])
	if len(b) < 1 {
		return nil, "", errEntry
	}
	if x, ok = take(int(b[0]) + 1); !ok {
		return nil, "", errEntry
	}
	m.RoutingKey = string(x[1:])
	if len(b) < 2 {
		return nil, "", errEntry
	}
	if x, ok = take(2 + int(binary.BigEndian.Uint16(b))); !ok {
		return nil, "", errEntry
	}
	filter := string(x[2:])
	if len(b) < 4 {
		return nil, "", errEntry
	}
	if x, ok = take(4 + int(binary.BigEndian.Uint32(b))); !ok {
		return nil, "", errEntry
	}
	m.Properties = x[4:] // withOffset re-encodes into new bytes
	m.Body = append([]byte(nil), b...)
	return &m, filter, nil
}

// String names the stream as RabbitMQ's texts do.
func (s *Stream) String() string { return fmt.Sprintf("queue '%s' in vhost '%s'", s.Name, s.Vhost) }
