// Command warren-bench runs Warren's fixed benchmark scenario set with
// warren-perf against one broker, or against two alternately (scenario by
// scenario: first, second, first, second...), plus footprint measurements,
// and prints a Markdown table with both numbers and their ratio.
//
//	warren-bench -url1 amqp://guest:guest@127.0.0.1:5673/ -pid1 $WARREN_PID \
//	    -url2 amqp://guest:guest@127.0.0.1:5672/ -pid2 $BEAM_PID
//
// See docs/performance.md.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// broker is one side of the comparison.
type broker struct {
	name string
	url  string
	pid  int // 0: footprint RSS rows are not available
}

type options struct {
	brokers   []broker
	duration  time.Duration
	warmup    time.Duration
	pause     time.Duration
	scenarios map[string]bool // empty: all
	footprint bool
	perf      string
	backlog   int
	// backlogSize is the body size of backlog messages.
	backlogSize int
	// footOnly selects footprint steps by name; nil runs all.
	footOnly   map[string]bool
	conns      int
	declQueues int
	declQuorum int // quorum queues in the quorum-queues footprint step
	verbose    bool
	out        string
	// client is warren-perf's -client (raw or amqp091).
	client string
	// curve lists the rates (msg/s) of the latency-versus-rate runs.
	curve []int
	// svg is where the chart goes; empty: no chart.
	svg string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "warren-bench: %v\n", err)
		return 2
	}
	cleanup, err := o.findPerf(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "warren-bench: %v\n", err)
		return 2
	}
	defer cleanup()

	rep := &report{brokers: o.brokers, started: time.Now()}
	if o.footprint {
		// Idle RSS first: the scenarios grow the brokers' heaps.
		for _, b := range o.brokers {
			rep.addFootprint(footIdle, b, idleRSS(b))
		}
	}
	for _, s := range scenarios {
		if o.scenarios != nil && !o.scenarios[s.id] {
			continue
		}
		for _, b := range o.brokers {
			if ctx.Err() != nil {
				break
			}
			r := o.runScenario(ctx, s, b, stderr)
			rep.addScenario(s, b, r)
			time.Sleep(o.pause)
		}
	}
	for _, rate := range o.curve {
		for _, b := range o.brokers {
			if ctx.Err() != nil {
				break
			}
			r := o.runPerf(ctx, fmt.Sprintf("latency at %d msg/s", rate), "curve-", b, curveArgs(rate), stderr)
			rep.addCurve(rate, b, r)
			time.Sleep(o.pause)
		}
	}
	if o.footprint && ctx.Err() == nil {
		o.runFootprint(ctx, rep, stderr)
	}

	var buf bytes.Buffer
	rep.markdown(&buf, o)
	_, _ = stdout.Write(buf.Bytes())
	if o.out != "" {
		if err := os.WriteFile(o.out, buf.Bytes(), 0o644); err != nil {
			fmt.Fprintf(stderr, "warren-bench: %v\n", err)
			return 1
		}
	}
	if o.svg != "" {
		if err := os.WriteFile(o.svg, rep.svg(), 0o644); err != nil {
			fmt.Fprintf(stderr, "warren-bench: %v\n", err)
			return 1
		}
	}
	if ctx.Err() != nil {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("warren-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url1 := fs.String("url1", "amqp://guest:guest@127.0.0.1:5673/", "first broker (Warren)")
	url2 := fs.String("url2", "", "second broker to compare with (e.g. RabbitMQ); empty: none")
	name1 := fs.String("name1", "Warren", "first broker's name in the table")
	name2 := fs.String("name2", "RabbitMQ", "second broker's name in the table")
	pid1 := fs.Int("pid1", 0, "first broker's PID, for RSS (VmRSS from /proc/PID/status)")
	pid2 := fs.Int("pid2", 0, "second broker's PID (RabbitMQ: beam.smp)")
	url3 := fs.String("url3", "", "third broker to compare with (e.g. LavinMQ); empty: none")
	name3 := fs.String("name3", "LavinMQ", "third broker's name in the table")
	pid3 := fs.Int("pid3", 0, "third broker's PID")
	fs.StringVar(&o.client, "client", "raw", "warren-perf's client: raw or amqp091")
	curve := fs.String("curve", "1000,10000,50000,100000", "rates (msg/s) of the latency-versus-rate runs; none: skip them")
	fs.StringVar(&o.svg, "svg", "", "also draw the comparison as an SVG chart into `FILE`")
	fs.DurationVar(&o.duration, "time", 10*time.Second, "duration of each scenario run, warmup included")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "warmup excluded from each scenario's window")
	fs.DurationVar(&o.pause, "pause", 2*time.Second, "pause between runs, for the broker to settle")
	only := fs.String("scenarios", "", "comma-separated scenario ids to run (a..j; i and j on quorum queues); empty: all; none: only footprint")
	noFoot := fs.Bool("no-footprint", false, "skip the footprint rows (idle RSS, connections, queues, backlog)")
	fs.StringVar(&o.perf, "perf", "", "warren-perf binary (default: next to this binary, in PATH, or built from ./cmd/warren-perf)")
	fs.IntVar(&o.backlog, "backlog", 1_000_000, "messages in the backlog footprint rows")
	fs.IntVar(&o.backlogSize, "backlog-size", 16, "body size of the backlog messages, bytes")
	footOnly := fs.String("footprint", "", "comma-separated footprint steps to run (conns, queues, quorum-queues, backlog, backlog-persistent); empty: all")
	fs.IntVar(&o.conns, "conns", 1000, "idle connections in the connections footprint row")
	fs.IntVar(&o.declQueues, "decl-queues", 10_000, "queues in the declaration footprint row")
	fs.IntVar(&o.declQuorum, "decl-quorum-queues", 1000, "quorum queues in the quorum declaration footprint rows")
	fs.BoolVar(&o.verbose, "v", false, "show warren-perf's progress lines")
	fs.StringVar(&o.out, "out", "", "also write the Markdown report to `FILE`")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.footprint = !*noFoot
	if *footOnly != "" {
		o.footOnly = map[string]bool{}
		for name := range strings.SplitSeq(*footOnly, ",") {
			switch name = strings.TrimSpace(name); name {
			case "conns", "queues", "quorum-queues", "backlog", "backlog-persistent":
				o.footOnly[name] = true
			default:
				return nil, fmt.Errorf("unknown footprint step %q", name)
			}
		}
	}
	o.brokers = []broker{{name: *name1, url: *url1, pid: *pid1}}
	if *url2 != "" {
		o.brokers = append(o.brokers, broker{name: *name2, url: *url2, pid: *pid2})
	}
	if *url3 != "" {
		o.brokers = append(o.brokers, broker{name: *name3, url: *url3, pid: *pid3})
	}
	switch o.client {
	case "raw", "amqp091":
	default:
		return nil, fmt.Errorf("unknown -client %q (raw or amqp091)", o.client)
	}
	if *curve != "none" && *curve != "" {
		for f := range strings.SplitSeq(*curve, ",") {
			rate, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || rate <= 0 {
				return nil, fmt.Errorf("bad -curve rate %q", f)
			}
			o.curve = append(o.curve, rate)
		}
	}
	if *only != "" {
		o.scenarios = map[string]bool{}
		for id := range strings.SplitSeq(*only, ",") {
			if id == "none" {
				continue
			}
			id = strings.TrimSpace(id)
			if scenarioByID(id) == nil {
				return nil, fmt.Errorf("unknown scenario %q", id)
			}
			o.scenarios[id] = true
		}
	}
	if o.warmup >= o.duration {
		return nil, errors.New("-warmup must be shorter than -time")
	}
	return o, nil
}

