package shovel

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// States a shovel reports, as rabbitmq_shovel names them. A shovel that
// cannot connect, or lost a connection and waits to retry, is "starting" as
// in RabbitMQ 3.10, which shows no reason: the reason is in the log.
const (
	Starting = "starting"
	Running  = "running"
)

// Status is what GET /api/shovels shows of one shovel.
type Status struct {
	Name, Vhost string
	State       string
	Since       time.Time // when State last changed
	Spec        *Spec
	SrcURI      string // the URIs in use while running, without passwords
	DestURI     string
}

// errStopped ends a session because the shovel was deleted, restarted or
// the broker is stopping.
var errStopped = errors.New("shovel stopped")

// shovel is one running dynamic shovel: a goroutine that connects both
// ends, moves messages, and reconnects after reconnect-delay.
type shovel struct {
	m           *Manager
	name, vhost string
	spec        *Spec
	stop        chan struct{} // closed to end the shovel
	done        chan struct{} // closed when its goroutine returns

	mu    sync.Mutex // guards st, conns, stopped
	st    Status
	conns []net.Conn // the open sockets of the current session, closed by halt
	// stopped is set by halt, so a session that dials after it closes its
	// new sockets at once.
	stopped bool
}

func (s *shovel) set(state, src, dest string) {
	s.mu.Lock()
	s.st.State, s.st.Since = state, time.Now()
	s.st.SrcURI, s.st.DestURI = src, dest
	s.mu.Unlock()
}

func (s *shovel) status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// halt tells the shovel to stop: its session settles what the
// destination has confirmed, then closes both ends.
func (s *shovel) halt() {
	s.mu.Lock()
	if !s.stopped {
		s.stopped = true
		close(s.stop)
	}
	s.mu.Unlock()
}

// stopGrace is how long a stopping shovel may take to settle before its
// sockets are closed under it (a publish blocked on a full socket).
const stopGrace = 2 * time.Second

// wait waits for a halted shovel's goroutine, closing its sockets if it
// takes longer than stopGrace.
func (s *shovel) wait() {
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-s.done:
		return
	case <-t.C:
	}
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	<-s.done
}

func (s *shovel) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.conns = append(s.conns, c)
	return true
}

