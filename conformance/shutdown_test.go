package conformance

import (
	"context"
	"net"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp"
)

// TestShutdownClosesConnections: on shutdown every client hears
// connection.close 320 CONNECTION_FORCED, as from `rabbitmqctl stop`, and
// the listener stops accepting.
func TestShutdownClosesConnections(t *testing.T) {
	cfg := amqp.DefaultConfig()
	cfg.DataDir = t.TempDir()
	srv, err := amqp.NewServer(cfg, nil)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	url := "amqp://guest:guest@" + l.Addr().String() + "/"

	var closes []chan *amqp091.Error
	for range 3 {
		conn, err := amqp091.Dial(url)
		require.NoError(t, err)
		defer conn.Close()
		ch, err := conn.Channel()
		require.NoError(t, err)
		_, err = ch.QueueDeclare("", false, true, true, false, nil)
		require.NoError(t, err)
		closes = append(closes, conn.NotifyClose(make(chan *amqp091.Error, 1)))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))

	for _, c := range closes {
		select {
		case e := <-c:
			require.NotNil(t, e)
			require.Equal(t, amqp091.ConnectionForced, e.Code)
			require.Equal(t, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'", e.Reason)
		case <-time.After(timeout):
			t.Fatal("no connection.close after shutdown")
		}
	}
	select {
	case err := <-served:
		require.ErrorIs(t, err, amqp.ErrServerClosed)
	case <-time.After(timeout):
		t.Fatal("Serve did not return after Shutdown")
	}
	_, err = amqp091.Dial(url)
	require.Error(t, err, "no new connections after shutdown")
}
