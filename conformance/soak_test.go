package conformance

// A bounded soak: well-behaved producers (with confirms) and consumers (with
// manual acks) run while other clients misbehave, then every confirmed
// message must have been delivered, no well-behaved client may have seen an
// error, and the broker's goroutines must return to about where they were.
// It runs about 15 s; -short skips it.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

const soakDuration = 8 * time.Second

// soakStats counts what happened, for the log and the checks.
type soakStats struct {
	published, confirmed, delivered, redelivered   atomic.Int64
	garbage, midFrame, chanChurn, connChurn, noAck atomic.Int64
	mu                                             sync.Mutex
	confirmedIDs                                   map[string]bool
	seen                                           map[string]bool
	errs                                           []error
}

func (s *soakStats) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, fmt.Errorf(format, args...))
}

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: runs about 15 s")
	}
	b := startBroker(t)
	b.skipIfExternal(t)

	settle := func() int {
		runtime.GC()
		time.Sleep(50 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	baseline := settle()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)

	setup := b.dial(t)
	sch, err := setup.Channel()
	require.NoError(t, err)
	const queue = "soak"
	_, err = sch.QueueDeclare(queue, false, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, setup.Close())

	st := &soakStats{confirmedIDs: map[string]bool{}, seen: map[string]bool{}}
	ctx, stop := context.WithTimeout(context.Background(), soakDuration)
	defer stop()
	var good, bad sync.WaitGroup

	// Well-behaved consumers: manual acks, prefetch 50.
	consumers := make([]*amqp091.Connection, 2)
	for i := range consumers {
		conn, err := amqp091.DialConfig(b.URL, amqp091.Config{Dial: amqp091.DefaultDial(timeout)})
		require.NoError(t, err)
		consumers[i] = conn
		ch, err := conn.Channel()
		require.NoError(t, err)
		require.NoError(t, ch.Qos(50, 0, false))
		d, err := ch.Consume(queue, fmt.Sprintf("good-%d", i), false, false, false, false, nil)
		require.NoError(t, err)
		closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
		good.Add(1)
		go func() {
			defer good.Done()
			for m := range d {
				st.delivered.Add(1)
				if m.Redelivered {
					st.redelivered.Add(1)
				}
				st.mu.Lock()
				st.seen[m.MessageId] = true
				st.mu.Unlock()
				if err := m.Ack(false); err != nil {
					st.fail("consumer ack: %v", err)
				}
			}
			if e := <-closed; e != nil {
				st.fail("consumer connection closed: %v", e)
			}
		}()
	}

	// Well-behaved producers: confirms, up to 64 unconfirmed.
	for p := range 2 {
		good.Add(1)
		go func() {
			defer good.Done()
			conn, err := amqp091.DialConfig(b.URL, amqp091.Config{Dial: amqp091.DefaultDial(timeout)})
			if err != nil {
				st.fail("producer dial: %v", err)
				return
			}
			defer conn.Close()
			ch, err := conn.Channel()
			if err == nil {
				err = ch.Confirm(false)
			}
			if err != nil {
				st.fail("producer setup: %v", err)
				return
			}
			var window []*amqp091.DeferredConfirmation
			var ids []string
			flush := func() {
				for i, c := range window {
					wctx, cancel := context.WithTimeout(context.Background(), timeout)
					ok, err := c.WaitContext(wctx)
					cancel()
					if err != nil || !ok {
						st.fail("producer confirm %s: ok=%v err=%v", ids[i], ok, err)
						continue
					}
					st.confirmed.Add(1)
					st.mu.Lock()
					st.confirmedIDs[ids[i]] = true
					st.mu.Unlock()
				}
				window, ids = window[:0], ids[:0]
			}
			for n := 0; ctx.Err() == nil; n++ {
				id := fmt.Sprintf("p%d-%d", p, n)
				c, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), "", queue, false, false,
					amqp091.Publishing{MessageId: id, Body: []byte("soak " + id)})
				if err != nil {
					st.fail("publish %s: %v", id, err)
					return
				}
				st.published.Add(1)
				window, ids = append(window, c), append(ids, id)
				if len(window) == 64 {
					flush()
				}
			}
			flush()
		}()
	}

	// Misbehaving clients, each kind in a loop until the time is up.
	misbehave := func(counter *atomic.Int64, f func(r *rand.Rand)) {
		bad.Add(1)
		go func() {
			defer bad.Done()
			r := rand.New(rand.NewPCG(rand.Uint64(), 1))
			for ctx.Err() == nil {
				f(r)
				counter.Add(1)
			}
		}()
	}
	// Garbage after the handshake: random bytes, or well-framed methods
	// with random payloads.
	misbehave(&st.garbage, func(r *rand.Rand) {
		nc := rawSoakConn(b)
		if nc == nil {
			return
		}
		defer nc.Close()
		junk := make([]byte, 1+r.IntN(2000))
		for i := range junk {
			junk[i] = byte(r.Uint32())
		}
		out := methodFrame(1, 20, 10, shortStr("")).bytes()
		if r.IntN(2) == 0 {
			out = append(out, rawFrame{Type: frameMethod, Channel: uint16(r.IntN(3)), Payload: junk}.bytes()...)
		} else {
			out = append(out, junk...)
		}
		_, _ = nc.Write(out)
		readUntilClosed(nc, 200*time.Millisecond)
	})
	// Abrupt disconnect in the middle of a publish's body frame.
	misbehave(&st.midFrame, func(r *rand.Rand) {
		nc := rawSoakConn(b)
		if nc == nil {
			return
		}
		out := methodFrame(1, 20, 10, shortStr("")).bytes()
		out = append(out, methodFrame(1, 60, 40, short(0), shortStr(""), shortStr(queue), octet(0)).bytes()...)
		body := make([]byte, 3000)
		hdr := append(short(60), short(0)...) // class basic, weight
		hdr = append(hdr, long(0)...)
		hdr = append(hdr, long(uint32(len(body)))...)
		hdr = append(hdr, short(0)...)
		out = append(out, rawFrame{Type: frameHeader, Channel: 1, Payload: hdr}.bytes()...)
		out = append(out, rawFrame{Type: frameBody, Channel: 1, Payload: body}.bytes()...)
		_, _ = nc.Write(out[:len(out)-1-r.IntN(len(body))])
		time.Sleep(time.Duration(r.IntN(20)) * time.Millisecond)
		nc.Close()
	})
	// Channel churn on one connection.
	misbehave(&st.chanChurn, func(r *rand.Rand) {
		conn, err := amqp091.DialConfig(b.URL, amqp091.Config{Dial: amqp091.DefaultDial(timeout)})
		if err != nil {
			return
		}
		defer conn.Close()
		for range 20 {
			ch, err := conn.Channel()
			if err != nil {
				return
			}
			if r.IntN(2) == 0 {
				_, _ = ch.QueueDeclare("", false, true, true, false, nil)
			}
			_ = ch.Close()
		}
	})
	// Connection churn: connect, maybe open a channel, close (or drop).
	misbehave(&st.connChurn, func(r *rand.Rand) {
		conn, raw, err := dialKeepingRaw(b.URL)
		if err != nil {
			return
		}
		if r.IntN(2) == 0 {
			_, _ = conn.Channel()
		}
		if r.IntN(2) == 0 {
			raw.Close()
		}
		_ = conn.Close()
	})
	// Consumers that take deliveries, never ack, then vanish.
	misbehave(&st.noAck, func(r *rand.Rand) {
		conn, raw, err := dialKeepingRaw(b.URL)
		if err != nil {
			return
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			return
		}
		_ = ch.Qos(10, 0, false)
		d, err := ch.Consume(queue, "", false, false, false, false, nil)
		if err != nil {
			return
		}
		deadline := time.After(time.Duration(50+r.IntN(200)) * time.Millisecond)
		for {
			select {
			case <-d:
				continue
			case <-deadline:
			}
			break
		}
		raw.Close() // abruptly: the unacked deliveries go back to the queue
	})

	bad.Wait()
	<-ctx.Done()
	// Producers finish their last confirms; then every confirmed message
	// must reach the well-behaved consumers.
	require.Eventually(t, func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		if len(st.errs) > 0 {
			return true
		}
		for id := range st.confirmedIDs {
			if !st.seen[id] {
				return false
			}
		}
		return st.confirmed.Load() > 0 && int64(len(st.confirmedIDs)) == st.confirmed.Load()
	}, 2*timeout, 20*time.Millisecond, "confirmed messages missing")
	for _, c := range consumers {
		require.NoError(t, c.Close())
	}
	good.Wait()

	st.mu.Lock()
	require.Empty(t, st.errs, "well-behaved clients saw errors")
	missing := 0
	for id := range st.confirmedIDs {
		if !st.seen[id] {
			missing++
		}
	}
	st.confirmedIDs, st.seen = nil, nil // not to count the test's own maps as the broker's heap
	st.mu.Unlock()
	require.Zero(t, missing, "confirmed but never delivered")

	// Goroutines and heap return to about where they were.
	var after int
	require.Eventually(t, func() bool {
		after = settle()
		return after <= baseline+5
	}, 3*time.Second, 50*time.Millisecond, "goroutines: baseline %d", baseline)
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	t.Logf("published %d, confirmed %d, delivered %d (%d redelivered); misbehaving: %d garbage, %d mid-frame, %d channel-churn, %d conn-churn, %d no-ack; goroutines %d -> %d; heap %d KiB -> %d KiB",
		st.published.Load(), st.confirmed.Load(), st.delivered.Load(), st.redelivered.Load(),
		st.garbage.Load(), st.midFrame.Load(), st.chanChurn.Load(), st.connChurn.Load(), st.noAck.Load(),
		baseline, after, m0.HeapAlloc>>10, m1.HeapAlloc>>10)
	require.Less(t, m1.HeapAlloc, m0.HeapAlloc+64<<20, "heap did not return near baseline")
}

