package wal

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// appendAll appends rs and waits until every one is durable.
func appendAll(t testing.TB, l *Log, rs []Record) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(rs))
	for _, r := range rs {
		wg.Add(1)
		var err error
		if r.Kind == KindCheckpoint {
			err = l.Checkpoint(r.Stream, r.Index, func(err error) { errs <- err; wg.Done() })
		} else {
			err = l.Append(r, func(err error) { errs <- err; wg.Done() })
		}
		require.NoError(t, err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func rec(stream, index uint64, payload string) Record {
	return Record{Stream: stream, Kind: 1, Index: index, Payload: []byte(payload)}
}

func cp(stream, index uint64) Record {
	return Record{Stream: stream, Kind: KindCheckpoint, Index: index}
}

// recovered renders a recovery as stream -> checkpoint and records.
func recovered(r *Recovery) map[uint64]string {
	out := make(map[uint64]string)
	for id, s := range r.Streams {
		var b bytes.Buffer
		fmt.Fprintf(&b, "cp=%d", s.Checkpoint)
		for _, x := range s.Records {
			fmt.Fprintf(&b, " %d:%d:%s", x.Kind, x.Index, x.Payload)
		}
		out[id] = b.String()
	}
	return out
}

func TestRecoverStreams(t *testing.T) {
	big := string(bytes.Repeat([]byte("x"), 1500))
	tests := []struct {
		name    string
		batches [][]Record // each appended and made durable before the next; a reopen between batches
		want    map[uint64]string
	}{
		{name: "empty", want: map[uint64]string{}},
		{
			name:    "two streams interleaved",
			batches: [][]Record{{rec(1, 1, "a"), rec(2, 1, "b"), rec(1, 2, "c")}},
			want:    map[uint64]string{1: "cp=0 1:1:a 1:2:c", 2: "cp=0 1:1:b"},
		},
		{
			name:    "empty payload",
			batches: [][]Record{{rec(7, 5, "")}},
			want:    map[uint64]string{7: "cp=0 1:5:"},
		},
		{
			name:    "checkpoint hides lower indexes",
			batches: [][]Record{{rec(1, 1, "a"), rec(1, 2, "b"), rec(1, 3, "c"), cp(1, 3)}},
			want:    map[uint64]string{1: "cp=3 1:3:c"},
		},
		{
			name:    "checkpoint survives reopen",
			batches: [][]Record{{rec(1, 1, "a"), rec(1, 2, "b")}, {cp(1, 2)}, {rec(1, 3, "c")}},
			want:    map[uint64]string{1: "cp=2 1:2:b 1:3:c"},
		},
		{
			name:    "drop",
			batches: [][]Record{{rec(1, 1, "a"), rec(2, 1, "b")}, {cp(1, math.MaxUint64)}},
			want:    map[uint64]string{2: "cp=0 1:1:b"},
		},
		{
			name:    "checkpoint with no records left",
			batches: [][]Record{{rec(3, 9, "a")}, {cp(3, 10)}},
			want:    map[uint64]string{3: "cp=10"},
		},
		{
			name:    "rewritten index kept in order",
			batches: [][]Record{{rec(1, 1, "a"), rec(1, 2, "old")}, {rec(1, 2, "new")}},
			want:    map[uint64]string{1: "cp=0 1:1:a 1:2:old 1:2:new"},
		},
		{
			name: "across segments, checkpoints carried by the table",
			batches: [][]Record{
				{rec(1, 1, big), rec(2, 1, big)}, {cp(1, 2)}, {rec(1, 2, big)}, {rec(2, 2, big)},
				{rec(1, 3, big)}, {rec(2, 3, big)}, {rec(1, 4, big)}, {rec(2, 4, big)}, {rec(1, 5, "end")},
			},
			want: map[uint64]string{
				1: "cp=2 1:2:" + big + " 1:3:" + big + " 1:4:" + big + " 1:5:end",
				2: "cp=0 1:1:" + big + " 1:2:" + big + " 1:3:" + big + " 1:4:" + big,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{SegmentSize: 4096}
			for _, b := range tt.batches {
				l, _, err := Open(dir, opts)
				require.NoError(t, err)
				appendAll(t, l, b)
				require.NoError(t, l.Close())
			}
			l, r, err := Open(dir, opts)
			require.NoError(t, err)
			require.Empty(t, r.Cut)
			require.Equal(t, tt.want, recovered(r))
			require.NoError(t, l.Close())
		})
	}
}

func TestSegmentsReleasedByCheckpoints(t *testing.T) {
	dir := t.TempDir()
	l, _, err := Open(dir, Options{SegmentSize: 8192})
	require.NoError(t, err)
	payload := string(bytes.Repeat([]byte("p"), 1000))
	// Stream 1 advances and checkpoints; stream 2 holds one old record
	// until it checkpoints too.
	appendAll(t, l, []Record{rec(2, 1, "pinned")})
	for i := uint64(1); i <= 200; i++ {
		appendAll(t, l, []Record{rec(1, i, payload)})
		if i%10 == 0 {
			appendAll(t, l, []Record{cp(1, i)})
		}
	}
	// Stream 1's old segments are gone; the first, holding stream 2's
	// record, is not.
	require.Greater(t, l.Stats().SegmentsDeleted, uint64(20))
	require.FileExists(t, segName(dir, 1))
	appendAll(t, l, []Record{cp(2, 2)})
	appendAll(t, l, []Record{cp(1, 200)})
	st := l.Stats()
	require.NoFileExists(t, segName(dir, 1))
	require.LessOrEqual(t, st.Segments, uint64(2))
	require.Equal(t, st.Batches, st.Syncs)
	require.NoError(t, l.Close())
	files, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	require.LessOrEqual(t, len(files), 3) // live segments and the spare

	l, r, err := Open(dir, Options{SegmentSize: 8192})
	require.NoError(t, err)
	defer l.Close()
	require.Equal(t, map[uint64]string{1: "cp=200 1:200:" + payload, 2: "cp=2"}, recovered(r))
}

func TestAppendErrors(t *testing.T) {
	l, _, err := Open(t.TempDir(), Options{SegmentSize: 4096})
	require.NoError(t, err)
	tests := []struct {
		name string
		r    Record
		want error
	}{
		{"too large", Record{Stream: 1, Payload: make([]byte, 2048)}, ErrTooLarge},
		{"reserved kind", Record{Stream: 1, Kind: KindCheckpoint}, nil},
	}
	for _, tt := range tests {
		err := l.Append(tt.r, nil)
		require.Error(t, err, tt.name)
		if tt.want != nil {
			require.ErrorIs(t, err, tt.want, tt.name)
		}
	}
	require.NoError(t, l.Close())
	require.ErrorIs(t, l.Append(rec(1, 1, "x"), nil), ErrClosed)
}

func TestOneSyncPerBatchUnderConcurrency(t *testing.T) {
	l, _, err := Open(t.TempDir(), Options{SegmentSize: 1 << 20})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for p := 0; p < 8; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				appendAll(t, l, []Record{rec(uint64(p), uint64(i), "0123456789abcdef")})
			}
		}(p)
	}
	wg.Wait()
	st := l.Stats()
	require.Equal(t, uint64(4000), st.Records)
	require.Equal(t, st.Batches, st.Syncs)
	require.Less(t, st.Batches, uint64(4000), "concurrent appends share batches")
	require.NoError(t, l.Close())
}

