package management

import (
	"net/url"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/exchange"
	"strconv"
	"sync"
	"time"
)

// History: the samples behind the web UI's charts and RabbitMQ's
// "_details" objects with "samples" (requested with lengths_age,
// lengths_incr, msg_rates_age, msg_rates_incr, data_rates_age and
// data_rates_incr). The sampler records every object's counters each
// interval into fixed-size rings at RabbitMQ's retention: for the node
// ("global") one reading per interval for 121 intervals (10 minutes at the
// default 5 s), one per 12 intervals for 61, one per 120 for 49 and one per
// 360 for 49 (a day); for queues, exchanges, connections and channels ("basic") the
// first two. An object whose counters have not changed keeps no rings at
// all: its history is its current reading, so 10 000 idle queues cost
// nothing; rings are dropped again once an object has been idle longer than
// they reach back.

// retention is one ring: a reading every `every` intervals, `slots` kept.
type retention struct{ every, slots int }

var (
	globalRetention = []retention{{1, 121}, {12, 61}, {120, 49}, {360, 49}}
	basicRetention  = []retention{{1, 121}, {12, 61}}
)

// retentionPolicies is RabbitMQ's sample_retention_policies for the
// interval: how far back (seconds) each ring reaches.
func retentionPolicies(interval time.Duration) map[string][]int64 {
	reach := func(rs []retention) []int64 {
		out := make([]int64, len(rs))
		for i, r := range rs {
			out[i] = int64(time.Duration(r.every*(r.slots-1)) * interval / time.Second)
		}
		return out
	}
	return map[string][]int64{"global": reach(globalRetention), "basic": reach(basicRetention), "detailed": reach(basicRetention[:1])}
}

// ring keeps the last reading of each of its buckets (time / width).
type ring struct {
	width  int64   // milliseconds per bucket
	bucket []int64 // bucket number held by each slot; -1 when empty
	vals   []int64 // slot*fields + field
}

// series is one object's history of a fixed number of counters.
type series struct {
	fields int
	spec   []retention
	// base is the reading in effect before anything in rings: the first
	// reading, or the one the object stayed at while it had no rings.
	base []int64
	last []int64 // the latest reading
	prev []int64 // the reading before it, for rates
	// firstAt is when the object was first read: before it, it did not
	// exist (or the node had not started), and every field reads 0.
	// prevAt and lastAt are when prev and last were read; changedAt when a reading last differed
	// from the one before. rings is nil while the object is idle.
	firstAt, prevAt, lastAt, changedAt int64
	rings                              []ring
}

func newSeries(spec []retention, fields int) *series {
	return &series{fields: fields, spec: spec, base: make([]int64, fields), last: make([]int64, fields), prev: make([]int64, fields)}
}

// record adds a reading taken at now (ms); interval is the sampler's.
func (s *series) record(now int64, interval time.Duration, vals []int64) {
	if s.lastAt == 0 {
		copy(s.base, vals)
		copy(s.last, vals)
		copy(s.prev, vals)
		s.firstAt, s.prevAt, s.lastAt, s.changedAt = now, now, now, now
		return
	}
	changed := false
	for i, v := range vals {
		if v != s.last[i] {
			changed = true
			break
		}
	}
	if changed {
		if s.rings == nil {
			s.allocate(interval)
			s.store(s.lastAt, s.last) // what it was until now
		}
		s.changedAt = now
	}
	copy(s.prev, s.last)
	copy(s.last, vals)
	s.prevAt, s.lastAt = s.lastAt, now
	if s.rings == nil {
		return
	}
	oldest := s.rings[len(s.rings)-1]
	if now-s.changedAt > oldest.width*int64(len(oldest.bucket)) {
		// Idle for longer than the rings reach: the reading is the history.
		s.rings = nil
		copy(s.base, vals)
		return
	}
	s.store(now, vals)
}

func (s *series) allocate(interval time.Duration) {
	s.rings = make([]ring, len(s.spec))
	for i, r := range s.spec {
		b := make([]int64, r.slots)
		for j := range b {
			b[j] = -1
		}
		s.rings[i] = ring{width: max(int64(r.every)*interval.Milliseconds(), 1), bucket: b, vals: make([]int64, r.slots*s.fields)}
	}
}

func (s *series) store(at int64, vals []int64) {
	for i := range s.rings {
		r := &s.rings[i]
		b := at / r.width
		slot := int(b % int64(len(r.bucket)))
		r.bucket[slot] = b
		copy(r.vals[slot*s.fields:(slot+1)*s.fields], vals)
	}
}