// run is the shovel's goroutine: sessions until stopped or, with
// src-delete-after, done.
func (s *shovel) run() {
	defer close(s.done)
	for {
		s.set(Starting, "", "")
		completed, err := s.session()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.conns = nil
		s.mu.Unlock()
		if completed {
			// Deleting takes the manager's lock, under which a stop may be
			// waiting for this goroutine: do it on another, counted too.
			s.m.wg.Add(1)
			go func() {
				defer s.m.wg.Done()
				s.m.completed(s)
			}()
			return
		}
		select {
		case <-s.stop:
			return
		default:
		}
		s.m.log.Warn("shovel failed, will retry", "vhost", s.vhost, "shovel", s.name, "err", err)
		s.set(Starting, "", "")
		if s.spec.ReconnectDelay <= 0 {
			// RabbitMQ does not restart a dynamic shovel without a delay.
			<-s.stop
			return
		}
		t := time.NewTimer(s.spec.ReconnectDelay)
		select {
		case <-s.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// dial opens one end, picking one of its URIs at random, as RabbitMQ does.
func (s *shovel) dial(uris []string) (*amqp091.Connection, string, error) {
	u := uris[rand.IntN(len(uris))]
	ep, err := parseEndpoint(u)
	if err != nil {
		return nil, "", err
	}
	cfg := amqp091.Config{
		Heartbeat:  10 * time.Second,
		Properties: amqp091.Table{"connection_name": "Shovel " + s.name},
		Vhost:      ep.vhost,
	}
	track := func(c net.Conn, err error) (net.Conn, error) {
		if err != nil {
			return nil, err
		}
		if !s.track(c) {
			c.Close()
			return nil, errStopped
		}
		return c, nil
	}
	if ep.local {
		if s.m.o.Local == nil {
			return nil, "", errors.New("no local broker to connect to")
		}
		cfg.SASL = []amqp091.Authentication{&amqp091.ExternalAuth{}}
		cfg.Dial = func(string, string) (net.Conn, error) { return track(s.m.o.Local(ep.vhost)) }
		c, err := amqp091.DialConfig("amqp://local/"+url.PathEscape(ep.vhost), cfg)
		return c, u, err
	}
	cfg.Dial = func(network, addr string) (net.Conn, error) {
		return track(net.DialTimeout(network, addr, 30*time.Second))
	}
	c, err := amqp091.DialConfig(u, cfg)
	return c, u, err
}

// declareQueue makes sure a named queue exists, as rabbitmq_shovel does
// (durable when it has to be made), and returns its message count.
func declareQueue(conn *amqp091.Connection, ch **amqp091.Channel, name string, args amqp091.Table) (int, error) {
	q, err := (*ch).QueueDeclarePassive(name, false, false, false, false, nil)
	if err == nil {
		return q.Messages, nil
	}
	var ae *amqp091.Error
	if !errors.As(err, &ae) || ae.Code != amqp091.NotFound {
		return 0, err
	}
	// The 404 closed the channel.
	if *ch, err = conn.Channel(); err != nil {
		return 0, err
	}
	q, err = (*ch).QueueDeclare(name, true, false, false, false, args)
	return q.Messages, err
}

// session connects both ends and moves messages until an end fails (err),
// the shovel is stopped (errStopped), or src-delete-after is reached
// (completed).
func (s *shovel) session() (completed bool, err error) {
	sp := s.spec
	src, srcURI, err := s.dial(sp.SrcURIs)
	if err != nil {
		return false, fmt.Errorf("source: %w", err)
	}
	defer src.Close()
	dest, destURI, err := s.dial(sp.DestURIs)
	if err != nil {
		return false, fmt.Errorf("destination: %w", err)
	}
	defer dest.Close()
	sch, err := src.Channel()
	if err != nil {
		return false, fmt.Errorf("source: %w", err)
	}
	dch, err := dest.Channel()
	if err != nil {
		return false, fmt.Errorf("destination: %w", err)
	}

	queue, count := sp.SrcQueue, 0
	if sp.srcIsExchange {
		q, err := sch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			return false, fmt.Errorf("source: %w", err)
		}
		if err := sch.QueueBind(q.Name, sp.SrcExchangeKey, sp.SrcExchange, false, nil); err != nil {
			return false, fmt.Errorf("source: %w", err)
		}
		queue = q.Name
	} else if count, err = declareQueue(src, &sch, queue, sp.SrcQueueArgs); err != nil {
		return false, fmt.Errorf("source: %w", err)
	}
	if sp.DestQueue != "" {
		if _, err := declareQueue(dest, &dch, sp.DestQueue, sp.DestQueueArgs); err != nil {
			return false, fmt.Errorf("destination: %w", err)
		}
	}

	limit := sp.DeleteAfter // messages to move before the shovel deletes itself; <0: no limit
	if limit == deleteQueueLength {
		limit = count
	}
	if limit == 0 {
		return true, nil
	}
	if sp.AckMode != NoAck && sp.Prefetch > 0 {
		if err := sch.Qos(sp.Prefetch, 0, false); err != nil {
			return false, fmt.Errorf("source: %w", err)
		}
	}
	var confirms chan amqp091.Confirmation
	if sp.AckMode == OnConfirm {
		if err := dch.Confirm(false); err != nil {
			return false, fmt.Errorf("destination: %w", err)
		}
		// Outstanding confirms are bounded by the prefetch: the source
		// sends no more until they are acked. The client's reader blocks
		// on a full channel, so it must hold all of them.
		n := sp.Prefetch + 1
		if sp.Prefetch == 0 {
			n = 1 << 16
		}
		confirms = dch.NotifyPublish(make(chan amqp091.Confirmation, n))
	}
	srcClosed := src.NotifyClose(make(chan *amqp091.Error, 1))
	destClosed := dest.NotifyClose(make(chan *amqp091.Error, 1))
	schClosed := sch.NotifyClose(make(chan *amqp091.Error, 1))
	dchClosed := dch.NotifyClose(make(chan *amqp091.Error, 1))
	const ctag = "shovel"
	deliveries, err := sch.Consume(queue, ctag, sp.AckMode == NoAck, false, false, false, sp.SrcConsumerArgs)
	if err != nil {
		return false, fmt.Errorf("source: %w", err)
	}
	s.set(Running, redact(srcURI), redact(destURI))

	var unconfirmed []uint64 // source tags of publishes awaiting confirms, in publish order
	taken, settled := 0, 0
	closed := func(side string, e *amqp091.Error) error {
		if e == nil {
			return fmt.Errorf("%s: connection closed", side)
		}
		return fmt.Errorf("%s: %s", side, e.Error())
	}
	for {
		select {
		case <-s.stop:
			s.settle(sch, ctag, confirms, unconfirmed)
			return false, errStopped
		case e := <-srcClosed:
			return false, closed("source", e)
		case e := <-schClosed:
			return false, closed("source", e)
		case e := <-destClosed:
			return false, closed("destination", e)
		case e := <-dchClosed:
			return false, closed("destination", e)
		case d, ok := <-deliveries:
			if !ok {
				return false, errors.New("source: consumer cancelled")
			}
			if limit >= 0 && taken >= limit {
				continue // beyond delete-after: requeued when the channel closes
			}
			if err := dch.Publish(s.target(d, srcURI, destURI)); err != nil {
				return false, fmt.Errorf("destination: %w", err)
			}
			taken++
			switch sp.AckMode {
			case OnConfirm:
				unconfirmed = append(unconfirmed, d.DeliveryTag)
			case OnPublish:
				if err := sch.Ack(d.DeliveryTag, false); err != nil {
					return false, fmt.Errorf("source: %w", err)
				}
				settled++
			default:
				settled++
			}
			if limit >= 0 && taken == limit {
				if err := sch.Cancel(ctag, false); err != nil {
					return false, fmt.Errorf("source: %w", err)
				}
				// The client closes deliveries on cancel-ok; what else is in
				// flight goes back to the queue when the channel closes.
				deliveries = nil
			}
		case c := <-confirms:
			if len(unconfirmed) == 0 {
				return false, errors.New("destination: unexpected confirm")
			}
			tag := unconfirmed[0]
			unconfirmed = unconfirmed[1:]
			if c.Ack {
				err = sch.Ack(tag, false)
				settled++
			} else {
				// As rabbitmq_shovel: a message the destination refused
				// goes back to the source queue.
				err = sch.Nack(tag, false, true)
				if limit >= 0 {
					// Counting it out again needs a new consumer: start over.
					return false, errors.New("destination: a message was refused")
				}
			}
			if err != nil {
				return false, fmt.Errorf("source: %w", err)
			}
		}
		if limit >= 0 && settled >= limit {
			return true, nil
		}
	}
}

// settle is a stopping session's last step with on-confirm: it stops
// consuming and acks at the source what the destination confirms within a
// second, so that a stop (a change, a restart, the broker stopping) sends
// as few messages twice as it can. The rest goes back to the source queue.
func (s *shovel) settle(sch *amqp091.Channel, ctag string, confirms <-chan amqp091.Confirmation, unconfirmed []uint64) {
	_ = sch.Cancel(ctag, false)
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for len(unconfirmed) > 0 {
		select {
		case c := <-confirms:
			if c.Ack {
				_ = sch.Ack(unconfirmed[0], false)
			}
			unconfirmed = unconfirmed[1:]
		case <-t.C:
			return
		}
	}
}

// target is where and what a delivery is published at the destination.
func (s *shovel) target(d amqp091.Delivery, srcURI, destURI string) (string, string, bool, bool, amqp091.Publishing) {
	sp := s.spec
	exchange, key := d.Exchange, d.RoutingKey
	switch {
	case sp.DestQueue != "":
		exchange, key = "", sp.DestQueue
	case sp.destExchangeSet:
		exchange = sp.DestExchange
	}
	if sp.destKeySet {
		key = sp.DestExchangeKey
	}
	headers := d.Headers
	if sp.AddForwardHeaders || sp.AddTimestampHeader {
		headers = make(amqp091.Table, len(d.Headers)+2)
		for k, v := range d.Headers {
			headers[k] = v
		}
		if sp.AddForwardHeaders {
			info := amqp091.Table{
				"shovel-name":  s.name,
				"shovel-type":  "dynamic",
				"shovel-vhost": s.vhost,
				"shovelled-by": s.m.o.Node,
				"src-uri":      redact(srcURI),
				"dest-uri":     redact(destURI),
			}
			if sp.srcIsExchange {
				info["src-exchange"] = sp.SrcExchange
				info["src-exchange-key"] = sp.SrcExchangeKey
			} else {
				info["src-queue"] = sp.SrcQueue
			}
			if sp.DestQueue != "" {
				info["dest-queue"] = sp.DestQueue
			} else {
				if sp.destExchangeSet {
					info["dest-exchange"] = sp.DestExchange
				}
				if sp.destKeySet {
					info["dest-exchange-key"] = sp.DestExchangeKey
				}
			}
			prev, _ := headers["x-shovelled"].([]any)
			headers["x-shovelled"] = append(append([]any(nil), prev...), info)
		}
		if sp.AddTimestampHeader {
			headers["x-shovelled-timestamp"] = time.Now().Unix()
		}
	}
	p := amqp091.Publishing{
		Headers:         headers,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    d.DeliveryMode,
		Priority:        d.Priority,
		CorrelationId:   d.CorrelationId,
		ReplyTo:         d.ReplyTo,
		Expiration:      d.Expiration,
		MessageId:       d.MessageId,
		Timestamp:       d.Timestamp,
		Type:            d.Type,
		UserId:          d.UserId,
		AppId:           d.AppId,
		Body:            d.Body,
	}
	overrideProperties(&p, sp.PublishProperties)
	return exchange, key, false, false, p
}

// overrideProperties applies dest-publish-properties, named as RabbitMQ's
// basic properties are.
func overrideProperties(p *amqp091.Publishing, props map[string]any) {
	for k, v := range props {
		str, _ := v.(string)
		n, _ := tableValue(v).(int64)
		switch k {
		case "content_type":
			p.ContentType = str
		case "content_encoding":
			p.ContentEncoding = str
		case "delivery_mode":
			p.DeliveryMode = uint8(n)
		case "priority":
			p.Priority = uint8(n)
		case "correlation_id":
			p.CorrelationId = str
		case "reply_to":
			p.ReplyTo = str
		case "expiration":
			p.Expiration = str
		case "message_id":
			p.MessageId = str
		case "timestamp":
			p.Timestamp = time.Unix(n, 0)
		case "type":
			p.Type = str
		case "user_id":
			p.UserId = str
		case "app_id":
			p.AppId = str
		case "headers":
			if h, ok := tableValue(v).(amqp091.Table); ok {
				p.Headers = h
			}
		}
	}
}
