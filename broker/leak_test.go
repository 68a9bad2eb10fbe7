package broker_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/warrenmq/warren/amqp"
)

// TestShutdownLeavesNoGoroutine: a broker that served a queue with a
// consumer, a backlog paged out to disk and a deleted queue whose stored
// entries are being dropped leaves no goroutine behind once shut down:
// every background goroutine belongs to the broker's group, which Shutdown
// waits for before it closes the store.
func TestShutdownLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	cfg := amqp.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.QueueMemoryBudget = 64 << 10 // page out almost at once
	srv, err := amqp.NewServer(cfg, nil)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	conn, err := amqp091.Dial("amqp://guest:guest@" + l.Addr().String() + "/")
	require.NoError(t, err)
	ch, err := conn.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 1))
	body := make([]byte, 1024)
	publish := func(q string, n int) {
		for i := range n {
			require.NoError(t, ch.Publish("", q, false, false, amqp091.Publishing{DeliveryMode: 2, Body: append(body[:0:0], fmt.Sprint(i)...)}))
			require.True(t, (<-confirms).Ack)
		}
	}
	for _, q := range []string{"backlog", "doomed", "consumed"} {
		_, err := ch.QueueDeclare(q, true, false, false, false, nil)
		require.NoError(t, err)
	}
	publish("backlog", 500) // far beyond the budget: most of it is on disk
	publish("doomed", 200)
	_, err = ch.QueueDelete("doomed", false, false, false)
	require.NoError(t, err)
	cch, err := conn.Channel()
	require.NoError(t, err)
	ds, err := cch.Consume("backlog", "", false, false, false, false, nil)
	require.NoError(t, err)
	for range 300 { // reads the paged backlog back in
		select {
		case d := <-ds:
			require.NoError(t, d.Ack(false))
		case <-time.After(10 * time.Second):
			t.Fatal("no delivery")
		}
	}
	_, err = ch.Consume("consumed", "c", false, false, false, false, nil)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	require.ErrorIs(t, <-served, amqp.ErrServerClosed)
	_ = conn.Close()
}
