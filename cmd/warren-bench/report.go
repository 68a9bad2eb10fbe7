package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

type report struct {
	brokers []broker
	started time.Time
	runs    []scenarioRun
	foot    [nFoot]map[string]measure // by broker name
	curve   []curvePoint
}

// curvePoint is one latency-versus-rate run.
type curvePoint struct {
	rate int
	b    broker
	r    *perfResult
}

func (rep *report) addCurve(rate int, b broker, r *perfResult) {
	rep.curve = append(rep.curve, curvePoint{rate, b, r})
}

// curveRates lists the rates measured, in order.
func (rep *report) curveRates() []int {
	var rates []int
	for _, p := range rep.curve {
		if !slices.Contains(rates, p.rate) {
			rates = append(rates, p.rate)
		}
	}
	return rates
}

func (rep *report) curveResult(rate int, b broker) *perfResult {
	for _, p := range rep.curve {
		if p.rate == rate && p.b.name == b.name {
			return p.r
		}
	}
	return nil
}

// cpuCell shows a run's broker CPU per message.
func cpuCell(r *perfResult) string {
	if r == nil || r.failure != "" || !r.cpuOK {
		return "n/a"
	}
	return strconv.FormatFloat(r.cpuUS, 'f', 1, 64)
}

type scenarioRun struct {
	s *scenario
	b broker
	r *perfResult
}

func (rep *report) addScenario(s *scenario, b broker, r *perfResult) {
	rep.runs = append(rep.runs, scenarioRun{s, b, r})
}

func (rep *report) addFootprint(row int, b broker, m measure) {
	if rep.foot[row] == nil {
		rep.foot[row] = map[string]measure{}
	}
	rep.foot[row][b.name] = m
}

func (rep *report) result(s *scenario, b broker) *perfResult {
	for _, run := range rep.runs {
		if run.s == s && run.b.name == b.name {
			return run.r
		}
	}
	return nil
}