// at returns field f as it was at time t (ms): the reading of the finest
// ring that reaches back to t, taken in t's bucket or the latest before it.
func (s *series) at(t int64, f int) int64 {
	if t >= s.lastAt {
		return s.last[f]
	}
	if t < s.firstAt {
		return 0
	}
	for i := range s.rings {
		r := &s.rings[i]
		n := int64(len(r.bucket))
		b := t / r.width
		if b <= s.lastAt/r.width-n {
			continue // older than this ring reaches
		}
		// The latest bucket at or before b that this ring still holds; a
		// slot holding another bucket is a gap (no reading then).
		for k := int64(0); k < n && b-k >= 0; k++ {
			if slot := (b - k) % n; r.bucket[slot] == b-k {
				return r.vals[int(slot)*s.fields+f]
			}
		}
		break
	}
	return s.base[f]
}

// rate is field f's change per second between the last two readings.
func (s *series) rate(f int) float64 {
	if s.lastAt <= s.prevAt {
		return 0
	}
	return float64(s.last[f]-s.prev[f]) * 1000 / float64(s.lastAt-s.prevAt)
}

// window is what a request asked for: samples every incr seconds for age
// seconds.
type window struct{ age, incr int64 }

// windowOf reads prefix_age and prefix_incr ("lengths", "msg_rates",
// "data_rates") as RabbitMQ does; ok is false when either is missing or bad.
func windowOf(q url.Values, prefix string) (window, bool) {
	age, err1 := strconv.ParseInt(q.Get(prefix+"_age"), 10, 64)
	incr, err2 := strconv.ParseInt(q.Get(prefix+"_incr"), 10, 64)
	if err1 != nil || err2 != nil || age <= 0 || incr <= 0 || age/incr > 10_000 {
		return window{}, false
	}
	return window{age, incr}, true
}

// sampleJSON is one point of a "samples" list.
type sampleJSON struct {
	Sample    int64 `json:"sample"`
	Timestamp int64 `json:"timestamp"`
}

// detailsJSON is RabbitMQ's X_details object with samples.
type detailsJSON struct {
	Rate    float64      `json:"rate"`
	Samples []sampleJSON `json:"samples"`
	AvgRate float64      `json:"avg_rate"`
	Avg     float64      `json:"avg"`
}

// details renders field f of s over w, newest sample first, with rate (the
// sampler's last rate) as "rate".
func (s *series) details(f int, w window, now int64, rate float64) detailsJSON {
	incr := w.incr * 1000
	t0 := now / incr * incr
	n := w.age/w.incr + 1
	d := detailsJSON{Rate: rate, Samples: make([]sampleJSON, n)}
	var sum int64
	for k := range n {
		t := t0 - k*incr
		v := s.at(t, f)
		d.Samples[k] = sampleJSON{Sample: v, Timestamp: t}
		sum += v
	}
	d.Avg = float64(sum) / float64(n)
	if n > 1 {
		d.AvgRate = float64(d.Samples[0].Sample-d.Samples[n-1].Sample) / float64(w.age)
	}
	return d
}

// history holds every object's series; the sampler records, handlers read.
type history struct {
	interval time.Duration

	mu        sync.Mutex // guards the maps and every series in them
	global    *series
	queues    map[qkey]queueSeries
	exchanges map[qkey]queueSeries // the object is the *exchange.Exchange
	conns     map[uint64]*series
	channels  map[chanKey]*series
}

// queueSeries is a queue's (or an exchange's) history, tied to the object
// so that one deleted and declared again starts over.
type queueSeries struct {
	q any
	s *series
}

type chanKey struct {
	conn uint64
	ch   uint16
}

func newHistory(interval time.Duration) *history {
	return &history{interval: interval, global: newSeries(globalRetention, len(globalFields)),
		queues: map[qkey]queueSeries{}, exchanges: map[qkey]queueSeries{}, conns: map[uint64]*series{}, channels: map[chanKey]*series{}}
}

// Field positions of each kind of series, with their JSON names.
var (
	// globalFields: message_stats, then queue_totals, then churn_rates,
	// then the node's resources.
	globalFields = []string{
		"publish", "confirm", "deliver_get", "deliver", "deliver_no_ack", "get", "get_no_ack", "get_empty",
		"redeliver", "ack", "return_unroutable", "drop_unroutable",
		"messages", "messages_ready", "messages_unacknowledged",
		"connection_created", "connection_closed", "channel_created", "channel_closed",
		"queue_declared", "queue_created", "queue_deleted",
		"mem_used", "disk_free", "fd_used", "sockets_used",
	}
	queueFields    = []string{"messages", "messages_ready", "messages_unacknowledged", "publish", "deliver_get", "ack", "dead_lettered"}
	connFields     = []string{"recv_oct", "send_oct"}
	exchangeFields = []string{"publish_in", "publish_out"}
	channelFields  = []string{"publish", "confirm", "deliver_get", "deliver", "deliver_no_ack", "get", "get_no_ack", "get_empty", "redeliver", "ack", "return_unroutable", "drop_unroutable"}
)

// fieldIndex finds name in fields (-1 if absent).
func fieldIndex(fields []string, name string) int {
	for i, f := range fields {
		if f == name {
			return i
		}
	}
	return -1
}

