package amqp

import (
	"context"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/amqp/wire"
)

// FuzzConnection drives a real connection of a real Server with an arbitrary
// byte stream after a valid opening handshake: the input is a sequence of
// frames as a client would send them, mutated by the fuzzer. Whatever it is,
// the server must not panic, must end the connection once the client hangs
// up, and must leave no goroutine behind.
//
// Run it with: go test ./amqp -run '^$' -fuzz FuzzConnection -fuzztime 3m
func FuzzConnection(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		fuzzOne(t, input)
	})
}

// fuzzHandshake is the client's side of a successful handshake as guest on
// "/": header, start-ok, tune-ok (no heartbeats, small frames) and open.
func fuzzHandshake() []byte {
	b := append([]byte{}, wire.ProtocolHeader...)
	b = wire.AppendMethodFrame(b, 0, &wire.ConnectionStartOk{
		ClientProperties: wire.Table{"capabilities": wire.Table{"consumer_cancel_notify": true, "authentication_failure_close": true}},
		Mechanism:        "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US",
	})
	b = wire.AppendMethodFrame(b, 0, &wire.ConnectionTuneOk{ChannelMax: 16, FrameMax: 4096})
	return wire.AppendMethodFrame(b, 0, &wire.ConnectionOpen{VirtualHost: "/"})
}

// publishFrames is basic.publish with its content, split into frames of 4096.
func publishFrames(b []byte, ch uint16, exchange, key string, mandatory bool, props wire.Properties, body string) []byte {
	b = wire.AppendMethodFrame(b, ch, &wire.BasicPublish{Exchange: exchange, RoutingKey: key, Mandatory: mandatory})
	b = wire.AppendHeaderFrame(b, ch, wire.ClassBasic, uint64(len(body)), props.Append(nil))
	return wire.AppendBodyFrames(b, ch, []byte(body), 4096)
}

