package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Footprint rows, in table order.
const (
	footIdle = iota
	footConnsRSS
	footConnKiB
	footDeclTime
	footDeclRSS
	footDelTime
	footQDeclTime
	footQDeclRSS
	footQKiB
	footQDelTime
	footBacklogPub
	footBacklogRSS
	footBacklogDrain
	footBacklogPubP
	footBacklogRSSP
	footBacklogDrainP
	nFoot
)

// footRow describes one footprint row; %d in a title is the configured size.
type footRow struct {
	title         string
	lowerIsBetter bool
}

var footRows = [nFoot]footRow{
	footIdle:          {"idle RSS, MiB", true},
	footConnsRSS:      {"RSS with %d idle connections, MiB", true},
	footConnKiB:       {"RSS per idle connection, KiB", true},
	footDeclTime:      {"declare %d queues, s", true},
	footDeclRSS:       {"RSS with %d queues, MiB", true},
	footDelTime:       {"delete %d queues, s", true},
	footQDeclTime:     {"declare %d quorum queues, s", true},
	footQDeclRSS:      {"RSS with %d quorum queues, MiB", true},
	footQKiB:          {"RSS per idle quorum queue, KiB", true},
	footQDelTime:      {"delete %d quorum queues, s", true},
	footBacklogPub:    {"backlog %d × SIZE transient: publish msg/s (confirms)", false},
	footBacklogRSS:    {"backlog %d × SIZE transient: RSS, MiB", true},
	footBacklogDrain:  {"backlog %d × SIZE transient: drain msg/s", false},
	footBacklogPubP:   {"backlog %d × SIZE persistent: publish msg/s (confirms)", false},
	footBacklogRSSP:   {"backlog %d × SIZE persistent: RSS, MiB", true},
	footBacklogDrainP: {"backlog %d × SIZE persistent: drain msg/s", false},
}

// measure is one footprint number, or why there is none.
type measure struct {
	v    float64
	note string
}

func na(why string) measure { return measure{note: why} }