// findPerf locates warren-perf, building it when running from the repository.
func (o *options) findPerf(stderr io.Writer) (func(), error) {
	nothing := func() {}
	if o.perf != "" {
		return nothing, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "warren-perf")
		if _, err := os.Stat(p); err == nil {
			o.perf = p
			return nothing, nil
		}
	}
	if p, err := exec.LookPath("warren-perf"); err == nil {
		o.perf = p
		return nothing, nil
	}
	if _, err := os.Stat("cmd/warren-perf"); err != nil {
		return nothing, errors.New("warren-perf not found: pass -perf, or build it next to warren-bench (go build -o bin/ ./cmd/warren-perf ./cmd/warren-bench)")
	}
	dir, err := os.MkdirTemp("", "warren-bench")
	if err != nil {
		return nothing, err
	}
	o.perf = filepath.Join(dir, "warren-perf")
	fmt.Fprintf(stderr, "building %s\n", o.perf)
	cmd := exec.Command("go", "build", "-o", o.perf, "./cmd/warren-perf")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return nothing, fmt.Errorf("building warren-perf: %v", err)
	}
	return func() { os.RemoveAll(dir) }, nil
}

// perfResult is the part of warren-perf's -json output the report uses.
type perfResult struct {
	PublishedRate float64 `json:"published_rate"`
	ConfirmedRate float64 `json:"confirmed_rate"`
	ConsumedRate  float64 `json:"consumed_rate"`
	// Whole-run counts, warmup included, for the CPU per message.
	TotalPublished int64    `json:"total_published"`
	TotalConsumed  int64    `json:"total_consumed"`
	Stalled        bool     `json:"stalled"`
	Phase          string   `json:"phase"`
	Errors         []string `json:"errors"`
	Latency        struct {
		Count uint64  `json:"count"`
		P50   float64 `json:"p50_us"`
		P95   float64 `json:"p95_us"`
		P99   float64 `json:"p99_us"`
		Max   float64 `json:"max_us"`
	} `json:"latency"`
	// failure is set when warren-perf could not run or its output not be read.
	failure string
	// cpuUS is the broker's CPU time per message in microseconds, when
	// cpuOK (it needs the broker's PID and /proc).
	cpuUS float64
	cpuOK bool
}

