package main

import (
	"fmt"
	"strconv"
	"strings"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// headerKey is the message header a headers exchange routes on.
const headerKey = "warren-perf-queue"

// topology is what the run declared, and how each queue is addressed.
type topology struct {
	exchange         string // "" = the default exchange
	declaredExchange bool
	queues           []string
	declared         int      // how many of queues were declared
	keys             []string // per queue: routing key, or header value
}

// route is where producer i publishes.
func (t *topology) route(i int) (exchange, key string, headers amqp091.Table) {
	q := i % len(t.queues)
	if t.exchange == "" {
		return "", t.queues[q], nil
	}
	if strings.HasPrefix(t.keys[q], "header:") {
		return t.exchange, "", amqp091.Table{headerKey: strings.TrimPrefix(t.keys[q], "header:")}
	}
	return t.exchange, t.keys[q], nil
}

// declare declares the exchange, the queues and the bindings. It returns what
// it declared even on error, so that it can be deleted.
func (b *bench) declare(conn adminConn) (*topology, error) {
	cfg := b.cfg
	t := &topology{exchange: cfg.exchange}
	ch, err := conn.channel()
	if err != nil {
		return t, fmt.Errorf("open channel: %v", err)
	}
	defer ch.close()

	if t.exchange != "" && !strings.HasPrefix(t.exchange, "amq.") {
		if err := ch.exchangeDeclare(t.exchange, cfg.exchangeType, cfg.persistent); err != nil {
			return t, fmt.Errorf("declare %s exchange %q: %v (an exchange of another type or durability left by an earlier run? delete it or use -exchange)", cfg.exchangeType, t.exchange, err)
		}
		t.declaredExchange = true
	}

	args := amqp091.Table{}
	for k, v := range cfg.queueArgs {
		args[k] = v
	}
	if cfg.priority > 0 {
		args["x-max-priority"] = int64(cfg.priority)
	}
	// Quorum queues must be durable and cannot be auto-delete; deleteTopology
	// deletes them at the end like the others.
	durable, autoDelete := cfg.persistent, true
	if cfg.queueType != "" {
		args["x-queue-type"] = cfg.queueType
	}
	if cfg.queueType == "quorum" {
		durable, autoDelete = true, false
	}
	for i := range cfg.queues {
		t.queues = append(t.queues, cfg.queuePrefix+strconv.Itoa(i))
	}
	for _, q := range t.queues {
		if err := ch.queueDeclare(q, durable, autoDelete, args); err != nil {
			return t, fmt.Errorf("declare queue %q: %v (a queue with other properties left by an earlier run? delete it or use -queue-prefix)", q, err)
		}
		t.declared++
		// A queue left by an interrupted run may hold messages.
		if err := ch.queuePurge(q); err != nil {
			return t, fmt.Errorf("purge queue %q: %v", q, err)
		}
	}
	if t.exchange == "" {
		return t, nil
	}

	for _, q := range t.queues {
		key := cfg.routingKey
		if key == "" {
			key = q
			if cfg.exchangeType == "topic" {
				key = "perf." + q + ".data"
			}
		}
		var bindKey string
		var bindArgs amqp091.Table
		switch cfg.exchangeType {
		case "headers":
			bindArgs = amqp091.Table{"x-match": "all", headerKey: key}
			t.keys = append(t.keys, "header:"+key)
		case "topic":
			bindKey = key
			if cfg.routingKey == "" {
				bindKey = "perf." + q + ".*"
			}
			t.keys = append(t.keys, key)
		default: // direct, fanout
			bindKey = key
			t.keys = append(t.keys, key)
		}
		if err := ch.queueBind(q, bindKey, t.exchange, bindArgs); err != nil {
			return t, fmt.Errorf("bind queue %q to %q: %v", q, t.exchange, err)
		}
	}

	// Extra bindings that never match, all to the first queue.
	for i := range cfg.bindings {
		var key string
		var bindArgs amqp091.Table
		switch cfg.exchangeType {
		case "topic":
			// A mix of patterns, so that the matcher explores wildcards.
			switch i % 4 {
			case 0:
				key = fmt.Sprintf("perf.nomatch%d.*", i)
			case 1:
				key = fmt.Sprintf("*.nomatch%d.#", i)
			case 2:
				key = fmt.Sprintf("#.nomatch%d", i)
			default:
				key = fmt.Sprintf("nomatch%d.#", i)
			}
		case "headers":
			bindArgs = amqp091.Table{"x-match": "all", headerKey: fmt.Sprintf("nomatch%d", i)}
		default:
			key = fmt.Sprintf("nomatch%d", i)
		}
		if err := ch.queueBind(t.queues[0], key, t.exchange, bindArgs); err != nil {
			return t, fmt.Errorf("extra binding %d (%q): %v", i, key, err)
		}
	}
	return t, nil
}

// deleteTopology deletes what declare declared. Auto-delete queues may be gone
// already; a broker that answers that with 404 closes the channel, so each
// failure gets a new one.
func (b *bench) deleteTopology(conn adminConn, t *topology) {
	if t == nil {
		return
	}
	ch, err := conn.channel()
	if err != nil {
		return
	}
	for _, q := range t.queues[:t.declared] {
		if err := ch.queueDelete(q); err != nil {
			if ch, err = conn.channel(); err != nil {
				return
			}
		}
	}
	if t.declaredExchange {
		_ = ch.exchangeDelete(t.exchange)
	}
	_ = ch.close()
}

// adminConn is the connection that declares and deletes the topology, with
// either client.
type adminConn interface {
	channel() (topoChannel, error)
	close() error
}

// topoChannel declares what a run needs. Queues are not exclusive;
// exchanges not auto-delete, not internal; deletes unconditional.
type topoChannel interface {
	exchangeDeclare(name, kind string, durable bool) error
	queueDeclare(name string, durable, autoDelete bool, args amqp091.Table) error
	queuePurge(name string) error
	queueBind(queue, key, exchange string, args amqp091.Table) error
	queueDelete(name string) error
	exchangeDelete(name string) error
	close() error
}

type admin091 struct{ conn *amqp091.Connection }

func (a admin091) channel() (topoChannel, error) {
	ch, err := a.conn.Channel()
	if err != nil {
		return nil, err
	}
	return chan091{ch}, nil
}

func (a admin091) close() error { return a.conn.Close() }

type chan091 struct{ ch *amqp091.Channel }

func (c chan091) exchangeDeclare(name, kind string, durable bool) error {
	return c.ch.ExchangeDeclare(name, kind, durable, false, false, false, nil)
}

func (c chan091) queueDeclare(name string, durable, autoDelete bool, args amqp091.Table) error {
	_, err := c.ch.QueueDeclare(name, durable, autoDelete, false, false, args)
	return err
}

func (c chan091) queuePurge(name string) error {
	_, err := c.ch.QueuePurge(name, false)
	return err
}

func (c chan091) queueBind(queue, key, exchange string, args amqp091.Table) error {
	return c.ch.QueueBind(queue, key, exchange, false, args)
}

func (c chan091) queueDelete(name string) error {
	_, err := c.ch.QueueDelete(name, false, false, false)
	return err
}

func (c chan091) exchangeDelete(name string) error { return c.ch.ExchangeDelete(name, false, false) }

func (c chan091) close() error { return c.ch.Close() }