// record files one tick's readings: the node's totals, every queue,
// connection and channel. The readings are taken before the lock.
func (s *sampler) record(now time.Time, qs []queueReading) {
	ms := now.UnixMilli()
	t, c, res := s.srv.MessageTotals(), s.srv.Churn(), s.broker.Resources()
	conns, chans := s.srv.Connections(), s.srv.Channels()
	fds := openFDs()
	type exReading struct {
		k       qkey
		e       *exchange.Exchange
		in, out uint64
	}
	var exs []exReading
	for _, v := range s.broker.VHosts() {
		for _, e := range v.Exchanges() {
			in, out := e.PublishCounts()
			exs = append(exs, exReading{qkey{v.Name, e.Name}, e, in, out})
		}
	}
	var ready, unacked int64
	for _, r := range qs {
		ready += int64(r.st.Ready)
		unacked += int64(r.st.Unacked)
	}
	u := func(x uint64) int64 { return int64(x) }
	global := []int64{
		u(t.Received), u(t.Confirmed), u(t.Delivered()), u(t.DeliveredConsumeManualAck), u(t.DeliveredConsumeAutoAck),
		u(t.DeliveredGetManualAck), u(t.DeliveredGetAutoAck), u(t.GetEmpty), u(t.Redelivered), u(t.Acknowledged),
		u(t.UnroutableReturned), u(t.UnroutableDropped),
		ready + unacked, ready, unacked,
		u(c.ConnectionsOpened), u(c.ConnectionsClosed), u(c.ChannelsOpened), u(c.ChannelsClosed),
		u(c.QueuesDeclared), u(c.QueuesCreated), u(c.QueuesDeleted),
		u(res.ResidentMemory), u(res.DiskFree), int64(fds), int64(len(conns)),
	}
	vals := make([]int64, len(channelFields))
	h := s.hist
	h.mu.Lock()
	defer h.mu.Unlock()
	h.global.record(ms, h.interval, global)

	seenQ := make(map[qkey]bool, len(qs))
	for _, r := range qs {
		seenQ[r.k] = true
		e := h.queues[r.k]
		if e.q != r.q {
			e = queueSeries{q: r.q, s: newSeries(basicRetention, len(queueFields))}
			h.queues[r.k] = e
		}
		st := r.st
		vals = append(vals[:0], int64(st.Ready+st.Unacked), int64(st.Ready), int64(st.Unacked),
			u(st.Published), u(st.Delivered), u(st.Acked), u(st.DeadLettered))
		e.s.record(ms, h.interval, vals)
	}
	for k := range h.queues {
		if !seenQ[k] {
			delete(h.queues, k)
		}
	}

	seenX := make(map[qkey]bool, len(exs))
	for _, x := range exs {
		seenX[x.k] = true
		e := h.exchanges[x.k]
		if e.q != x.e {
			e = queueSeries{q: x.e, s: newSeries(basicRetention, len(exchangeFields))}
			h.exchanges[x.k] = e
		}
		vals = append(vals[:0], u(x.in), u(x.out))
		e.s.record(ms, h.interval, vals)
	}
	for k := range h.exchanges {
		if !seenX[k] {
			delete(h.exchanges, k)
		}
	}

	seenC := make(map[uint64]bool, len(conns))
	for _, ci := range conns {
		seenC[ci.ID] = true
		cs := h.conns[ci.ID]
		if cs == nil {
			cs = newSeries(basicRetention, len(connFields))
			h.conns[ci.ID] = cs
		}
		vals = append(vals[:0], u(ci.RecvBytes), u(ci.SendBytes))
		cs.record(ms, h.interval, vals)
	}
	for k := range h.conns {
		if !seenC[k] {
			delete(h.conns, k)
		}
	}

	seenCh := make(map[chanKey]bool, len(chans))
	for _, ch := range chans {
		k := chanKey{ch.Connection.ID, ch.Number}
		seenCh[k] = true
		cs := h.channels[k]
		if cs == nil {
			cs = newSeries(basicRetention, len(channelFields))
			h.channels[k] = cs
		}
		vals = channelTotals(vals[:0], ch.Totals)
		cs.record(ms, h.interval, vals)
	}
	for k := range h.channels {
		if !seenCh[k] {
			delete(h.channels, k)
		}
	}
}

// channelTotals appends a channel's counts in channelFields' order.
func channelTotals(out []int64, t amqp.MessageTotals) []int64 {
	u := func(x uint64) int64 { return int64(x) }
	return append(out, u(t.Received), u(t.Confirmed), u(t.Delivered()), u(t.DeliveredConsumeManualAck),
		u(t.DeliveredConsumeAutoAck), u(t.DeliveredGetManualAck), u(t.DeliveredGetAutoAck), u(t.GetEmpty),
		u(t.Redelivered), u(t.Acknowledged), u(t.UnroutableReturned), u(t.UnroutableDropped))
}
