// Command order-processing shows the production pattern for fanning work out
// to several services with dead-lettering, a delivery limit against poison
// messages, and a safe replay of a dead-lettered message once it is fixed.
//
//	go run ./examples/order-processing -url amqp://guest:guest@127.0.0.1:5672/
//
// Topology (declared idempotently, deleted at the end unless -keep):
//
//	orders (fanout) ──> inventory, notification, fraud, analytics
//	each queue: x-dead-letter-exchange=orders.dlx, x-dead-letter-routing-key=<queue>, x-delivery-limit=3
//	orders.dlx (direct) ──<queue>──> <queue>.dlq
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

const (
	ordersExchange = "orders"
	dlxExchange    = "orders.dlx"
	// deliveryLimit is how many times a message may be returned to its queue
	// (nack or reject with requeue) before the broker dead-letters it. It
	// turns a poison message from an endless redelivery loop into one entry
	// in a dead-letter queue.
	deliveryLimit = 3
	// replayedHeader marks a message that an operator replayed from a DLQ
	// after fixing the cause; the fraud service lets it through.
	replayedHeader = "x-replayed"
)

// services each get their own queue bound to the orders fanout, so every
// service sees every order, and their own DLQ, so one service's poison
// messages never mix with another's.
var services = []string{"inventory", "notification", "fraud", "analytics"}

// Order is the JSON body of an order.placed message.
type Order struct {
	ID     string  `json:"id"`
	Amount float64 `json:"amount"`
}

// orders are published in this order; order-13 is the poison message.
var orders = []Order{
	{ID: "order-11", Amount: 25.50},
	{ID: "order-12", Amount: 99.00},
	{ID: "order-13", Amount: -1}, // the fraud service cannot score a negative amount
	{ID: "order-14", Amount: 12.75},
}

const poisonID = "order-13"

// Death is one entry of the x-death header, which the broker writes (as
// RabbitMQ 3.10 does) each time a message is dead-lettered: one entry per
// (queue, reason), most recent first, with a count of how often it happened.
type Death struct {
	Reason      string
	Queue       string
	Exchange    string
	RoutingKeys []string
	Count       int64
	Time        time.Time
}

// Summary is what happened in one run.
type Summary struct {
	Published int            // orders published and confirmed
	Acked     map[string]int // messages each service acked, replay included
	// PoisonDeliveries is how often the fraud service received the poison
	// message before the broker dead-lettered it: 1 + deliveryLimit.
	PoisonDeliveries int
	// DeadLetter is x-death[0] of the poison message as found in fraud.dlq.
	DeadLetter Death
	// Replayed is true once the fixed message was republished, confirmed,
	// and its DLQ copy acked.
	Replayed bool
	// ReplayAccepted is true once the fraud service acked the replayed copy.
	ReplayAccepted bool
}

func main() {
	url := flag.String("url", "amqp://guest:guest@127.0.0.1:5672/", "AMQP URL of the broker")
	keep := flag.Bool("keep", false, "leave the exchanges and queues declared when done")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	s, err := run(ctx, *url, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "order-processing:", err)
		os.Exit(1)
	}
	if *keep {
		fmt.Println("\ntopology kept (-keep): exchanges orders, orders.dlx; queues", strings.Join(allQueues(), ", "))
	} else if err := teardown(ctx, *url); err != nil {
		fmt.Fprintln(os.Stderr, "order-processing: teardown:", err)
		os.Exit(1)
	} else {
		fmt.Println("\ntopology deleted (run with -keep to leave it declared)")
	}
	printSummary(os.Stdout, s)
}

