package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// layout is where each record of a pristine segment lies.
type layout struct {
	start, end int // end excludes padding, which no checksum covers
	h          recHeader
}

func scan(b []byte) []layout {
	var out []layout
	for o := segHeaderSize; ; {
		h, _, size, ok := parseRecord(b, o)
		if !ok {
			return out
		}
		out = append(out, layout{start: o, end: o + recHeaderSize + int(h.length), h: h})
		o += size
	}
}

// copyDir copies the log's files into a fresh directory.
func copyDir(t *testing.T, src string) string {
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range ents {
		// A segment being prepared is not part of the log yet.
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if strings.HasSuffix(e.Name(), ".tmp") || os.IsNotExist(err) {
			continue
		}
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644))
	}
	return dst
}

// TestCrashTail damages the last records of the log at every byte offset,
// by truncating the segment there or by flipping the byte, and checks that
// recovery returns exactly the records before the damage when the damage is
// a tail nothing durable follows, and refuses otherwise; and that the cut
// log takes appends and recovers them.
func TestCrashTail(t *testing.T) {
	const segSize = 4096
	opts := Options{SegmentSize: segSize}
	pristine := t.TempDir()
	l, _, err := Open(pristine, opts)
	require.NoError(t, err)
	var all []Record
	for b := 0; b < 6; b++ {
		var batch []Record
		for i := 0; i < 3; i++ {
			n := uint64(len(all) + len(batch) + 1)
			batch = append(batch, rec(n%2, n, fmt.Sprintf("payload-%d-%s", n, string(make([]byte, b)))))
		}
		appendAll(t, l, batch)
		all = append(all, batch...)
	}
	require.NoError(t, l.Close())
	seg := segName(pristine, 1)
	orig, err := os.ReadFile(seg)
	require.NoError(t, err)
	recs := scan(orig)
	require.Len(t, recs, len(all))

	// The damage covers the last 6 records (two batches) and the zeros after them.
	from := recs[len(recs)-6].start
	to := recs[len(recs)-1].end + 24

	check := func(t *testing.T, dir string, wantN int, wantErr bool) {
		l, r, err := Open(dir, opts)
		if wantErr {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		var got []Record
		for _, s := range []uint64{0, 1} {
			if st := r.Streams[s]; st != nil {
				got = append(got, st.Records...)
			}
		}
		require.Len(t, got, wantN)
		for _, g := range got {
			require.Equal(t, all[g.Index-1], g)
		}
		appendAll(t, l, []Record{rec(5, 1, "after")})
		require.NoError(t, l.Close())
		l, r, err = Open(dir, opts)
		require.NoError(t, err)
		defer l.Close()
		require.Len(t, r.Streams[5].Records, 1)
		n := 0
		for _, s := range []uint64{0, 1} {
			if st := r.Streams[s]; st != nil {
				n += len(st.Records)
			}
		}
		require.Equal(t, wantN, n)
	}

	for off := from; off < to; off++ {
		t.Run(fmt.Sprintf("truncate@%d", off), func(t *testing.T) {
			dir := copyDir(t, pristine)
			require.NoError(t, os.Truncate(segName(dir, 1), int64(off)))
			want := 0
			for _, x := range recs {
				if x.end <= off {
					want++
				}
			}
			check(t, dir, want, false)
		})
		t.Run(fmt.Sprintf("corrupt@%d", off), func(t *testing.T) {
			dir := copyDir(t, pristine)
			b := append([]byte(nil), orig...)
			b[off] ^= 0x5a
			require.NoError(t, os.WriteFile(segName(dir, 1), b, 0o644))
			want, wantErr := len(recs), false
			for i, x := range recs {
				if off >= x.start && off < x.end {
					want = i
					for _, y := range recs[i+1:] {
						if y.h.synced >= x.h.lsn {
							wantErr = true
						}
					}
					break
				}
			}
			check(t, dir, want, wantErr)
		})
	}
}

// TestCrashWithoutClose reopens a log that was never closed (its writer
// still running), as after kill -9: every record whose callback ran is back.
func TestCrashWithoutClose(t *testing.T) {
	dir := t.TempDir()
	l, _, err := Open(dir, Options{SegmentSize: 4096})
	require.NoError(t, err)
	for i := uint64(1); i <= 100; i++ {
		appendAll(t, l, []Record{rec(1, i, "durable")})
	}
	// Not waited for: may or may not be there.
	require.NoError(t, l.Append(rec(1, 101, "maybe"), nil))
	l2, r, err := Open(copyDir(t, dir), Options{SegmentSize: 4096})
	require.NoError(t, err)
	defer l2.Close()
	require.GreaterOrEqual(t, len(r.Streams[1].Records), 100)
	for i, x := range r.Streams[1].Records {
		require.Equal(t, uint64(i+1), x.Index)
	}
	require.NoError(t, l.Close())
}
