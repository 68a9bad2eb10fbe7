package main

import "fmt"

// scenario is one warren-perf run, and which of its numbers the table shows.
type scenario struct {
	id, title string
	args      []string
	// metric is the number compared; lowerIsBetter for latencies.
	metric        string
	lowerIsBetter bool
	value         func(*perfResult) float64
}

func consumed(r *perfResult) float64 { return r.ConsumedRate }
func p99ms(r *perfResult) float64    { return r.Latency.P99 / 1000 }

var scenarios = []*scenario{
	{id: "a", title: "1 → 1 queue → 1, 16 B, transient, autoack", metric: "consumed msg/s", value: consumed,
		args: []string{"-producers", "1", "-consumers", "1", "-queues", "1", "-size", "16", "-autoack"}},
	{id: "b", title: "1 → 1 → 1, 1 KiB, transient, autoack", metric: "consumed msg/s", value: consumed,
		args: []string{"-producers", "1", "-consumers", "1", "-queues", "1", "-size", "1024", "-autoack"}},
	{id: "c", title: "16 B persistent, confirms (100), manual ack, qos 100", metric: "consumed msg/s", value: consumed,
		args: []string{"-producers", "1", "-consumers", "1", "-queues", "1", "-size", "16", "-persistent", "-confirm", "100", "-qos", "100"}},
	{id: "d", title: "fanout to 10 queues, 10 consumers, 16 B", metric: "deliveries/s", value: consumed,
		args: []string{"-producers", "1", "-consumers", "10", "-queues", "10", "-size", "16", "-exchange-type", "fanout", "-autoack"}},
	{id: "e", title: "topic exchange, 1000 extra bindings, 16 B", metric: "consumed msg/s", value: consumed,
		args: []string{"-producers", "1", "-consumers", "1", "-queues", "1", "-size", "16", "-exchange-type", "topic", "-bindings", "1000", "-autoack"}},
	{id: "f", title: "4 producers, 4 queues, 4 consumers, 16 B", metric: "consumed msg/s", value: consumed,
		args: []string{"-producers", "4", "-consumers", "4", "-queues", "4", "-size", "16", "-autoack"}},
	{id: "g", title: "priority queue (x-max-priority 10), manual ack, qos 100", metric: "consumed msg/s", value: consumed,
		args: []string{"-producers", "1", "-consumers", "1", "-queues", "1", "-size", "16", "-priority", "10", "-qos", "100"}},
	{id: "h", title: "latency at 1000 msg/s, 16 B, autoack", metric: "p99 latency ms", lowerIsBetter: true, value: p99ms,
		args: []string{"-producers", "1", "-consumers", "1", "-queues", "1", "-size", "16", "-rate", "1000", "-autoack"}},
	// (c) and (f) with confirms on quorum queues: issue 12's two throughput targets.
	{id: "i", title: "(c) on a quorum queue", metric: "consumed msg/s", value: consumed,
		args: []string{"-producers", "1", "-consumers", "1", "-queues", "1", "-size", "16", "-persistent", "-confirm", "100", "-qos", "100", "-queue-type", "quorum"}},
	{id: "j", title: "4 producers, 4 quorum queues, 4 consumers, 16 B, confirms (100), qos 100", metric: "consumed msg/s", value: consumed,
		args: []string{"-producers", "4", "-consumers", "4", "-queues", "4", "-size", "16", "-persistent", "-confirm", "100", "-qos", "100", "-queue-type", "quorum"}},
}

func scenarioByID(id string) *scenario {
	for _, s := range scenarios {
		if s.id == id {
			return s
		}
	}
	return nil
}

// headline is the one-line summary printed while the run goes on.
func (s *scenario) headline(r *perfResult) string {
	return fmt.Sprintf("%s %s; published %.0f/s, confirmed %.0f/s, consumed %.0f/s, p50 %.2f ms, p99 %.2f ms, broker CPU %s µs/msg%s",
		fmtNum(s.value(r)), s.metric, r.PublishedRate, r.ConfirmedRate, r.ConsumedRate,
		r.Latency.P50/1000, r.Latency.P99/1000, cpuCell(r), r.note())
}

// note flags a run whose numbers are not to be trusted as they are.
func (r *perfResult) note() string {
	switch {
	case r.failure != "":
		return " (failed: " + r.failure + ")"
	case r.Stalled:
		return " (broker stalled while " + r.Phase + ")"
	case len(r.Errors) > 0:
		return fmt.Sprintf(" (%d client errors, first: %s)", len(r.Errors), r.Errors[0])
	}
	return ""
}
