package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

// TestSVG draws a report with two brokers, one failed run and a latency
// curve, and checks the chart is well-formed XML with what it must show.
func TestSVG(t *testing.T) {
	w, r := broker{name: "Warren"}, broker{name: "Rabbit<MQ>"}
	rep := &report{brokers: []broker{w, r}}
	res := func(rate, cpu, p50, p99 float64) *perfResult {
		p := &perfResult{ConsumedRate: rate, cpuUS: cpu, cpuOK: cpu > 0}
		p.Latency.Count, p.Latency.P50, p.Latency.P99 = 100, p50*1000, p99*1000
		return p
	}
	rep.addScenario(scenarioByID("a"), w, res(500_000, 2.5, 50, 90))
	rep.addScenario(scenarioByID("a"), r, res(60_000, 19, 900, 1500))
	rep.addScenario(scenarioByID("h"), w, res(1000, 30, 0.1, 0.2))
	rep.addScenario(scenarioByID("h"), r, &perfResult{failure: "connection refused"})
	for _, rate := range []int{1000, 10_000} {
		rep.addCurve(rate, w, res(float64(rate), 20, 0.1, 0.3))
		rep.addCurve(rate, r, res(float64(rate), 100, 0.3, 2))
	}
	out := rep.svg()
	dec := xml.NewDecoder(bytes.NewReader(out))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, out)
		}
	}
	s := string(out)
	for _, want := range []string{"500k", "60k", "Rabbit&lt;MQ&gt;", "<polyline", `stroke-dasharray="6,4"`, "10k msg/s", "n/a", "19.0"} {
		if !strings.Contains(s, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	// Two bars per panel for (a), CPU and throughput, one for (h)'s CPU.
	if n := strings.Count(s, "<rect x="); n < 5 {
		t.Errorf("%d bars and legend boxes, want at least 5", n)
	}
}
