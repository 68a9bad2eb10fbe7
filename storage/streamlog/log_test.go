package streamlog

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/storage/wal"
)

// clock is a settable time source for Options.Now.
type clock struct{ ms atomic.Int64 }

func (c *clock) now() time.Time { return time.UnixMilli(c.ms.Load()) }

// appendBatch appends payloads and waits until all are durable, so that
// they form one chunk (the writer is idle when the batch starts).
func appendBatch(t testing.TB, l *Log, payloads ...string) []uint64 {
	t.Helper()
	var wg sync.WaitGroup
	var offs []uint64
	var failed atomic.Value
	l.mu.Lock() // hold the writer off so the batch is one chunk
	for _, p := range payloads {
		wg.Add(1)
		off := l.next
		l.next++
		l.buf = wal.AppendRecord(l.buf, off+1, 0, off, kindEntry, []byte(p))
		l.dones = append(l.dones, done{end: len(l.buf), fn: func(err error) {
			if err != nil {
				failed.Store(err)
			}
			wg.Done()
		}})
		offs = append(offs, off)
	}
	l.mu.Unlock()
	l.wake.Signal()
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	return offs
}

func readAll(t testing.TB, l *Log, from uint64) []Entry {
	t.Helper()
	r := l.NewReader(from)
	var out []Entry
	for {
		e, ok, err := r.Next()
		require.NoError(t, err)
		if !ok {
			return out
		}
		e.Payload = append([]byte(nil), e.Payload...)
		out = append(out, e)
	}
}

func TestAppendReadReopen(t *testing.T) {
	for _, tc := range []struct {
		name    string
		segSize int64
		n       int
		size    int
	}{
		{"one segment", 0, 100, 16},
		{"many segments", 4096, 500, 100},
		{"entries larger than the read buffer", 8 << 20, 5, 200 << 10},
		{"empty", 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, _, err := Open(dir, Options{MaxSegmentBytes: tc.segSize})
			require.NoError(t, err)
			payload := func(i int) []byte {
				b := make([]byte, tc.size)
				copy(b, fmt.Sprintf("m%d", i))
				return b
			}
			var wg sync.WaitGroup
			for i := 0; i < tc.n; i++ {
				wg.Add(1)
				off, err := l.Append(payload(i), func(err error) { require.NoError(t, err); wg.Done() })
				require.NoError(t, err)
				require.Equal(t, uint64(i), off)
				if i%10 == 9 {
					wg.Wait() // many chunks, so that segments roll over
				}
			}
			wg.Wait()
			check := func(l *Log) {
				require.Equal(t, uint64(tc.n), l.Next())
				got := readAll(t, l, 0)
				require.Len(t, got, tc.n)
				for i, e := range got {
					require.Equal(t, uint64(i), e.Offset)
					require.Equal(t, payload(i), e.Payload)
				}
				if tc.n > 0 {
					mid := uint64(tc.n / 2)
					got = readAll(t, l, mid)
					require.Equal(t, mid, got[0].Offset)
					require.Len(t, got, tc.n-int(mid))
				}
			}
			check(l)
			if tc.segSize == 4096 {
				require.Greater(t, l.Stats().Segments, 5)
			}
			require.NoError(t, l.Close())
			l, cut, err := Open(dir, Options{MaxSegmentBytes: tc.segSize})
			require.NoError(t, err)
			require.Empty(t, cut)
			check(l)
			off, err := l.Append([]byte("after"), nil)
			require.NoError(t, err)
			require.Equal(t, uint64(tc.n), off)
			require.NoError(t, l.Close())
		})
	}
}