// run declares the topology, publishes the orders, runs one worker per
// service until the poison message is dead-lettered, inspects and replays it,
// and waits for the fraud service to accept the replay.
func run(ctx context.Context, url string, out io.Writer) (Summary, error) {
	s := Summary{Acked: map[string]int{}}

	// Two connections: one for the workers, one for publishing and admin
	// work. A consumer that is slow to drain its deliveries then cannot hold
	// up confirms for the publisher, which share the connection's reader.
	admin, err := amqp091.Dial(url)
	if err != nil {
		return s, fmt.Errorf("dial: %w", err)
	}
	defer admin.Close()
	workersConn, err := amqp091.Dial(url)
	if err != nil {
		return s, fmt.Errorf("dial: %w", err)
	}
	defer workersConn.Close()

	ch, err := admin.Channel()
	if err != nil {
		return s, err
	}
	fmt.Fprintln(out, "== 1. topology")
	if err := declareTopology(ch, out); err != nil {
		return s, err
	}

	// Start the workers before publishing so that every delivery is seen.
	workersCtx, stopWorkers := context.WithCancel(ctx)
	events := make(chan event, 64)
	var wg sync.WaitGroup
	// On return, stop the workers and wait for them so that run leaves
	// nothing behind: cancelling unblocks a worker waiting to report, and
	// closing the connection ends every delivery channel.
	defer func() {
		stopWorkers()
		_ = workersConn.Close()
		wg.Wait()
	}()
	for _, svc := range services {
		wch, err := workersConn.Channel()
		if err != nil {
			return s, err
		}
		deliveries, err := startWorker(wch, svc)
		if err != nil {
			return s, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			work(workersCtx, svc, deliveries, events)
		}()
	}

	fmt.Fprintln(out, "\n== 2. publish with confirms")
	pub, err := confirmChannel(admin)
	if err != nil {
		return s, err
	}
	if s.Published, err = publishOrders(ctx, pub, out); err != nil {
		return s, err
	}

	fmt.Fprintln(out, "\n== 3. workers (fraud nacks negative amounts with requeue)")
	// Every service acks every good order; fraud also sees the poison order
	// 1 + deliveryLimit times before the broker gives up on it.
	good := len(orders) - 1
	err = waitFor(ctx, events, out, &s, func() bool {
		for _, svc := range services {
			want := len(orders)
			if svc == "fraud" {
				want = good
			}
			if s.Acked[svc] < want {
				return false
			}
		}
		return s.PoisonDeliveries == 1+deliveryLimit
	})
	if err != nil {
		return s, fmt.Errorf("waiting for workers: %w", err)
	}

	fmt.Fprintln(out, "\n== 4. inspect fraud.dlq (basic.get, then nack with requeue: nothing is taken)")
	d, err := getWithin(ctx, ch, "fraud.dlq")
	if err != nil {
		return s, err
	}
	deaths := xDeath(d.Headers)
	if len(deaths) == 0 {
		return s, fmt.Errorf("message %s in fraud.dlq has no x-death header", d.MessageId)
	}
	s.DeadLetter = deaths[0]
	printDeadLetter(out, d, deaths)
	// Requeue, not ack: inspection must not consume the evidence.
	if err := d.Nack(false, true); err != nil {
		return s, err
	}

	fmt.Fprintln(out, "\n== 5. replay from fraud.dlq")
	if err := replay(ctx, pub, ch, "fraud.dlq", out); err != nil {
		return s, err
	}
	s.Replayed = true

	fmt.Fprintln(out, "\n== 6. fraud accepts the replayed order")
	if err := waitFor(ctx, events, out, &s, func() bool { return s.ReplayAccepted }); err != nil {
		return s, fmt.Errorf("waiting for the replay to be accepted: %w", err)
	}
	return s, nil
}

// allQueues lists the work queues and their DLQs.
func allQueues() []string {
	var qs []string
	for _, svc := range services {
		qs = append(qs, svc, svc+".dlq")
	}
	return qs
}