func (o *options) runScenario(ctx context.Context, s *scenario, b broker, stderr io.Writer) *perfResult {
	r := o.runPerf(ctx, "("+s.id+")", s.id+"-", b, s.args, stderr)
	if r.failure == "" {
		fmt.Fprintf(stderr, "    %s\n", s.headline(r))
	}
	return r
}

// curveArgs is the latency-versus-rate configuration: scenario (h) at rate.
func curveArgs(rate int) []string {
	return []string{"-producers", "1", "-consumers", "1", "-queues", "1", "-size", "16", "-rate", strconv.Itoa(rate), "-autoack"}
}

// runPerf runs warren-perf once against b and reads the broker's CPU time
// before and after it.
func (o *options) runPerf(ctx context.Context, label, prefix string, b broker, scenarioArgs []string, stderr io.Writer) *perfResult {
	args := append([]string{
		"-uri", b.url, "-json", "-client", o.client,
		"-time", o.duration.String(), "-warmup", o.warmup.String(),
		"-queue-prefix", "warren-bench-" + prefix,
		"-progress=" + fmt.Sprint(o.verbose),
	}, scenarioArgs...)
	fmt.Fprintf(stderr, "%s %s: warren-perf -client %s %s\n", label, b.name, o.client, strings.Join(scenarioArgs, " "))
	cmd := exec.CommandContext(ctx, o.perf, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errOut
	if o.verbose {
		cmd.Stderr = io.MultiWriter(&errOut, stderr)
	}
	cpu0, ok0 := cpuTime(b.pid)
	err := cmd.Run()
	cpu1, ok1 := cpuTime(b.pid)
	r := &perfResult{}
	if jerr := json.Unmarshal(out.Bytes(), r); jerr != nil {
		msg := strings.TrimSpace(errOut.String())
		if msg == "" && err != nil {
			msg = err.Error()
		}
		r.failure = firstLine(msg)
		fmt.Fprintf(stderr, "    failed: %s\n", r.failure)
		return r
	}
	if err != nil && !r.Stalled && len(r.Errors) == 0 {
		r.failure = firstLine(strings.TrimSpace(errOut.String()))
	}
	if ok0 && ok1 {
		r.cpuUS, r.cpuOK = cpuPerMessage(cpu1-cpu0, r)
	}
	return r
}

func firstLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		// warren-perf's final word is its last line.
		return s[i+1:]
	}
	return s
}