// rawSoakConn opens a TCP connection and sends a complete handshake as guest
// on "/" without waiting for the answers, which a goroutine discards. It
// returns nil if the broker could not be reached.
func rawSoakConn(b *testBroker) net.Conn {
	nc, err := net.DialTimeout("tcp", b.Addr, timeout)
	if err != nil {
		return nil
	}
	_ = nc.SetDeadline(time.Now().Add(3 * time.Second))
	out := []byte(protocolHeader)
	out = append(out, methodFrame(0, 10, 11, clientProperties(), shortStr("PLAIN"), longStr("\x00guest\x00guest"), shortStr("en_US")).bytes()...)
	out = append(out, methodFrame(0, 10, 31, short(2047), long(131072), short(0)).bytes()...)
	out = append(out, methodFrame(0, 10, 40, shortStr("/"), shortStr(""), octet(0)).bytes()...)
	if _, err := nc.Write(out); err != nil {
		nc.Close()
		return nil
	}
	return nc
}

// dialKeepingRaw opens a client connection and also returns the TCP
// connection beneath it, so that a client can vanish without a close.
func dialKeepingRaw(url string) (*amqp091.Connection, net.Conn, error) {
	var raw net.Conn
	conn, err := amqp091.DialConfig(url, amqp091.Config{Dial: func(network, addr string) (net.Conn, error) {
		c, err := net.DialTimeout(network, addr, timeout)
		raw = c
		return c, err
	}})
	return conn, raw, err
}

// readUntilClosed discards input until the server closes or d passes.
func readUntilClosed(nc net.Conn, d time.Duration) {
	_ = nc.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		if _, err := nc.Read(buf); err != nil {
			return
		}
	}
}