// declareTopology declares exchanges, queues and bindings. Declarations are
// idempotent: declaring what already exists with the same arguments is a
// no-op, so every service can declare what it needs at start-up. Declaring it
// with different arguments fails with 406 PRECONDITION_FAILED, which is the
// broker refusing to silently change a queue's behaviour.
func declareTopology(ch *amqp091.Channel, out io.Writer) error {
	if err := ch.ExchangeDeclare(ordersExchange, amqp091.ExchangeFanout, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", ordersExchange, err)
	}
	// The DLX is direct so that the dead-letter routing key (the queue's
	// name) picks exactly one DLQ.
	if err := ch.ExchangeDeclare(dlxExchange, amqp091.ExchangeDirect, true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", dlxExchange, err)
	}
	fmt.Fprintf(out, "exchange %-10s fanout\nexchange %-10s direct\n", ordersExchange, dlxExchange)
	for _, svc := range services {
		dlq := svc + ".dlq"
		if _, err := ch.QueueDeclare(dlq, true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare queue %s: %w", dlq, err)
		}
		if err := ch.QueueBind(dlq, svc, dlxExchange, false, nil); err != nil {
			return fmt.Errorf("bind %s: %w", dlq, err)
		}
		args := amqp091.Table{
			"x-dead-letter-exchange": dlxExchange,
			// Without it the message would keep its original routing key
			// (order.placed), which names no DLQ.
			"x-dead-letter-routing-key": svc,
			"x-delivery-limit":          int32(deliveryLimit),
		}
		if _, err := ch.QueueDeclare(svc, true, false, false, false, args); err != nil {
			return fmt.Errorf("declare queue %s: %w", svc, err)
		}
		if err := ch.QueueBind(svc, "", ordersExchange, false, nil); err != nil {
			return fmt.Errorf("bind %s: %w", svc, err)
		}
		fmt.Fprintf(out, "queue    %-12s <- orders      dead-letters to orders.dlx/%s -> %s (delivery limit %d)\n", svc, svc, dlq, deliveryLimit)
	}
	// A demo starts from a clean slate, in case an interrupted earlier run
	// (with -keep) left messages behind. A real service never purges.
	for _, q := range allQueues() {
		if _, err := ch.QueuePurge(q, false); err != nil {
			return fmt.Errorf("purge %s: %w", q, err)
		}
	}
	return nil
}

// teardown deletes what declareTopology declared.
func teardown(ctx context.Context, url string) error {
	conn, err := amqp091.Dial(url)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	for _, q := range allQueues() {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			return fmt.Errorf("delete queue %s: %w", q, err)
		}
	}
	for _, x := range []string{ordersExchange, dlxExchange} {
		if err := ch.ExchangeDelete(x, false, false); err != nil {
			return fmt.Errorf("delete exchange %s: %w", x, err)
		}
	}
	return ctx.Err()
}

// confirmChannel opens a channel in confirm mode: the broker acks each
// publish once it has taken responsibility for the message.
func confirmChannel(conn *amqp091.Connection) (*amqp091.Channel, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		return nil, fmt.Errorf("confirm.select: %w", err)
	}
	return ch, nil
}

// publishOrders publishes all orders, then waits for every confirm. Sending
// them all before waiting keeps the pipe full instead of paying one round
// trip per message.
func publishOrders(ctx context.Context, ch *amqp091.Channel, out io.Writer) (int, error) {
	pending := make([]*amqp091.DeferredConfirmation, 0, len(orders))
	for _, o := range orders {
		body, err := json.Marshal(o)
		if err != nil {
			return 0, err
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, ordersExchange, "order.placed", false, false, amqp091.Publishing{
			ContentType:  "application/json",
			DeliveryMode: amqp091.Persistent,
			MessageId:    o.ID, // lets consumers deduplicate a redelivered or replayed order
			Type:         "order.placed",
			Timestamp:    time.Now(),
			Body:         body,
		})
		if err != nil {
			return 0, fmt.Errorf("publish %s: %w", o.ID, err)
		}
		pending = append(pending, dc)
	}
	for i, dc := range pending {
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			return i, fmt.Errorf("confirm for %s: %w", orders[i].ID, err)
		}
		if !ok {
			return i, fmt.Errorf("broker nacked %s", orders[i].ID)
		}
		fmt.Fprintf(out, "published %s %s  confirmed\n", orders[i].ID, mustJSON(orders[i]))
	}
	return len(pending), nil
}

// event is one thing a worker did with one delivery.
type event struct {
	service       string
	messageID     string
	deliveryCount int64 // x-delivery-count; 0 on the first delivery
	replayed      bool
	acked         bool
	note          string
}

// startWorker sets a prefetch and starts a consumer with manual acks.
func startWorker(ch *amqp091.Channel, svc string) (<-chan amqp091.Delivery, error) {
	// A prefetch bounds how many unacked messages the broker pushes to this
	// worker; without one a slow worker would buffer the whole queue.
	if err := ch.Qos(10, 0, false); err != nil {
		return nil, err
	}
	return ch.Consume(svc, svc+"-worker", false, false, false, false, nil)
}

