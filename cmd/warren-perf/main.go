// Command warren-perf is a load generator for any AMQP 0-9-1 broker, in the
// spirit of RabbitMQ's PerfTest. It declares its own queues (and exchange),
// runs producers and consumers on one connection each, and reports publish,
// confirm and consume rates over a steady-state window and the end-to-end
// latency taken from a timestamp in each message's first 8 bytes.
//
//	warren-perf -uri amqp://guest:guest@127.0.0.1:5673/ -time 10s -size 16 -autoack
//
// Exit status: 0 on success, 1 when a client failed during the run, 2 for bad
// flags or when the broker could not be reached or set up, 3 when the broker
// stalled (the run did not finish by -time + 10 s).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Exit codes.
const (
	exitOK      = 0
	exitRun     = 1 // a client failed during the run
	exitSetup   = 2 // bad flags, or the broker could not be reached or set up
	exitStalled = 3 // the run did not end by its hard deadline
)

// stallGrace is how long after -time the tool waits for the run (teardown
// included) to end before it reports the broker as stalled.
const stallGrace = 10 * time.Second

// Clients (-client).
const (
	clientRaw     = "raw"
	clientAMQP091 = "amqp091"
)

// timestampSize is the size of the send timestamp at the start of each body.
const timestampSize = 8

type config struct {
	uri          string
	producers    int
	consumers    int
	queues       int
	queuePrefix  string
	size         int
	rate         float64
	duration     time.Duration
	warmup       time.Duration
	confirm      int
	persistent   bool
	autoack      bool
	qos          int
	multiAck     int
	exchangeType string
	exchange     string
	routingKey   string
	bindings     int
	priority     int
	queueType    string // "", "classic" or "quorum": x-queue-type
	queueArgs    amqp091.Table
	client       string // clientRaw or clientAMQP091
	json         bool
	progress     bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("warren-perf", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.uri, "uri", "amqp://guest:guest@127.0.0.1:5672/", "broker `URI`")
	fs.IntVar(&c.producers, "producers", 1, "number of producers, one connection each")
	fs.IntVar(&c.consumers, "consumers", 1, "number of consumers, one connection each")
	fs.IntVar(&c.queues, "queues", 1, "number of queues to declare (auto-delete, deleted at the end)")
	fs.StringVar(&c.queuePrefix, "queue-prefix", "warren-perf-", "queue names are `PREFIX`0, PREFIX1, ...")
	fs.IntVar(&c.size, "size", 16, "message body size in `bytes` (at least 8: the timestamp)")
	fs.Float64Var(&c.rate, "rate", 0, "publish rate per producer in msg/s (0 = unlimited)")
	fs.DurationVar(&c.duration, "time", 10*time.Second, "run duration, warmup included")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "start of the run excluded from the reported rates and latencies")
	fs.IntVar(&c.confirm, "confirm", 0, "outstanding publisher confirms per producer (0 = no confirms)")
	fs.BoolVar(&c.persistent, "persistent", false, "delivery mode 2 and durable queues and exchange")
	fs.BoolVar(&c.autoack, "autoack", false, "consume with no-ack (default: manual acks)")
	fs.IntVar(&c.qos, "qos", 0, "consumer prefetch count (0 = unlimited)")
	fs.IntVar(&c.multiAck, "multi-ack", 0, "ack every `N` messages with multiple=true (0 or 1 = ack each)")
	fs.StringVar(&c.exchangeType, "exchange-type", "", "direct|fanout|topic|headers (default: publish to the default exchange by queue name)")
	fs.StringVar(&c.exchange, "exchange", "", "exchange name (default warren-perf-TYPE); amq.* exchanges are used, not declared")
	fs.StringVar(&c.routingKey, "routing-key", "", "one routing key (header value for headers) for every binding and message (default: one per queue)")
	fs.IntVar(&c.bindings, "bindings", 0, "extra non-matching bindings to the exchange (topic, direct, headers)")
	fs.IntVar(&c.priority, "priority", 0, "x-max-priority on queues, and random message priorities 0..`MAX`")
	fs.StringVar(&c.queueType, "queue-type", "", "classic|quorum: declares x-queue-type (quorum queues are durable, not auto-delete); default: not set")
	queueArgs := fs.String("queue-args", "", "extra queue arguments, `k=v,k=v` (integers and true/false are typed)")
	fs.StringVar(&c.client, "client", clientRaw, "AMQP client: raw (lean, built on amqp/wire) or amqp091 (amqp091-go)")
	fs.BoolVar(&c.json, "json", false, "print the result as JSON on stdout")
	fs.BoolVar(&c.progress, "progress", true, "print a progress line every second on stderr")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: warren-perf [flags]\n\nA load generator for AMQP 0-9-1 brokers. Flags:\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	args2, err := parseTable(*queueArgs)
	if err != nil {
		return nil, err
	}
	c.queueArgs = args2
	return c, c.validate()
}

