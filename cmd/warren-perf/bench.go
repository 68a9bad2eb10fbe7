package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// errSetup marks errors from before the run started: the broker could not be
// reached, or refused the topology.
var errSetup = errors.New("setup failed")

// bench is one run: its topology, clients and the snapshots that bound the
// steady-state window.
type bench struct {
	cfg    *config
	stderr io.Writer
	// base is the origin of the timestamps in message bodies (monotonic).
	base time.Time

	producers []*producer
	consumers []*consumer

	// stopping is set once the window ended; client errors after it are
	// expected (connections being closed) and not reported.
	stopping atomic.Bool
	stop     chan struct{} // closed when producers must stop
	failed   chan struct{} // closed by the first client failure

	mu sync.Mutex // guards the fields below
	// phase names what the run is doing, for the stall message.
	phase        string
	start        time.Time // when producers started; zero before
	first, last  *snapshot // window bounds; nil until taken
	errs         []string
	failedClosed bool
}

// snapshot is the sum of all client counters at one instant.
type snapshot struct {
	at                                 time.Time
	published, confirmed, nacked, recv int64
	hist                               *histogram
}

func newBench(cfg *config, stderr io.Writer) *bench {
	return &bench{
		cfg:    cfg,
		stderr: stderr,
		base:   time.Now(),
		stop:   make(chan struct{}),
		failed: make(chan struct{}),
		phase:  "connecting",
	}
}

func (b *bench) setPhase(p string) {
	b.mu.Lock()
	b.phase = p
	b.mu.Unlock()
}

// fail records a client error and, during the run, ends the run early.
func (b *bench) fail(err error) {
	if b.stopping.Load() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs = append(b.errs, err.Error())
	if !b.failedClosed {
		b.failedClosed = true
		close(b.failed)
	}
}

func (b *bench) snap() *snapshot {
	b.mu.Lock()
	ps, cs := b.producers, b.consumers
	b.mu.Unlock()
	s := &snapshot{at: time.Now(), hist: &histogram{}}
	for _, p := range ps {
		s.published += p.published.Load()
		s.confirmed += p.confirmed.Load()
		s.nacked += p.nacked.Load()
	}
	for _, c := range cs {
		s.recv += c.recv.Load()
		c.lat.addTo(s.hist)
	}
	return s
}

func (b *bench) dial(role string) (*amqp091.Connection, error) {
	conn, err := amqp091.DialConfig(b.cfg.uri, amqp091.Config{
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Dial:       amqp091.DefaultDial(5 * time.Second),
		Properties: amqp091.Table{"connection_name": "warren-perf " + role},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: cannot connect to %s (%s connection): %v", errSetup, redact(b.cfg.uri), role, err)
	}
	return conn, nil
}

// dialAdmin opens the topology connection with the selected client.
func (b *bench) dialAdmin() (adminConn, error) {
	if b.cfg.client == clientRaw {
		c, err := b.dialRaw("admin")
		if err != nil {
			return nil, err
		}
		return rawAdmin{c}, nil
	}
	conn, err := b.dial("admin")
	if err != nil {
		return nil, err
	}
	return admin091{conn}, nil
}

// dialRaw connects with the raw client.
func (b *bench) dialRaw(role string) (*rawConn, error) {
	c, err := dialRaw(b.cfg.uri, "warren-perf "+role, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot connect to %s (%s connection): %v", errSetup, redact(b.cfg.uri), role, err)
	}
	return c, nil
}

// execute runs the whole benchmark: setup, run, teardown. The caller reads
// the result with b.result, also while execute is still blocked on a stalled
// broker.
func (b *bench) execute(ctx context.Context) error {
	admin, err := b.dialAdmin()
	if err != nil {
		return err
	}
	defer admin.close()
	b.setPhase("declaring topology")
	t, err := b.declare(admin)
	if err != nil {
		b.deleteTopology(admin, t)
		return fmt.Errorf("%w: %v", errSetup, err)
	}

	b.setPhase("connecting clients")
	if err := b.connectClients(t); err != nil {
		b.closeClients()
		b.deleteTopology(admin, t)
		return err
	}

	b.mu.Lock()
	b.phase = "running"
	b.start = time.Now()
	start := b.start
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range b.producers {
		wg.Go(func() { p.run(b) })
	}
	progressDone := make(chan struct{})
	if b.cfg.progress {
		go b.reportProgress(start, progressDone)
	}

	zero := b.snap()
	b.mu.Lock()
	b.first = zero
	b.mu.Unlock()
	b.waitUntil(ctx, start.Add(b.cfg.warmup))
	if ctx.Err() == nil && !b.isFailed() {
		first := b.snap()
		b.mu.Lock()
		b.first = first
		b.mu.Unlock()
		b.waitUntil(ctx, start.Add(b.cfg.duration))
	}
	last := b.snap()
	b.mu.Lock()
	b.last = last
	b.phase = "stopping producers"
	b.mu.Unlock()
	close(progressDone)
	b.stopping.Store(true)
	close(b.stop)

	wg.Wait()
	b.setPhase("closing connections")
	b.closeClients()
	b.setPhase("deleting queues")
	b.deleteTopology(admin, t)
	b.setPhase("done")
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) > 0 {
		return fmt.Errorf("%d client error(s), first: %s", len(b.errs), b.errs[0])
	}
	return nil
}

func (b *bench) isFailed() bool {
	select {
	case <-b.failed:
		return true
	default:
		return false
	}
}

// waitUntil sleeps until t, an interrupt or a client failure.
func (b *bench) waitUntil(ctx context.Context, t time.Time) {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	case <-b.failed:
	}
}

func (b *bench) reportProgress(start time.Time, done <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	prev := b.snap()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		cur := b.snap()
		secs := cur.at.Sub(prev.at).Seconds()
		rate := func(a, b int64) string { return strconv.FormatFloat(float64(a-b)/secs, 'f', 0, 64) }
		h := cur.hist.sub(prev.hist)
		line := fmt.Sprintf("t=%.0fs sent=%s/s recv=%s/s", cur.at.Sub(start).Seconds(), rate(cur.published, prev.published), rate(cur.recv, prev.recv))
		if b.cfg.confirm > 0 {
			line += fmt.Sprintf(" confirmed=%s/s", rate(cur.confirmed, prev.confirmed))
			if cur.nacked > 0 {
				line += fmt.Sprintf(" nacked=%d", cur.nacked)
			}
		}
		if h.n > 0 {
			line += fmt.Sprintf(" lat p50=%v p99=%v max=%v", round(h.quantile(0.5)), round(h.quantile(0.99)), round(time.Duration(h.max)))
		}
		fmt.Fprintln(b.stderr, line)
		prev = cur
	}
}

// round shortens a duration for display: three significant digits.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	case d >= time.Microsecond:
		return d.Round(10 * time.Nanosecond)
	}
	return d
}