// fmtNum prints rates as integers with thousands separators, small values
// with two decimals.
func fmtNum(v float64) string {
	if math.Abs(v) < 100 {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func ratio(a, b float64) string {
	if b == 0 || a == 0 {
		return "–"
	}
	return strconv.FormatFloat(a/b, 'f', 2, 64) + "×"
}

func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (nproc), %s, %s/%s", runtime.NumCPU(), model, runtime.GOOS, runtime.GOARCH)
}

func (rep *report) markdown(w io.Writer, o *options) {
	names := make([]string, len(rep.brokers))
	for i, b := range rep.brokers {
		names[i] = b.name
	}
	fmt.Fprintf(w, "Run %s on %s; each scenario %v with %v warmup excluded; runs alternate %s per scenario.\n\n",
		rep.started.Format("2006-01-02 15:04 MST"), machine(), o.duration, o.warmup, strings.Join(names, ", "))

	tableHead(w, "| Scenario | Metric |", "|---|---|", names)
	for _, s := range scenarios {
		var cells []string
		var vals []float64
		ran := false
		for _, b := range rep.brokers {
			r := rep.result(s, b)
			if r == nil {
				cells = append(cells, "–")
				vals = append(vals, 0)
				continue
			}
			ran = true
			if r.failure != "" {
				cells = append(cells, "failed")
				vals = append(vals, 0)
				continue
			}
			cell := fmtNum(s.value(r))
			if r.Stalled {
				cell += " (stalled)"
			} else if len(r.Errors) > 0 {
				cell += " (errors)"
			}
			cells = append(cells, cell)
			vals = append(vals, s.value(r))
		}
		if !ran {
			continue
		}
		metric := s.metric
		if s.lowerIsBetter {
			metric += " (lower is better)"
		}
		row := fmt.Sprintf("| (%s) %s | %s | %s |", s.id, s.title, metric, strings.Join(cells, " | "))
		fmt.Fprintln(w, row+ratios(vals))
	}

	fmt.Fprintln(w)
	fmt.Fprintf(w, "Broker CPU time per message, µs (utime+stime from /proc over the whole run, divided by its messages; deliveries for the fanout; client %s; lower is better):\n\n", o.client)
	tableHead(w, "| Scenario |", "|---|", names)
	for _, s := range scenarios {
		var cells []string
		var vals []float64
		ran := false
		for _, b := range rep.brokers {
			r := rep.result(s, b)
			ran = ran || r != nil
			cells = append(cells, cpuCell(r))
			v := 0.0
			if r != nil && r.cpuOK && r.failure == "" {
				v = r.cpuUS
			}
			vals = append(vals, v)
		}
		if ran {
			fmt.Fprintf(w, "| (%s) |%s |%s\n", s.id, " "+strings.Join(cells, " | "), ratios(vals))
		}
	}

	if len(rep.curve) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Latency versus rate (scenario (h) at each rate: publish → delivery p50 / p99, ms; broker CPU µs per message):")
		fmt.Fprintln(w)
		head, sep := "| msg/s |", "|---:|"
		for _, n := range names {
			head += fmt.Sprintf(" %s p50 | %s p99 | %s CPU |", n, n, n)
			sep += "---:|---:|---:|"
		}
		fmt.Fprintln(w, head)
		fmt.Fprintln(w, sep)
		for _, rate := range rep.curveRates() {
			row := fmt.Sprintf("| %s |", fmtNum(float64(rate)))
			for _, b := range rep.brokers {
				r := rep.curveResult(rate, b)
				switch {
				case r == nil || r.failure != "":
					row += " – | – | – |"
				default:
					note := ""
					if r.ConsumedRate < 0.95*float64(rate) {
						note = fmt.Sprintf(" (%s/s)", fmtNum(r.ConsumedRate)) // did not keep up
					}
					row += fmt.Sprintf(" %.2f%s | %.2f | %s |", r.Latency.P50/1000, note, r.Latency.P99/1000, cpuCell(r))
				}
			}
			fmt.Fprintln(w, row)
		}
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "Details (window rates; latency publish → delivery, ms):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Scenario | Broker | published/s | confirmed/s | consumed/s | CPU µs/msg | p50 | p95 | p99 | max | notes |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	for _, run := range rep.runs {
		r := run.r
		fmt.Fprintf(w, "| (%s) | %s | %s | %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %s |\n", run.s.id, run.b.name,
			fmtNum(r.PublishedRate), fmtNum(r.ConfirmedRate), fmtNum(r.ConsumedRate), cpuCell(r),
			r.Latency.P50/1000, r.Latency.P95/1000, r.Latency.P99/1000, r.Latency.Max/1000,
			strings.TrimPrefix(strings.ReplaceAll(r.note(), "|", "\\|"), " "))
	}

	have := false
	for _, m := range rep.foot {
		have = have || m != nil
	}
	if !have {
		return
	}
	fmt.Fprintln(w)
	tableHead(w, "| Footprint |", "|---|", names)
	for row, m := range rep.foot {
		if m == nil {
			continue
		}
		title := footRows[row].title
		if strings.Contains(title, "%d") {
			n := o.backlog
			switch row {
			case footConnsRSS:
				n = o.conns
			case footDeclTime, footDeclRSS, footDelTime:
				n = o.declQueues
			case footQDeclTime, footQDeclRSS, footQDelTime:
				n = o.declQuorum
			}
			title = fmt.Sprintf(title, n)
		}
		title = strings.Replace(title, "SIZE", byteSize(o.backlogSize), 1)
		if footRows[row].lowerIsBetter {
			title += " (lower is better)"
		}
		var cells []string
		var vals []float64
		for _, b := range rep.brokers {
			v, ok := m[b.name]
			switch {
			case !ok:
				cells = append(cells, "–")
				vals = append(vals, 0)
			case v.note != "":
				cells = append(cells, v.note)
				vals = append(vals, 0)
			default:
				cells = append(cells, fmtNum(v.v))
				vals = append(vals, v.v)
			}
		}
		line := fmt.Sprintf("| %s | %s |", title, strings.Join(cells, " | "))
		fmt.Fprintln(w, line+ratios(vals))
	}
}

// tableHead prints a comparison table's header and separator: the leading
// columns, one column per broker and, for two brokers, their ratio.
func tableHead(w io.Writer, head, sep string, names []string) {
	head += " " + strings.Join(names, " | ") + " |"
	sep += strings.Repeat("---:|", len(names))
	for _, n := range names[1:] {
		head += fmt.Sprintf(" %s/%s |", names[0], n)
		sep += "---:|"
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, sep)
}

// ratios is the cells comparing the first broker with each other one.
func ratios(vals []float64) string {
	var b strings.Builder
	for _, v := range vals[1:] {
		b.WriteString(" " + ratio(vals[0], v) + " |")
	}
	return b.String()
}

// byteSize renders a message size as the table's titles do: 16 B, 1 KiB.
func byteSize(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%d KiB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}
