package stream

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/queue"
)

func TestParseDeclare(t *testing.T) {
	const what = "queue 's' in vhost '/'"
	for _, tc := range []struct {
		name                 string
		durable, excl, autoD bool
		qname                string
		args                 map[string]any
		code                 int
		text                 string
		want                 Config
	}{
		{name: "plain", durable: true},
		{name: "non-durable", code: 406, text: "invalid property 'non-durable' for " + what},
		{name: "auto-delete", durable: true, autoD: true, code: 406, text: "invalid property 'auto-delete' for " + what},
		{name: "exclusive", durable: true, excl: true, code: 406, text: "invalid property 'exclusive-owner' for " + what},
		{name: "server-named", durable: true, qname: "-", code: 406, text: "Cannot declare a server-named queue for type rabbit_stream_queue"},
		{name: "limits", durable: true, args: map[string]any{"x-max-length-bytes": int64(1000), "x-max-age": "7D", "x-stream-max-segment-size-bytes": int32(5000), "x-initial-cluster-size": int64(3)},
			want: Config{MaxBytes: 1000, MaxAge: 7 * 24 * time.Hour, MaxSegmentBytes: 5000, InitialClusterSize: 3}},
		{name: "age 12h", durable: true, args: map[string]any{"x-max-age": "12h"}, want: Config{MaxAge: 12 * time.Hour}},
		{name: "age 1Y", durable: true, args: map[string]any{"x-max-age": "1Y"}, want: Config{MaxAge: 365 * 24 * time.Hour}},
		{name: "bad age", durable: true, args: map[string]any{"x-max-age": "bad"}, code: 541, text: "INTERNAL_ERROR"},
		{name: "zero age", durable: true, args: map[string]any{"x-max-age": "0s"}, code: 406, text: "invalid arg 'x-max-age' for " + what + ": invalid_max_age"},
		{name: "integer age", durable: true, args: map[string]any{"x-max-age": int64(5)}, code: 406, text: "invalid arg 'x-max-age' for " + what + ": {unacceptable_type,long}"},
		{name: "negative bytes", durable: true, args: map[string]any{"x-max-length-bytes": int64(-1)}, code: 406, text: "invalid arg 'x-max-length-bytes' for " + what + ": {value_negative,-1}"},
		{name: "string bytes", durable: true, args: map[string]any{"x-max-length-bytes": "abc"}, code: 406, text: "invalid arg 'x-max-length-bytes' for " + what + ": \"expected integer, got longstr\""},
		{name: "negative segment", durable: true, args: map[string]any{"x-stream-max-segment-size-bytes": int64(-1)}, code: 406, text: "invalid arg 'x-stream-max-segment-size-bytes' for " + what + ": {value_negative,-1}"},
		{name: "zero cluster size", durable: true, args: map[string]any{"x-initial-cluster-size": int64(0)}, code: 406, text: "invalid arg 'x-initial-cluster-size' for " + what + ": {value_zero,0}"},
		{name: "ttl", durable: true, args: map[string]any{"x-message-ttl": int64(10)}, code: 406, text: "invalid arg 'x-message-ttl' for " + what + " of queue type rabbit_stream_queue"},
		{name: "max-length", durable: true, args: map[string]any{"x-max-length": int64(10)}, code: 406, text: "invalid arg 'x-max-length' for " + what + " of queue type rabbit_stream_queue"},
		{name: "dlx", durable: true, args: map[string]any{"x-dead-letter-exchange": "d"}, code: 406, text: "invalid arg 'x-dead-letter-exchange' for " + what + " of queue type rabbit_stream_queue"},
		{name: "priority", durable: true, args: map[string]any{"x-max-priority": int64(3)}, code: 406, text: "invalid arg 'x-max-priority' for " + what + " of queue type rabbit_stream_queue"},
		{name: "sac", durable: true, args: map[string]any{"x-single-active-consumer": true}, code: 406, text: "invalid arg 'x-single-active-consumer' for " + what + " of queue type rabbit_stream_queue"},
		{name: "non-durable exclusive", excl: true, code: 406, text: "invalid property 'exclusive-owner' for " + what},
		{name: "non-durable auto-delete", autoD: true, code: 406, text: "invalid property 'auto-delete' for " + what},
		{name: "exclusive auto-delete", durable: true, excl: true, autoD: true, code: 406, text: "invalid property 'auto-delete' for " + what},
		{name: "refused arg before property", args: map[string]any{"x-message-ttl": int64(5)}, code: 406, text: "invalid arg 'x-message-ttl' for " + what + " of queue type rabbit_stream_queue"},
		{name: "value before refused arg", durable: true, args: map[string]any{"x-message-ttl": int64(5), "x-max-length-bytes": int64(-1)}, code: 406, text: "invalid arg 'x-max-length-bytes' for " + what + ": {value_negative,-1}"},
		{name: "value before property", args: map[string]any{"x-max-age": "0s"}, code: 406, text: "invalid arg 'x-max-age' for " + what + ": invalid_max_age"},
		{name: "unknown x- arg", durable: true, args: map[string]any{"x-foo": "bar", "x-queue-leader-locator": "balanced"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "s"
			if tc.qname == "-" {
				name = ""
			}
			c, err := ParseDeclare("/", name, tc.durable, tc.excl, tc.autoD, tc.args)
			if tc.code == 0 {
				require.NoError(t, err)
				require.Equal(t, tc.want, c)
				return
			}
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tc.code, e.Code)
			require.Equal(t, tc.text, e.Text)
		})
	}
}