// fuzzSeeds is real client traffic after the handshake.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	closeConn := func(b []byte) []byte {
		return wire.AppendMethodFrame(b, 0, &wire.ConnectionClose{ReplyCode: 200, ReplyText: "bye"})
	}

	// Declare, publish, consume, ack, close.
	b := wire.AppendMethodFrame(nil, 1, &wire.ChannelOpen{})
	b = wire.AppendMethodFrame(b, 1, &wire.QueueDeclare{Queue: "q"})
	b = publishFrames(b, 1, "", "q", false, wire.Properties{ContentType: "text/plain", DeliveryMode: 1}, "hello")
	b = publishFrames(b, 1, "", "q", false, wire.Properties{}, strings.Repeat("x", 9000))
	b = wire.AppendMethodFrame(b, 1, &wire.BasicQos{PrefetchCount: 1})
	b = wire.AppendMethodFrame(b, 1, &wire.BasicConsume{Queue: "q", ConsumerTag: "c1"})
	b = wire.AppendMethodFrame(b, 1, &wire.BasicAck{DeliveryTag: 1})
	b = wire.AppendMethodFrame(b, 1, &wire.BasicAck{DeliveryTag: 2, Multiple: true})
	b = wire.AppendMethodFrame(b, 1, &wire.BasicCancel{ConsumerTag: "c1"})
	b = wire.AppendMethodFrame(b, 1, &wire.ChannelClose{ReplyCode: 200})
	seeds = append(seeds, closeConn(b))

	// Confirms, get, nack, reject, recover on two channels.
	b = wire.AppendMethodFrame(nil, 1, &wire.ChannelOpen{})
	b = wire.AppendMethodFrame(b, 2, &wire.ChannelOpen{})
	b = wire.AppendMethodFrame(b, 1, &wire.ConfirmSelect{})
	b = wire.AppendMethodFrame(b, 1, &wire.QueueDeclare{Queue: "", Exclusive: true, AutoDelete: true})
	b = wire.AppendMethodFrame(b, 2, &wire.QueueDeclare{Queue: "d", Durable: true, Arguments: wire.Table{"x-max-length": int32(2), "x-overflow": "reject-publish"}})
	for i := range 3 {
		b = publishFrames(b, 1, "", "d", true, wire.Properties{DeliveryMode: 2, MessageID: string(rune('a' + i))}, "m")
	}
	b = wire.AppendMethodFrame(b, 2, &wire.BasicGet{Queue: "d"})
	b = wire.AppendMethodFrame(b, 2, &wire.BasicNack{DeliveryTag: 1, Requeue: true})
	b = wire.AppendMethodFrame(b, 2, &wire.BasicGet{Queue: "d"})
	b = wire.AppendMethodFrame(b, 2, &wire.BasicReject{DeliveryTag: 2})
	b = wire.AppendMethodFrame(b, 2, &wire.BasicConsume{Queue: "d", ConsumerTag: "c2", NoAck: false})
	b = wire.AppendMethodFrame(b, 2, &wire.BasicRecover{Requeue: true})
	b = wire.AppendMethodFrame(b, 2, &wire.QueuePurge{Queue: "d"})
	b = wire.AppendMethodFrame(b, 2, &wire.QueueDelete{Queue: "d"})
	seeds = append(seeds, closeConn(b))

	// Transactions, exchanges, bindings, dead-lettering, expiry.
	b = wire.AppendMethodFrame(nil, 3, &wire.ChannelOpen{})
	b = wire.AppendMethodFrame(b, 3, &wire.ExchangeDeclare{Exchange: "t", Type: "topic"})
	b = wire.AppendMethodFrame(b, 3, &wire.ExchangeDeclare{Exchange: "dlx", Type: "fanout"})
	b = wire.AppendMethodFrame(b, 3, &wire.QueueDeclare{Queue: "dl"})
	b = wire.AppendMethodFrame(b, 3, &wire.QueueBind{Queue: "dl", Exchange: "dlx"})
	b = wire.AppendMethodFrame(b, 3, &wire.QueueDeclare{Queue: "w", Arguments: wire.Table{
		"x-dead-letter-exchange": "dlx", "x-message-ttl": int32(1), "x-max-priority": uint8(5),
	}})
	b = wire.AppendMethodFrame(b, 3, &wire.QueueBind{Queue: "w", Exchange: "t", RoutingKey: "a.#"})
	b = wire.AppendMethodFrame(b, 3, &wire.TxSelect{})
	b = publishFrames(b, 3, "t", "a.b.c", false, wire.Properties{Priority: 3, Headers: wire.Table{"h": int64(1)}}, "tx")
	b = wire.AppendMethodFrame(b, 3, &wire.TxCommit{})
	b = publishFrames(b, 3, "t", "z", true, wire.Properties{Expiration: "0"}, "unroutable")
	b = wire.AppendMethodFrame(b, 3, &wire.TxRollback{})
	b = wire.AppendMethodFrame(b, 3, &wire.BasicConsume{Queue: "dl", NoAck: true})
	b = wire.AppendHeartbeat(b)
	seeds = append(seeds, closeConn(b))

	// Protocol errors: content without a publish, a frame for an unopened
	// channel, a publish cut off mid-body.
	b = wire.AppendMethodFrame(nil, 1, &wire.ChannelOpen{})
	b = wire.AppendHeaderFrame(b, 1, wire.ClassBasic, 3, nil)
	seeds = append(seeds, b)
	b = wire.AppendMethodFrame(nil, 9, &wire.QueueDeclare{Queue: "q"})
	seeds = append(seeds, b)
	b = wire.AppendMethodFrame(nil, 1, &wire.ChannelOpen{})
	b = publishFrames(b, 1, "", "q", false, wire.Properties{}, strings.Repeat("y", 5000))
	seeds = append(seeds, b[:len(b)-100])
	return seeds
}

// pipeListener hands out one net.Pipe end, then blocks until closed.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

func fuzzOne(t *testing.T, input []byte) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.JournalSegmentSize = 256 << 10
	cfg.Heartbeat = 0
	cfg.FrameMax = 4096
	cfg.ChannelMax = 16
	cfg.MaxMessageSize = 1 << 20
	cfg.HandshakeTimeout = time.Second
	srv, err := NewServer(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-served
	}()
	waitIdle(t, srv, 0)
	before := runtime.NumGoroutine()

	client, server := net.Pipe()
	l.conns <- server
	readDone := make(chan struct{})
	go func() {
		// The server's output must be read, or its writer blocks the pipe.
		defer close(readDone)
		_, _ = io.Copy(io.Discard, client)
	}()
	_ = client.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = client.Write(append(fuzzHandshake(), input...))
	// The server has read everything it was going to read; hang up.
	client.Close()
	<-readDone

	deadline := time.Now().Add(5 * time.Second)
	for srv.connCount() > 0 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("connection did not end after the client hung up\n%s", buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
	waitIdle(t, srv, before)
}

// waitIdle waits up to a second for the goroutine count to fall to at most
// want (plus a small tolerance for runtime helpers); with want 0 it only
// lets goroutines started by NewServer and Serve settle.
func waitIdle(t *testing.T, _ *Server, want int) {
	t.Helper()
	const tolerance = 2
	deadline := time.Now().Add(time.Second)
	for {
		n := runtime.NumGoroutine()
		if want == 0 {
			time.Sleep(time.Millisecond)
			return
		}
		if n <= want+tolerance {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d before, %d after the connection ended\n%s", want, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}