// TestTailWaits checks that a reader at the end sees entries once durable,
// and that OnDurable reports them.
func TestTailWaits(t *testing.T) {
	var notified atomic.Uint64
	l, _, err := Open(t.TempDir(), Options{OnDurable: func(n uint64) { notified.Store(n) }})
	require.NoError(t, err)
	defer l.Close()
	r := l.NewReader(l.Next())
	_, ok, err := r.Next()
	require.NoError(t, err)
	require.False(t, ok)
	appendBatch(t, l, "a", "b")
	require.Equal(t, uint64(2), notified.Load())
	for _, want := range []string{"a", "b"} {
		e, ok, err := r.Next()
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, want, string(e.Payload))
	}
	require.Equal(t, uint64(0), l.LastChunk())
	appendBatch(t, l, "c")
	require.Equal(t, uint64(2), l.LastChunk())
}

// pristine writes batches of 1, 2, 3 and 4 entries and returns the log's
// directory, the segment file and each record's byte range.
func pristine(t *testing.T) (dir string, seg string, recs [][2]int64) {
	dir = t.TempDir()
	l, _, err := Open(dir, Options{})
	require.NoError(t, err)
	pos := int64(segHeaderSize)
	for b := 1; b <= 4; b++ {
		var ps []string
		for i := 0; i < b; i++ {
			ps = append(ps, fmt.Sprintf("batch %d entry %d", b, i))
		}
		appendBatch(t, l, ps...)
	}
	require.NoError(t, l.Close())
	seg = segName(dir, 0)
	for i := 0; i < 10; i++ {
		n := int64(len(fmt.Sprintf("batch %d entry %d", 1, 0)))
		recs = append(recs, [2]int64{pos, pos + 41 + n})
		pos += int64(recordSizeOf(int(n)))
	}
	// Drop the zero-filled preallocation (TestAppendReadReopen recovers
	// through it), so each case copies and scans a small file.
	require.NoError(t, os.Truncate(seg, pos+64))
	return dir, seg, recs
}

func recordSizeOf(n int) int { return (41 + n + 7) &^ 7 }

func copyTree(t *testing.T, src string) string {
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644))
	}
	return dst
}

// TestCrashTail damages the last record of the last batch (4 entries,
// offsets 6 to 9) at every byte, by truncating the segment there or flipping the byte, and checks that
// Open recovers exactly the entries before the damage, takes appends after
// it and recovers them; and that damage to an earlier batch, which a later,
// durable batch follows, is refused.
func TestCrashTail(t *testing.T) {
	src, _, recs := pristine(t)
	for _, mode := range []string{"truncate", "flip"} {
		for p := recs[9][0] - 8; p < recs[9][1]+8; p++ {
			t.Run(fmt.Sprintf("%s at %d", mode, p), func(t *testing.T) {
				dir := copyTree(t, src)
				seg := segName(dir, 0)
				b, err := os.ReadFile(seg)
				require.NoError(t, err)
				want := 10
				for i := 6; i < 10; i++ {
					start, end := recs[i][0], recs[i][1]
					hit := (mode == "truncate" && p < end) || (mode == "flip" && p >= start && p < end)
					if hit {
						want = i
						break
					}
				}
				if mode == "truncate" {
					b = b[:p]
				} else {
					b[p] ^= 0x5a
				}
				require.NoError(t, os.WriteFile(seg, b, 0o644))
				l, cut, err := Open(dir, Options{})
				require.NoError(t, err, "want %d", want)
				got := readAll(t, l, 0)
				require.Len(t, got, want)
				if want < 10 && (mode == "flip" || p > recs[want][0]) {
					require.NotEmpty(t, cut, "want %d recs %v", want, recs)
				}
				if p%8 != 0 {
					require.NoError(t, l.Close())
					return // appending after the cut: at every eighth byte, to keep the test short
				}
				appendBatch(t, l, "after")
				require.NoError(t, l.Close())
				l, _, err = Open(dir, Options{})
				require.NoError(t, err)
				got = readAll(t, l, 0)
				require.Len(t, got, want+1)
				require.Equal(t, "after", string(got[want].Payload))
				require.Equal(t, uint64(want), got[want].Offset)
				require.NoError(t, l.Close())
			})
		}
	}
	t.Run("earlier batch damaged", func(t *testing.T) {
		dir := copyTree(t, src)
		seg := segName(dir, 0)
		b, err := os.ReadFile(seg)
		require.NoError(t, err)
		b[recs[4][0]+45] ^= 1 // entry 4, in the third batch
		require.NoError(t, os.WriteFile(seg, b, 0o644))
		_, _, err = Open(dir, Options{})
		require.ErrorContains(t, err, "refusing to cut durable data")
	})
}