// rssMiB reads VmRSS from /proc/PID/status.
func rssMiB(pid int) (float64, error) {
	if pid == 0 {
		return 0, errors.New("no PID")
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("VmRSS %q: %v", rest, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

func rss(b broker) measure {
	v, err := rssMiB(b.pid)
	if err != nil {
		return na("n/a")
	}
	return measure{v: v}
}

func idleRSS(b broker) measure { return rss(b) }

// fdMargin is how many descriptors a broker keeps free beyond the idle
// connections: files, queues' stores, the benchmark's own connections.
const fdMargin = 200

// freeFDs returns how many more files the process may open (its soft
// RLIMIT_NOFILE minus its open descriptors); ok is false when unknown.
func freeFDs(pid int) (int, bool) {
	if pid == 0 {
		return 0, false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, false
	}
	limit := -1
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				if n, err := strconv.Atoi(f[0]); err == nil {
					limit = n
				}
			}
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if limit < 0 || err != nil {
		return 0, false
	}
	return limit - len(fds), true
}

// withTimeout runs f, giving up (and leaving it running) after limit: a
// stalled broker must not hang the whole report.
func withTimeout(limit time.Duration, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		return fmt.Errorf("timed out after %v", limit)
	}
}

func dial(url, name string) (*amqp091.Connection, error) {
	return amqp091.DialConfig(url, amqp091.Config{
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Dial:       amqp091.DefaultDial(10 * time.Second),
		Properties: amqp091.Table{"connection_name": "warren-bench " + name},
	})
}

func (o *options) runFootprint(ctx context.Context, rep *report, stderr io.Writer) {
	steps := []struct {
		name string
		run  func(broker, *report, io.Writer)
	}{
		{"conns", o.footConns},
		{"queues", func(b broker, r *report, w io.Writer) { o.footQueues(b, r, w, false) }},
		{"quorum-queues", func(b broker, r *report, w io.Writer) { o.footQueues(b, r, w, true) }},
		{"backlog", func(b broker, r *report, w io.Writer) { o.footBacklog(b, r, w, false) }},
		{"backlog-persistent", func(b broker, r *report, w io.Writer) { o.footBacklog(b, r, w, true) }},
	}
	for _, st := range steps {
		if o.footOnly != nil && !o.footOnly[st.name] {
			continue
		}
		step := st.run
		for _, b := range o.brokers {
			if ctx.Err() != nil {
				return
			}
			step(b, rep, stderr)
			time.Sleep(o.pause)
		}
	}
}

// footConns opens o.conns connections, measures RSS, and closes them.
func (o *options) footConns(b broker, rep *report, stderr io.Writer) {
	fmt.Fprintf(stderr, "footprint %s: %d idle connections\n", b.name, o.conns)
	if free, ok := freeFDs(b.pid); ok && free < o.conns+fdMargin {
		// Running a broker out of descriptors can break it for good
		// (RabbitMQ 3.10's memory monitors crash on emfile).
		fmt.Fprintf(stderr, "    skipped: the broker has %d free file descriptors, %d needed (raise its ulimit -n)\n", free, o.conns+fdMargin)
		rep.addFootprint(footConnsRSS, b, na("skipped: fd limit"))
		rep.addFootprint(footConnKiB, b, na("skipped: fd limit"))
		return
	}
	before := rss(b)
	conns := make([]*amqp091.Connection, o.conns)
	err := withTimeout(2*time.Minute, func() error {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var first error
		next := make(chan int)
		for range 16 {
			wg.Go(func() {
				for i := range next {
					c, err := dial(b.url, "idle")
					mu.Lock()
					if err != nil && first == nil {
						first = fmt.Errorf("connection %d: %v", i, err)
					}
					conns[i] = c
					mu.Unlock()
				}
			})
		}
		for i := range conns {
			next <- i
		}
		close(next)
		wg.Wait()
		return first
	})
	if err != nil {
		fmt.Fprintf(stderr, "    %v\n", err)
		rep.addFootprint(footConnsRSS, b, na("failed"))
		rep.addFootprint(footConnKiB, b, na("failed"))
	} else {
		time.Sleep(3 * time.Second) // let heartbeats and heaps settle
		after := rss(b)
		rep.addFootprint(footConnsRSS, b, after)
		if after.note == "" && before.note == "" {
			rep.addFootprint(footConnKiB, b, measure{v: (after.v - before.v) * 1024 / float64(o.conns)})
		} else {
			rep.addFootprint(footConnKiB, b, na("n/a"))
		}
		fmt.Fprintf(stderr, "    RSS %.1f → %.1f MiB\n", before.v, after.v)
	}
	_ = withTimeout(time.Minute, func() error {
		var wg sync.WaitGroup
		for _, c := range conns {
			if c != nil {
				wg.Go(func() { _ = c.Close() })
			}
		}
		wg.Wait()
		return nil
	})
}

// footQueues declares o.declQueues queues (o.declQuorum durable quorum
// queues) one by one, measures, deletes them.
func (o *options) footQueues(b broker, rep *report, stderr io.Writer, quorum bool) {
	n, kind, prefix := o.declQueues, "", "warren-bench-decl-"
	declTime, declRSS, delTime := footDeclTime, footDeclRSS, footDelTime
	var args amqp091.Table
	if quorum {
		n, kind, prefix = o.declQuorum, "quorum ", "warren-bench-qdecl-"
		declTime, declRSS, delTime = footQDeclTime, footQDeclRSS, footQDelTime
		args = amqp091.Table{"x-queue-type": "quorum"}
	}
	fmt.Fprintf(stderr, "footprint %s: declare %d %squeues\n", b.name, n, kind)
	conn, err := dial(b.url, "queues")
	if err != nil {
		fmt.Fprintf(stderr, "    %v\n", err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return
	}
	name := func(i int) string { return prefix + strconv.Itoa(i) }
	// each applies op to every queue and returns how long that took.
	each := func(verb string, op func(q string) error) (time.Duration, error) {
		start := time.Now()
		err := withTimeout(5*time.Minute, func() error {
			for i := range n {
				if err := op(name(i)); err != nil {
					return fmt.Errorf("%s %s: %v", verb, name(i), err)
				}
			}
			return nil
		})
		return time.Since(start), err
	}
	before := rss(b)
	decl, err := each("declare", func(q string) error {
		_, err := ch.QueueDeclare(q, quorum, false, false, false, args)
		return err
	})
	if err != nil {
		fmt.Fprintf(stderr, "    %v\n", err)
		rep.addFootprint(declTime, b, na("failed"))
		return
	}
	rep.addFootprint(declTime, b, measure{v: decl.Seconds()})
	time.Sleep(time.Second)
	after := rss(b)
	rep.addFootprint(declRSS, b, after)
	if quorum {
		perQueue := na("n/a")
		if after.note == "" && before.note == "" {
			perQueue = measure{v: (after.v - before.v) * 1024 / float64(n)}
		}
		rep.addFootprint(footQKiB, b, perQueue)
	}
	del, err := each("delete", func(q string) error {
		_, err := ch.QueueDelete(q, false, false, false)
		return err
	})
	if err != nil {
		fmt.Fprintf(stderr, "    %v\n", err)
		rep.addFootprint(delTime, b, na("failed"))
		return
	}
	rep.addFootprint(delTime, b, measure{v: del.Seconds()})
	fmt.Fprintf(stderr, "    declared in %.2f s, deleted in %.2f s\n", decl.Seconds(), del.Seconds())
}

// footBacklog publishes o.backlog messages of o.backlogSize bytes with confirms into a queue
// with no consumer, measures RSS, then drains the queue with an autoack
// consumer.
func (o *options) footBacklog(b broker, rep *report, stderr io.Writer, persistent bool) {
	rowPub, rowRSS, rowDrain := footBacklogPub, footBacklogRSS, footBacklogDrain
	kind := "transient"
	if persistent {
		rowPub, rowRSS, rowDrain = footBacklogPubP, footBacklogRSSP, footBacklogDrainP
		kind = "persistent"
	}
	fmt.Fprintf(stderr, "footprint %s: backlog of %d %s messages\n", b.name, o.backlog, kind)
	fail := func(err error) {
		fmt.Fprintf(stderr, "    %v\n", err)
		for _, r := range []int{rowPub, rowRSS, rowDrain} {
			if _, ok := rep.foot[r][b.name]; !ok {
				rep.addFootprint(r, b, na("failed"))
			}
		}
	}
	q := "warren-bench-backlog-" + kind
	pconn, err := dial(b.url, "backlog publisher")
	if err != nil {
		fail(err)
		return
	}
	defer pconn.Close()
	ch, err := pconn.Channel()
	if err == nil {
		_, err = ch.QueueDeclare(q, persistent, false, false, false, nil)
	}
	if err == nil {
		_, err = ch.QueuePurge(q, false)
	}
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		fail(fmt.Errorf("set up %s: %v", q, err))
		return
	}
	defer func() {
		if c, err := dial(b.url, "backlog cleanup"); err == nil {
			if ch, err := c.Channel(); err == nil {
				_, _ = ch.QueueDelete(q, false, false, false)
			}
			_ = c.Close()
		}
	}()

	const window = 1000
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, window+1))
	msg := amqp091.Publishing{Body: make([]byte, o.backlogSize)}
	if persistent {
		msg.DeliveryMode = amqp091.Persistent
	}
	limit := 10 * time.Minute
	start := time.Now()
	err = withTimeout(limit, func() error {
		outstanding, nacked := 0, 0
		for i := 0; i < o.backlog || outstanding > 0; {
			if i < o.backlog && outstanding < window {
				if err := ch.Publish("", q, false, false, msg); err != nil {
					return fmt.Errorf("publish: %v", err)
				}
				i++
				outstanding++
				continue
			}
			c, ok := <-confirms
			if !ok {
				return errors.New("channel closed while waiting for confirms")
			}
			outstanding--
			if !c.Ack {
				nacked++
			}
		}
		if nacked > 0 {
			return fmt.Errorf("%d messages nacked", nacked)
		}
		return nil
	})
	if err != nil {
		fail(err)
		return
	}
	pub := time.Since(start)
	rep.addFootprint(rowPub, b, measure{v: float64(o.backlog) / pub.Seconds()})
	time.Sleep(2 * time.Second)
	rep.addFootprint(rowRSS, b, rss(b))

	cconn, err := dial(b.url, "backlog consumer")
	if err != nil {
		fail(err)
		return
	}
	defer cconn.Close()
	cch, err := cconn.Channel()
	var deliveries <-chan amqp091.Delivery
	if err == nil {
		deliveries, err = cch.Consume(q, "", true, false, false, false, nil)
	}
	if err != nil {
		fail(fmt.Errorf("consume %s: %v", q, err))
		return
	}
	start = time.Now()
	got := 0
	err = withTimeout(limit, func() error {
		idle := time.NewTimer(30 * time.Second)
		defer idle.Stop()
		for got < o.backlog {
			select {
			case _, ok := <-deliveries:
				if !ok {
					return fmt.Errorf("deliveries ended after %d", got)
				}
				got++
				if got%10000 == 0 {
					idle.Reset(30 * time.Second)
				}
			case <-idle.C:
				return fmt.Errorf("no deliveries for 30 s after %d of %d", got, o.backlog)
			}
		}
		return nil
	})
	drain := time.Since(start)
	if err != nil {
		fail(err)
		return
	}
	rep.addFootprint(rowDrain, b, measure{v: float64(got) / drain.Seconds()})
	fmt.Fprintf(stderr, "    published in %.1f s, drained in %.1f s\n", pub.Seconds(), drain.Seconds())
}