func TestRefusesBadHeader(t *testing.T) {
	dir := t.TempDir()
	l, _, err := Open(dir, Options{SegmentSize: 4096})
	require.NoError(t, err)
	appendAll(t, l, []Record{rec(1, 1, "a")})
	require.NoError(t, l.Close())
	files, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	require.NotEmpty(t, files)
	b, _ := os.ReadFile(files[0])
	b[0] ^= 0xff
	require.NoError(t, os.WriteFile(files[0], b, 0o644))
	_, _, err = Open(dir, Options{SegmentSize: 4096})
	require.ErrorContains(t, err, "bad header")
}

func TestAppendLazy(t *testing.T) {
	tests := []struct {
		name  string
		then  func(t *testing.T, l *Log)
		close bool
	}{
		{"carried by the next append", func(t *testing.T, l *Log) { appendAll(t, l, []Record{rec(2, 1, "b")}) }, false},
		{"written at close", func(t *testing.T, l *Log) {}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			l, _, err := Open(dir, Options{SegmentSize: 4096})
			require.NoError(t, err)
			require.NoError(t, l.AppendLazy(rec(1, 1, "lazy")))
			require.Zero(t, l.Stats().Batches, "a lazy record alone starts no write")
			tt.then(t, l)
			if tt.close {
				require.NoError(t, l.Close())
			} else {
				defer l.Close()
				require.Equal(t, uint64(1), l.Stats().Syncs)
			}
			l2, r, err := Open(copyDir(t, dir), Options{SegmentSize: 4096})
			require.NoError(t, err)
			defer l2.Close()
			require.Equal(t, "cp=0 1:1:lazy", recovered(r)[1])
		})
	}
}

// TestTableCrowdsOutRecord: a record that fits no segment beside the
// checkpoint table fails (and the log with it) instead of rotating forever.
func TestTableCrowdsOutRecord(t *testing.T) {
	l, _, err := Open(t.TempDir(), Options{SegmentSize: 4096})
	require.NoError(t, err)
	var cps []Record
	for s := uint64(1); s <= 60; s++ {
		cps = append(cps, cp(s, 5))
	}
	appendAll(t, l, cps)
	errc := make(chan error, 1)
	require.NoError(t, l.Append(rec(99, 1, string(make([]byte, 1900))), func(err error) { errc <- err }))
	require.ErrorContains(t, <-errc, "does not fit")
	require.Error(t, l.Close())
}

// TestAbandon: a crash keeps what was durable and loses the rest, and the
// log opens again cleanly after it.
func TestAbandon(t *testing.T) {
	dir := t.TempDir()
	l, _, err := Open(dir, Options{SegmentSize: 4096})
	require.NoError(t, err)
	require.NoError(t, l.AppendLazy(rec(1, 1, "lazy-carried")))
	appendAll(t, l, []Record{rec(1, 2, "durable")})
	require.NoError(t, l.AppendLazy(rec(1, 3, "lazy-lost")))
	require.NoError(t, l.Abandon())
	require.ErrorIs(t, l.Append(rec(1, 4, "late"), nil), ErrClosed)
	require.ErrorIs(t, l.Close(), ErrClosed)

	l2, r, err := Open(dir, Options{SegmentSize: 4096})
	require.NoError(t, err)
	require.Equal(t, "cp=0 1:1:lazy-carried 1:2:durable", recovered(r)[1])
	appendAll(t, l2, []Record{rec(1, 3, "after")})
	require.NoError(t, l2.Close())
	l3, r, err := Open(dir, Options{SegmentSize: 4096})
	require.NoError(t, err)
	defer l3.Close()
	require.Equal(t, "cp=0 1:1:lazy-carried 1:2:durable 1:3:after", recovered(r)[1])
}