// work is a service's consumer loop. Every service acks what it can process;
// the fraud service cannot score a negative amount and nacks it with
// requeue, as a service does when it believes the failure is transient. The
// delivery limit is what stops that from looping forever.
func work(ctx context.Context, svc string, deliveries <-chan amqp091.Delivery, events chan<- event) {
	for d := range deliveries {
		ev := event{
			service:       svc,
			messageID:     d.MessageId,
			deliveryCount: headerInt(d.Headers, "x-delivery-count"),
			replayed:      d.Headers[replayedHeader] == true,
		}
		var o Order
		switch err := json.Unmarshal(d.Body, &o); {
		case err != nil:
			// Unparseable bodies never get better: reject without requeue
			// so they go straight to the DLQ (reason "rejected").
			ev.note = "bad JSON, rejected"
			_ = d.Nack(false, false)
		case svc == "fraud" && o.Amount < 0 && !ev.replayed:
			ev.note = fmt.Sprintf("amount %v cannot be scored, nack requeue", o.Amount)
			_ = d.Nack(false, true)
		default:
			ev.acked = true
			_ = d.Ack(false)
		}
		select {
		case events <- ev:
		case <-ctx.Done():
			return
		}
	}
}

// waitFor prints and tallies worker events until done reports true.
func waitFor(ctx context.Context, events <-chan event, out io.Writer, s *Summary, done func() bool) error {
	for !done() {
		select {
		case ev := <-events:
			count := "first delivery"
			if ev.deliveryCount > 0 {
				count = fmt.Sprintf("x-delivery-count=%d", ev.deliveryCount)
			}
			action := "ack"
			if !ev.acked {
				action = ev.note
			}
			replayed := ""
			if ev.replayed {
				replayed = " (replayed)"
			}
			fmt.Fprintf(out, "%-12s %s%s  %-18s  %s\n", ev.service, ev.messageID, replayed, count, action)
			if ev.acked {
				s.Acked[ev.service]++
			}
			if ev.service == "fraud" && ev.messageID == poisonID {
				if ev.replayed {
					s.ReplayAccepted = s.ReplayAccepted || ev.acked
				} else {
					s.PoisonDeliveries++
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// getWithin polls a queue with basic.get until a message arrives. Polling is
// needed because dead-lettering happens after the final nack, not in the
// same round trip.
func getWithin(ctx context.Context, ch *amqp091.Channel, q string) (amqp091.Delivery, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		d, ok, err := ch.Get(q, false)
		if err != nil {
			return d, fmt.Errorf("basic.get %s: %w", q, err)
		}
		if ok {
			return d, nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return d, fmt.Errorf("no message in %s: %w", q, ctx.Err())
		}
	}
}

// replay takes the message at the head of a DLQ, fixes it and republishes it
// into the queue it died in. The DLQ copy is acked only after the broker has
// confirmed the republished copy: if the program dies in between, the
// message is still in the DLQ (at worst it is replayed twice, which is why
// consumers deduplicate by message id), never lost.
func replay(ctx context.Context, pub, ch *amqp091.Channel, dlq string, out io.Writer) error {
	d, err := getWithin(ctx, ch, dlq)
	if err != nil {
		return err
	}
	deaths := xDeath(d.Headers)
	if len(deaths) == 0 {
		_ = d.Nack(false, true)
		return fmt.Errorf("message %s in %s has no x-death header", d.MessageId, dlq)
	}
	// Where to send it back. x-death[0] names the exchange it was published
	// to (orders) and its routing keys, but orders is a fanout: publishing
	// there again would deliver the order a second time to inventory,
	// notification and analytics, which already processed it. Only the
	// fraud queue failed, so the replay goes to that queue alone, through
	// the default exchange, which routes by queue name.
	target := deaths[0].Queue

	headers := amqp091.Table{}
	for k, v := range d.Headers {
		headers[k] = v
	}
	// The fix: in real life a code or data fix; here a flag the fraud
	// worker honours. x-death stays on the message as its history (were it
	// dead-lettered again, the broker would increment that entry's count).
	headers[replayedHeader] = true
	// A fresh copy gets a fresh delivery count from the broker.
	delete(headers, "x-delivery-count")

	// Mandatory: if the target queue no longer exists the broker returns
	// the message instead of confirming a drop, and the DLQ copy stays.
	returns := pub.NotifyReturn(make(chan amqp091.Return, 1))
	dc, err := pub.PublishWithDeferredConfirmWithContext(ctx, "", target, true, false, amqp091.Publishing{
		Headers:         headers,
		ContentType:     d.ContentType,
		ContentEncoding: d.ContentEncoding,
		DeliveryMode:    amqp091.Persistent,
		MessageId:       d.MessageId,
		Type:            d.Type,
		Timestamp:       d.Timestamp,
		Body:            d.Body,
	})
	if err != nil {
		_ = d.Nack(false, true)
		return fmt.Errorf("republish %s: %w", d.MessageId, err)
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil || !ok {
		_ = d.Nack(false, true)
		return fmt.Errorf("republish %s not confirmed (ok=%v): %w", d.MessageId, ok, err)
	}
	// A return, if any, arrives before the confirm.
	select {
	case r := <-returns:
		_ = d.Nack(false, true)
		return fmt.Errorf("republish %s returned: %d %s", d.MessageId, r.ReplyCode, r.ReplyText)
	default:
	}
	fmt.Fprintf(out, "republished %s to default exchange, routing key %q (the queue it died in), %s=true  confirmed\n", d.MessageId, target, replayedHeader)
	if err := d.Ack(false); err != nil {
		return fmt.Errorf("ack DLQ copy of %s: %w", d.MessageId, err)
	}
	fmt.Fprintf(out, "acked the %s copy (only now: the replay is safely in %s)\n", dlq, target)
	return nil
}

// xDeath decodes the x-death header: an array of tables.
func xDeath(h amqp091.Table) []Death {
	list, _ := h["x-death"].([]interface{})
	var deaths []Death
	for _, item := range list {
		t, ok := item.(amqp091.Table)
		if !ok {
			continue
		}
		d := Death{Count: headerInt(t, "count")}
		d.Reason, _ = t["reason"].(string)
		d.Queue, _ = t["queue"].(string)
		d.Exchange, _ = t["exchange"].(string)
		d.Time, _ = t["time"].(time.Time)
		keys, _ := t["routing-keys"].([]interface{})
		for _, k := range keys {
			if s, ok := k.(string); ok {
				d.RoutingKeys = append(d.RoutingKeys, s)
			}
		}
		deaths = append(deaths, d)
	}
	return deaths
}

// headerInt reads an integer header whatever width the broker encoded it in.
func headerInt(t amqp091.Table, key string) int64 {
	switch v := t[key].(type) {
	case int64:
		return v
	case int32:
		return int64(v)
	case int16:
		return int64(v)
	case int8:
		return int64(v)
	case uint8:
		return int64(v)
	case uint16:
		return int64(v)
	case uint32:
		return int64(v)
	}
	return 0
}

func printDeadLetter(out io.Writer, d amqp091.Delivery, deaths []Death) {
	fmt.Fprintf(out, "message-id    %s\n", d.MessageId)
	fmt.Fprintf(out, "content-type  %s\n", d.ContentType)
	fmt.Fprintf(out, "body          %s\n", d.Body)
	fmt.Fprintf(out, "routed via    exchange %q, routing key %q\n", d.Exchange, d.RoutingKey)
	for _, k := range []string{"x-first-death-reason", "x-first-death-queue", "x-first-death-exchange"} {
		fmt.Fprintf(out, "%-22s %v\n", k, d.Headers[k])
	}
	fmt.Fprintln(out, "x-death (most recent first):")
	for i, x := range deaths {
		fmt.Fprintf(out, "  [%d] reason=%s queue=%s count=%d\n", i, x.Reason, x.Queue, x.Count)
		fmt.Fprintf(out, "      time=%s exchange=%q routing-keys=%q\n", x.Time.Format(time.RFC3339), x.Exchange, x.RoutingKeys)
	}
	// Anything else the broker or publisher added, for completeness.
	var other []string
	for k := range d.Headers {
		if k != "x-death" && !strings.HasPrefix(k, "x-first-death-") {
			other = append(other, k)
		}
	}
	sort.Strings(other)
	for _, k := range other {
		fmt.Fprintf(out, "header %s = %v\n", k, d.Headers[k])
	}
}

func printSummary(out io.Writer, s Summary) {
	fmt.Fprintln(out, "\n== summary")
	fmt.Fprintf(out, "published and confirmed: %d orders\n", s.Published)
	for _, svc := range services {
		fmt.Fprintf(out, "%-12s acked %d\n", svc, s.Acked[svc])
	}
	fmt.Fprintf(out, "poison %s: delivered %d times to fraud, dead-lettered (reason %s, count %d), replayed=%v, accepted=%v\n",
		poisonID, s.PoisonDeliveries, s.DeadLetter.Reason, s.DeadLetter.Count, s.Replayed, s.ReplayAccepted)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
