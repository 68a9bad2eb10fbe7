package management

import (
	"log/slog"
	"sync"
	"time"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/vhost"
)

// rates are per-second rates of a queue's totals over the last interval.
type rates struct {
	Publish, Deliver, Ack, DeadLettered float64
	// Messages is the change rate of the depth (ready + unacked).
	Messages, Ready, Unacked float64
}

// sample is one reading of a queue's totals.
type sample struct {
	q     queue.Interface // a queue deleted and declared anew starts over
	at    time.Time
	st    queue.Stats
	rates rates
}

type qkey struct{ vhost, name string }

// sampler reads every queue's totals every interval, keeps the rates, and
// warns when a dead-letter queue grows.
type sampler struct {
	broker   *broker.Broker
	srv      *amqp.Server // connections and channels, the node's message totals
	log      *slog.Logger
	interval time.Duration
	hist     *history // the charts' samples (history.go)

	mu      sync.Mutex // guards samples
	samples map[qkey]*sample

	done    chan struct{} // closed by stop
	once    sync.Once
	stopped chan struct{} // closed when the sampling goroutine has returned
}

func newSampler(srv *amqp.Server, interval time.Duration, log *slog.Logger) *sampler {
	b := srv.Broker()
	s := &sampler{broker: b, srv: srv, log: log, interval: interval, hist: newHistory(interval), samples: make(map[qkey]*sample),
		done: make(chan struct{}), stopped: make(chan struct{})}
	// One of the broker's goroutines: it ends with the API (stop) or with
	// the broker, which waits for it before closing the store.
	started := b.Go(func() {
		defer close(s.stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-b.Stopping():
				return
			case <-t.C:
				s.tick()
			}
		}
	})
	if !started {
		close(s.stopped)
	}
	return s
}

func (s *sampler) stop() {
	s.once.Do(func() { close(s.done) })
	<-s.stopped
}

// queueReading is one queue's counters at a tick.
type queueReading struct {
	k   qkey
	q   queue.Interface
	st  queue.Stats
	dlq bool
}

// tick samples every queue. Stats takes each queue's lock briefly, with no
// other lock held.
func (s *sampler) tick() {
	now := time.Now()
	var rs []queueReading
	for _, v := range s.broker.VHosts() {
		dlqs := deadLetterQueues(v)
		for _, q := range v.Queues() {
			rs = append(rs, queueReading{qkey{v.Name, q.Declared().Name}, q, q.Stats(), dlqs[q.Declared().Name]})
		}
	}
	s.mu.Lock()
	seen := make(map[qkey]bool, len(rs))
	type growth struct {
		k         qkey
		from, to  int
		inflowSec float64
	}
	var grew []growth
	for _, r := range rs {
		seen[r.k] = true
		old := s.samples[r.k]
		ns := &sample{q: r.q, at: now, st: r.st}
		if old != nil && old.q == r.q {
			dt := now.Sub(old.at).Seconds()
			if dt > 0 {
				ns.rates = rates{
					Publish:      float64(r.st.Published-old.st.Published) / dt,
					Deliver:      float64(r.st.Delivered-old.st.Delivered) / dt,
					Ack:          float64(r.st.Acked-old.st.Acked) / dt,
					DeadLettered: float64(r.st.DeadLettered-old.st.DeadLettered) / dt,
					Messages:     float64((r.st.Ready+r.st.Unacked)-(old.st.Ready+old.st.Unacked)) / dt,
					Ready:        float64(r.st.Ready-old.st.Ready) / dt,
					Unacked:      float64(r.st.Unacked-old.st.Unacked) / dt,
				}
			}
			if r.dlq && r.st.Ready > old.st.Ready {
				grew = append(grew, growth{r.k, old.st.Ready, r.st.Ready, ns.rates.Publish})
			}
		}
		s.samples[r.k] = ns
	}
	for k := range s.samples {
		if !seen[k] {
			delete(s.samples, k)
		}
	}
	s.mu.Unlock()
	s.record(now, rs)
	for _, g := range grew {
		s.log.Warn("dead-letter queue is growing", "vhost", g.k.vhost, "queue", g.k.name,
			"from", g.from, "to", g.to, "inflow_per_s", g.inflowSec)
	}
}

// rates returns the last rates of a queue (zero before two samples).
func (s *sampler) rates(vh string, q queue.Interface) rates {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sm := s.samples[qkey{vh, q.Declared().Name}]; sm != nil && sm.q == q {
		return sm.rates
	}
	return rates{}
}

// deadLetterQueues returns the queues of v that are some queue's
// dead-letter target: bound (directly or through exchange-to-exchange
// bindings) to an exchange that a queue names as x-dead-letter-exchange, or,
// for the default exchange, named by the dead-letter routing key.
func deadLetterQueues(v *vhost.VHost) map[string]bool {
	out := map[string]bool{}
	dlxs := map[string]bool{}
	for _, q := range v.Queues() {
		c := q.Config()
		if !c.HasDeadLetter {
			continue
		}
		if c.DeadLetterExchange == "" {
			if c.HasDeadLetterKey {
				out[c.DeadLetterRoutingKey] = true
			}
			continue
		}
		dlxs[c.DeadLetterExchange] = true
	}
	if len(dlxs) == 0 {
		return out
	}
	seen := map[string]bool{}
	var walk func(name string)
	walk = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		e, err := v.Exchange(name)
		if err != nil {
			return
		}
		for _, b := range e.Bindings() {
			if b.Destination.Exchange {
				walk(b.Destination.Name)
			} else {
				out[b.Destination.Name] = true
			}
		}
	}
	for name := range dlxs {
		walk(name)
	}
	return out
}