func (c *config) validate() error {
	switch {
	case c.producers < 0 || c.consumers < 0:
		return errors.New("-producers and -consumers must not be negative")
	case c.producers == 0 && c.consumers == 0:
		return errors.New("nothing to do: no producers and no consumers")
	case c.queues < 1:
		return errors.New("-queues must be at least 1")
	case c.size < timestampSize:
		return fmt.Errorf("-size must be at least %d bytes (the timestamp)", timestampSize)
	case c.rate < 0 || c.confirm < 0 || c.qos < 0 || c.multiAck < 0 || c.bindings < 0:
		return errors.New("-rate, -confirm, -qos, -multi-ack and -bindings must not be negative")
	case c.qos > 65535:
		return errors.New("-qos must fit in 16 bits")
	case c.duration <= 0:
		return errors.New("-time must be positive")
	case c.warmup < 0 || c.warmup >= c.duration:
		return errors.New("-warmup must be shorter than -time")
	case c.autoack && c.multiAck > 1:
		return errors.New("-multi-ack needs manual acks (drop -autoack)")
	case c.priority < 0 || c.priority > 255:
		return errors.New("-priority must be 0..255")
	case c.client != clientRaw && c.client != clientAMQP091:
		return fmt.Errorf("unknown -client %q (raw|amqp091)", c.client)
	case c.queueType != "" && c.queueType != "classic" && c.queueType != "quorum":
		return fmt.Errorf("unknown -queue-type %q (classic|quorum)", c.queueType)
	case c.queueType == "quorum" && c.priority > 0:
		return errors.New("-priority needs classic queues: quorum queues refuse x-max-priority")
	}
	switch c.exchangeType {
	case "":
		if c.exchange != "" || c.bindings > 0 {
			return errors.New("-exchange and -bindings need -exchange-type")
		}
	case "direct", "topic", "headers":
	case "fanout":
		if c.bindings > 0 {
			return errors.New("-bindings cannot be non-matching on a fanout exchange")
		}
	default:
		return fmt.Errorf("unknown -exchange-type %q (direct|fanout|topic|headers)", c.exchangeType)
	}
	if c.exchangeType != "" && c.exchange == "" {
		c.exchange = "warren-perf-" + c.exchangeType
	}
	if _, err := url.Parse(c.uri); err != nil {
		return fmt.Errorf("bad -uri: %w", err)
	}
	return nil
}

// parseTable parses "k=v,k=v" into a table; values that parse as integers or
// booleans are typed as such, since brokers check x-* argument types.
func parseTable(s string) (amqp091.Table, error) {
	t := amqp091.Table{}
	if strings.TrimSpace(s) == "" {
		return t, nil
	}
	for kv := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("bad -queue-args entry %q: want key=value", kv)
		}
		v = strings.TrimSpace(v)
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			t[k] = n
		} else if b, err := strconv.ParseBool(v); err == nil && (v == "true" || v == "false") {
			t[k] = b
		} else {
			t[k] = v
		}
	}
	return t, nil
}

// redact hides the password in an AMQP URI for messages.
func redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return uri
	}
	return u.Redacted()
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "warren-perf: %v\n", err)
		return exitSetup
	}

	b := newBench(cfg, stderr)
	done := make(chan error, 1)
	go func() { done <- b.execute(ctx) }()

	deadline := time.NewTimer(cfg.duration + stallGrace)
	defer deadline.Stop()
	var res *result
	code := exitOK
	select {
	case err := <-done:
		res = b.result()
		switch {
		case errors.Is(err, errSetup):
			fmt.Fprintf(stderr, "warren-perf: %v\n", err)
			return exitSetup
		case err != nil:
			fmt.Fprintf(stderr, "warren-perf: %v\n", err)
			code = exitRun
		}
	case <-deadline.C:
		res = b.result()
		res.Stalled = true
		code = exitStalled
	}
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		res.print(stdout)
	}
	if res.Stalled {
		fmt.Fprintf(stderr, "warren-perf: broker stalled: the run did not finish within -time + %v (phase: %s); results are what was measured until then\n", stallGrace, res.Phase)
	}
	return code
}
