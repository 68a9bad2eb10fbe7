package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp/amqptest"
)

// startWarren starts an in-process Warren for the test.
func startWarren(t *testing.T) string { return amqptest.NewServer(t).URL }

func TestOrderProcessing(t *testing.T) {
	url := startWarren(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var out bytes.Buffer
	s, err := run(ctx, url, &out)
	t.Log("\n" + out.String())
	require.NoError(t, err)

	require.Equal(t, len(orders), s.Published)
	for _, svc := range services {
		// Every service acked every order: fraud's fourth is the replay.
		require.Equal(t, len(orders), s.Acked[svc], svc)
	}
	require.Equal(t, 1+deliveryLimit, s.PoisonDeliveries)

	d := s.DeadLetter
	require.Equal(t, "delivery_limit", d.Reason)
	require.Equal(t, "fraud", d.Queue)
	require.Equal(t, int64(1), d.Count)
	require.Equal(t, ordersExchange, d.Exchange)
	require.Equal(t, []string{"order.placed"}, d.RoutingKeys)
	require.WithinDuration(t, time.Now(), d.Time, time.Minute)

	require.True(t, s.Replayed)
	require.True(t, s.ReplayAccepted)
	require.Contains(t, out.String(), "x-delivery-count=3")

	// Everything was consumed: nothing left in any queue or DLQ.
	conn, err := amqp091.Dial(url)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	for _, q := range allQueues() {
		info, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
		require.NoError(t, err, q)
		require.Zero(t, info.Messages, q)
	}

	// A second run against the same broker finds the topology declared and
	// works the same: the declarations are idempotent.
	out.Reset()
	s, err = run(ctx, url, &out)
	require.NoError(t, err, out.String())
	require.True(t, s.ReplayAccepted)

	require.NoError(t, teardown(ctx, url))
	_, err = ch.QueueDeclarePassive("fraud", true, false, false, false, nil)
	require.Error(t, err, "teardown deletes the queues")
}
