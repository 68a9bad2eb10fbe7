package main

import (
	"fmt"
	"io"
	"time"
)

// result is what a run reports; its JSON form is what -json prints.
type result struct {
	URI        string         `json:"uri"`
	Config     map[string]any `json:"config"`
	WindowSecs float64        `json:"window_s"`
	// Counts and rates are over the window (after the warmup).
	Published int64 `json:"published"`
	Confirmed int64 `json:"confirmed"`
	Nacked    int64 `json:"nacked"`
	Consumed  int64 `json:"consumed"`
	// TotalPublished and TotalConsumed count the whole run, warmup
	// included: what a broker's CPU time over the run is divided by.
	TotalPublished int64     `json:"total_published"`
	TotalConsumed  int64     `json:"total_consumed"`
	PublishedRate  float64   `json:"published_rate"`
	ConfirmedRate  float64   `json:"confirmed_rate"`
	ConsumedRate   float64   `json:"consumed_rate"`
	Latency        latencies `json:"latency"`
	Stalled        bool      `json:"stalled"`
	Phase          string    `json:"phase"`
	Errors         []string  `json:"errors,omitempty"`
}

// latencies are end-to-end, publish to delivery, in microseconds.
type latencies struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_us"`
	P95   float64 `json:"p95_us"`
	P99   float64 `json:"p99_us"`
	Max   float64 `json:"max_us"`
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// result computes the report from the window's snapshots. It may be called
// while execute still runs (the broker stalled): a missing end of the window
// is taken now.
func (b *bench) result() *result {
	b.mu.Lock()
	first, last, phase := b.first, b.last, b.phase
	errs := append([]string(nil), b.errs...)
	b.mu.Unlock()
	cfg := b.cfg
	r := &result{
		URI:    redact(cfg.uri),
		Phase:  phase,
		Errors: errs,
		Config: map[string]any{
			"producers": cfg.producers, "consumers": cfg.consumers, "queues": cfg.queues,
			"size": cfg.size, "rate": cfg.rate, "time_s": cfg.duration.Seconds(), "warmup_s": cfg.warmup.Seconds(),
			"confirm": cfg.confirm, "persistent": cfg.persistent, "autoack": cfg.autoack, "qos": cfg.qos,
			"multi_ack": cfg.multiAck, "exchange_type": cfg.exchangeType, "exchange": cfg.exchange,
			"routing_key": cfg.routingKey, "bindings": cfg.bindings, "priority": cfg.priority,
			"queue_type": cfg.queueType, "queue_args": cfg.queueArgs, "client": cfg.client,
		},
	}
	if first == nil {
		return r // never got to run
	}
	end := b.snap()
	r.TotalPublished, r.TotalConsumed = end.published, end.recv
	if last == nil {
		last = end
	}
	secs := last.at.Sub(first.at).Seconds()
	r.WindowSecs = secs
	r.Published = last.published - first.published
	r.Confirmed = last.confirmed - first.confirmed
	r.Nacked = last.nacked - first.nacked
	r.Consumed = last.recv - first.recv
	if secs > 0 {
		r.PublishedRate = float64(r.Published) / secs
		r.ConfirmedRate = float64(r.Confirmed) / secs
		r.ConsumedRate = float64(r.Consumed) / secs
	}
	h := last.hist.sub(first.hist)
	r.Latency = latencies{
		Count: h.n,
		P50:   micros(h.quantile(0.50)),
		P95:   micros(h.quantile(0.95)),
		P99:   micros(h.quantile(0.99)),
		Max:   micros(time.Duration(h.max)),
	}
	return r
}

func (r *result) print(w io.Writer) {
	fmt.Fprintf(w, "broker     %s\n", r.URI)
	fmt.Fprintf(w, "window     %.2f s (warmup excluded)\n", r.WindowSecs)
	fmt.Fprintf(w, "published  %10.0f msg/s  (%d)\n", r.PublishedRate, r.Published)
	if c := r.Config["confirm"].(int); c > 0 {
		fmt.Fprintf(w, "confirmed  %10.0f msg/s  (%d, nacked %d)\n", r.ConfirmedRate, r.Confirmed, r.Nacked)
	}
	fmt.Fprintf(w, "consumed   %10.0f msg/s  (%d)\n", r.ConsumedRate, r.Consumed)
	us := func(v float64) time.Duration { return round(time.Duration(v * float64(time.Microsecond))) }
	if r.Latency.Count > 0 {
		fmt.Fprintf(w, "latency    p50 %v  p95 %v  p99 %v  max %v  (%d samples)\n",
			us(r.Latency.P50), us(r.Latency.P95), us(r.Latency.P99), us(r.Latency.Max), r.Latency.Count)
	} else {
		fmt.Fprintf(w, "latency    no samples\n")
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error      %s\n", e)
	}
}