func TestParseOffset(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	for _, tc := range []struct {
		v       any
		present bool
		want    OffsetSpec
		bad     bool
	}{
		{nil, false, OffsetSpec{Kind: Next}, false},
		{"first", true, OffsetSpec{Kind: First}, false},
		{"last", true, OffsetSpec{Kind: Last}, false},
		{"next", true, OffsetSpec{Kind: Next}, false},
		{int64(3), true, OffsetSpec{Kind: Numeric, Offset: 3}, false},
		{int32(3), true, OffsetSpec{Kind: Numeric, Offset: 3}, false},
		{int64(-1), true, OffsetSpec{Kind: First}, false},
		{now, true, OffsetSpec{Kind: Timestamp, At: now}, false},
		{"1h", true, OffsetSpec{Kind: Timestamp, At: now.Add(-time.Hour)}, false},
		{"bogus", true, OffsetSpec{}, true},
		{true, true, OffsetSpec{}, true},
	} {
		t.Run(fmt.Sprint(tc.v), func(t *testing.T) {
			got, err := ParseOffset(tc.v, tc.present, now)
			if tc.bad {
				var e *Error
				require.ErrorAs(t, err, &e)
				require.Equal(t, 541, e.Code)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// consumer records deliveries; full makes it refuse them.
type consumer struct {
	mu        sync.Mutex
	got       []Delivery
	full      bool
	cancelled bool
}

func (c *consumer) Deliver(d Delivery) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.full {
		return false
	}
	c.got = append(c.got, d)
	return true
}

func (c *consumer) Cancel() {
	c.mu.Lock()
	c.cancelled = true
	c.mu.Unlock()
}

func (c *consumer) bodies() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, d := range c.got {
		out = append(out, string(d.Message.Body))
	}
	return out
}

func (c *consumer) waitFor(t *testing.T, n int) []string {
	t.Helper()
	if !assertEventually(func() bool { return len(c.bodies()) >= n }) {
		t.Fatalf("want %d deliveries, have %v", n, c.bodies())
	}
	return c.bodies()
}

func props(t *testing.T, h wire.Table) []byte {
	p := wire.Properties{Headers: h, ContentType: "text/plain"}
	return p.Append(nil)
}

// publish appends messages as one chunk each (waiting for each confirm) or
// all at once.
func publish(t *testing.T, s *Stream, oneChunkEach bool, filter string, bodies ...string) {
	t.Helper()
	var wg sync.WaitGroup
	for _, b := range bodies {
		wg.Add(1)
		m := &queue.Message{Exchange: "", RoutingKey: s.Name, Properties: props(t, wire.Table{"h": int32(1)}), Body: []byte(b)}
		require.NoError(t, s.Publish(m, filter, func(err error) { require.NoError(t, err); wg.Done() }))
		if oneChunkEach {
			wg.Wait()
		}
	}
	wg.Wait()
}

func open(t *testing.T, dir string) *Stream {
	s, err := Open(dir, "/", "s", Config{})
	require.NoError(t, err)
	return s
}

func TestConsumeOffsets(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	publish(t, s, true, "", "m0", "m1", "m2")
	publish(t, s, false, "", "m3", "m4") // maybe one chunk, maybe two
	// last: the newest chunk, wherever the batch of m3 and m4 was split.
	c := &consumer{}
	sub, err := s.Subscribe(c, ConsumeOptions{Prefetch: 100, Args: map[string]any{"x-stream-offset": "last"}})
	require.NoError(t, err)
	last := s.log.LastChunk()
	require.GreaterOrEqual(t, last, uint64(3))
	require.Equal(t, []string{"m0", "m1", "m2", "m3", "m4"}[last:], c.waitFor(t, int(5-last)))
	sub.Cancel()
	for _, tc := range []struct {
		name string
		args map[string]any
		want []string
	}{
		{"first", map[string]any{"x-stream-offset": "first"}, []string{"m0", "m1", "m2", "m3", "m4"}},
		{"numeric", map[string]any{"x-stream-offset": int64(3)}, []string{"m3", "m4"}},
		{"negative", map[string]any{"x-stream-offset": int64(-5)}, []string{"m0", "m1", "m2", "m3", "m4"}},
		{"old timestamp", map[string]any{"x-stream-offset": time.Now().Add(-time.Hour)}, []string{"m0", "m1", "m2", "m3", "m4"}},
		{"interval", map[string]any{"x-stream-offset": "1h"}, []string{"m0", "m1", "m2", "m3", "m4"}},
		{"next", map[string]any{"x-stream-offset": "next"}, nil},
		{"default", nil, nil},
		{"beyond the end", map[string]any{"x-stream-offset": int64(100)}, nil},
		{"future timestamp", map[string]any{"x-stream-offset": time.Now().Add(time.Hour)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &consumer{}
			sub, err := s.Subscribe(c, ConsumeOptions{Prefetch: 100, Args: tc.args})
			require.NoError(t, err)
			defer sub.Cancel()
			if tc.want != nil {
				// Earlier cases' tail messages follow m4.
				require.Equal(t, tc.want, c.waitFor(t, len(tc.want))[:len(tc.want)])
			}
			// Everything consumers see later arrives as it is published.
			publish(t, s, true, "", "tail-"+tc.name)
			require.Eventually(t, func() bool {
				got := c.bodies()
				return len(got) > 0 && got[len(got)-1] == "tail-"+tc.name
			}, 5*time.Second, time.Millisecond)
			// The header carries the offset as a long.
			c.mu.Lock()
			for _, d := range c.got {
				var p wire.Properties
				require.NoError(t, p.Decode(d.Message.Properties))
				require.Equal(t, int64(d.Offset), p.Headers["x-stream-offset"])
				require.Equal(t, int32(1), p.Headers["h"])
				require.Equal(t, "text/plain", p.ContentType)
			}
			c.mu.Unlock()
		})
	}
	// The stream comes back after a restart.
	n := int(s.log.Next())
	require.NoError(t, s.Close())
	s = open(t, dir)
	defer s.Close()
	c = &consumer{}
	_, err = s.Subscribe(c, ConsumeOptions{Prefetch: 1000, Args: map[string]any{"x-stream-offset": int64(0)}})
	require.NoError(t, err)
	require.Len(t, c.waitFor(t, n), n)
}

func TestConsumeRules(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	for _, tc := range []struct {
		name string
		o    ConsumeOptions
		code int
		text string
	}{
		{"no prefetch", ConsumeOptions{}, 406, "consumer prefetch count is not set for 'queue 's' in vhost '/''"},
		{"no-ack", ConsumeOptions{NoAck: true, Prefetch: 10}, 540, "automatic acknowledgement not supported by stream queues queue 's' in vhost '/'"},
		{"bad offset", ConsumeOptions{Prefetch: 10, Args: map[string]any{"x-stream-offset": "bogus"}}, 541, "INTERNAL_ERROR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Subscribe(&consumer{}, tc.o)
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tc.code, e.Code)
			require.Equal(t, tc.text, e.Text)
		})
	}
	for _, tc := range []struct {
		err  error
		text string
	}{
		{s.Get(), "basic.get not supported by stream queues queue 's' in vhost '/'"},
		{s.Purge(), "queue.purge not supported by stream queues queue 's' in vhost '/'"},
		{s.Nack(), "basic.nack and basic.reject not supported by stream queues queue 's' in vhost '/'"},
	} {
		var e *Error
		require.ErrorAs(t, tc.err, &e)
		require.Equal(t, 540, e.Code)
		require.Equal(t, tc.text, e.Text)
	}
}

// TestCredit checks that a consumer gets at most its prefetch until it
// acks, that acks remove nothing, and that consumers are independent.
func TestCredit(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	var bodies []string
	for i := 0; i < 10; i++ {
		bodies = append(bodies, fmt.Sprint("m", i))
	}
	publish(t, s, false, "", bodies...)
	a, b := &consumer{}, &consumer{}
	subA, err := s.Subscribe(a, ConsumeOptions{Prefetch: 3, Args: map[string]any{"x-stream-offset": "first"}})
	require.NoError(t, err)
	_, err = s.Subscribe(b, ConsumeOptions{Prefetch: 100, Args: map[string]any{"x-stream-offset": "first"}})
	require.NoError(t, err)
	require.Equal(t, bodies, b.waitFor(t, 10))
	require.Equal(t, bodies[:3], a.waitFor(t, 3))
	time.Sleep(50 * time.Millisecond) // nothing more may come without acks
	require.Len(t, a.bodies(), 3)
	subA.Ack(2)
	require.Equal(t, bodies[:5], a.waitFor(t, 5))
	// A consumer that refuses (a full channel) gets the same entry later.
	a.mu.Lock()
	a.full = true
	a.mu.Unlock()
	subA.Ack(5)
	time.Sleep(20 * time.Millisecond)
	a.mu.Lock()
	a.full = false
	a.mu.Unlock()
	subA.Kick()
	require.Equal(t, bodies, a.waitFor(t, 10))
	// A third consumer still reads everything: acks removed nothing.
	c := &consumer{}
	_, err = s.Subscribe(c, ConsumeOptions{Prefetch: 100, Args: map[string]any{"x-stream-offset": "first"}})
	require.NoError(t, err)
	require.Equal(t, bodies, c.waitFor(t, 10))
}

func TestFilter(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	publish(t, s, true, "red", "r1")
	publish(t, s, true, "blue", "b1")
	publish(t, s, true, "", "u1")
	publish(t, s, true, "red", "r2")
	for _, tc := range []struct {
		name string
		args map[string]any
		want []string
	}{
		{"none", map[string]any{}, []string{"r1", "b1", "u1", "r2"}},
		{"red", map[string]any{"x-stream-filter": "red"}, []string{"r1", "r2"}},
		{"red and blue", map[string]any{"x-stream-filter": []any{"red", "blue"}}, []string{"r1", "b1", "r2"}},
		{"red and unfiltered", map[string]any{"x-stream-filter": "red", "x-stream-match-unfiltered": true}, []string{"r1", "u1", "r2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.args["x-stream-offset"] = "first"
			c := &consumer{}
			sub, err := s.Subscribe(c, ConsumeOptions{Prefetch: 100, Args: tc.args})
			require.NoError(t, err)
			defer sub.Cancel()
			require.Equal(t, tc.want, c.waitFor(t, len(tc.want)))
			time.Sleep(20 * time.Millisecond)
			require.Equal(t, tc.want, c.bodies())
		})
	}
}

func TestDeleteCancels(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	c := &consumer{}
	_, err := s.Subscribe(c, ConsumeOptions{Prefetch: 1})
	require.NoError(t, err)
	require.NoError(t, s.Delete())
	require.True(t, c.cancelled)
	s = open(t, dir)
	defer s.Close()
	require.Equal(t, uint64(0), s.Log().Next())
}

func TestRetentionByAge(t *testing.T) {
	s, err := Open(t.TempDir(), "/", "s", Config{MaxAge: time.Second, MaxSegmentBytes: 1})
	require.NoError(t, err)
	defer s.Close()
	publish(t, s, true, "", "a", "b", "c")
	time.Sleep(1100 * time.Millisecond)
	publish(t, s, true, "", "d")
	// Rolling over for d removed a, b and c (older than a second).
	require.Equal(t, uint64(3), s.Log().First())
	c := &consumer{}
	_, err = s.Subscribe(c, ConsumeOptions{Prefetch: 10, Args: map[string]any{"x-stream-offset": "first"}})
	require.NoError(t, err)
	require.Equal(t, []string{"d"}, c.waitFor(t, 1))
}

func assertEventually(f func() bool) bool {
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if f() {
			return true
		}
	}
	return f()
}