func TestRetention(t *testing.T) {
	var c clock
	c.ms.Store(1_000_000)
	for _, tc := range []struct {
		name     string
		opts     Options
		advance  time.Duration
		wantGone bool
	}{
		{"by size", Options{MaxSegmentBytes: 4096, MaxBytes: 16384}, 0, true},
		{"by age", Options{MaxSegmentBytes: 4096, MaxAge: time.Hour}, 2 * time.Hour, true},
		{"age not reached", Options{MaxSegmentBytes: 4096, MaxAge: time.Hour}, 30 * time.Minute, false},
		{"no limits", Options{MaxSegmentBytes: 4096}, 100 * time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Now = c.now
			l, _, err := Open(t.TempDir(), tc.opts)
			require.NoError(t, err)
			defer l.Close()
			old := l.NewReader(0)
			payload := make([]byte, 800)
			for i := 0; i < 100; i++ {
				appendBatch(t, l, string(payload))
			}
			c.ms.Add(tc.advance.Milliseconds())
			l.Retain()
			st := l.Stats()
			if !tc.wantGone {
				require.Equal(t, uint64(0), st.First)
				require.Len(t, readAll(t, l, 0), 100)
				return
			}
			require.Greater(t, st.First, uint64(0))
			if tc.opts.MaxBytes > 0 {
				require.LessOrEqual(t, st.Bytes, tc.opts.MaxBytes+tc.opts.MaxSegmentBytes)
			} else {
				require.Equal(t, 1, st.Segments)
			}
			ents, err := os.ReadDir(l.dir)
			require.NoError(t, err)
			require.Len(t, ents, st.Segments)
			got := readAll(t, l, 0)
			require.Equal(t, st.First, got[0].Offset)
			require.Equal(t, uint64(99), got[len(got)-1].Offset)
			// A reader whose segment was removed continues from First.
			e, ok, err := old.Next()
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, st.First, e.Offset)
		})
	}
}

func TestIndexLookups(t *testing.T) {
	var c clock
	c.ms.Store(10_000)
	l, _, err := Open(t.TempDir(), Options{MaxSegmentBytes: 64 << 10, Now: c.now})
	require.NoError(t, err)
	defer l.Close()
	// 300 chunks of 10 entries of 1 KiB, one chunk per second: many index
	// points per segment and many segments.
	payload := string(make([]byte, 1024))
	var chunkStarts []uint64
	for ch := 0; ch < 300; ch++ {
		ps := make([]string, 10)
		for i := range ps {
			ps[i] = payload
		}
		chunkStarts = append(chunkStarts, appendBatch(t, l, ps...)[0])
		c.ms.Add(1000)
	}
	require.Greater(t, l.Stats().Segments, 10)
	for _, off := range []uint64{0, 1, 9, 10, 11, 777, 1500, 2999} {
		e, ok, err := l.NewReader(off).Next()
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, off, e.Offset)
	}
	for _, tc := range []struct {
		ts   int64
		want uint64
	}{
		{0, 0},
		{10_000, 0},
		{10_001, 10},
		{11_000, 10},
		{10_000 + 150_500, chunkStarts[151]},
		{10_000 + 299_000, chunkStarts[299]},
		{10_000 + 299_001, 3000},
		{1 << 50, 3000},
	} {
		got, err := l.OffsetAt(tc.ts)
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "ts %d", tc.ts)
	}
	require.Equal(t, chunkStarts[299], l.LastChunk())
}
