package conformance

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/amqp/amqptest"
)

// TestRecoverFormat2DataDir starts on a data directory written by Warren
// before persistent messages went through the journal (every message in
// warren.db, format 2): testdata/format2-warren.db.gz was made by that
// version with 300 persistent messages published to "upgrade" (the first
// 50 then consumed) and 300 to the priority queue "upgrade-prio" (priority
// i%6, max 5), under a memory budget so small that most were paged. Every
// message must come back, and the directory must keep working after.
func TestRecoverFormat2DataDir(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Open("testdata/format2-warren.db.gz")
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	out, err := os.Create(filepath.Join(dir, "warren.db"))
	require.NoError(t, err)
	_, err = io.Copy(out, zr)
	require.NoError(t, err)
	require.NoError(t, out.Close())

	for round := range 2 {
		srv := amqptest.NewServer(t, func(c *amqp.Config) { c.DataDir = dir; c.QueueMemoryBudget = 8192 })
		ch := dialChannel(t, srv.URL)
		if round == 1 {
			// What the first round left: the priority queue, drained there.
			q, err := ch.QueueDeclarePassive("upgrade-prio", true, false, false, false, nil)
			require.NoError(t, err)
			require.Equal(t, 0, q.Messages)
			got := drain(t, ch, "upgrade")
			require.Len(t, got, 250-100)
			require.Equal(t, "m-150", got[0])
			return
		}
		var want []string
		for i := 50; i < 300; i++ {
			want = append(want, fmt.Sprintf("m-%d", i))
		}
		// Take 100 and leave the rest for the next start, now written by
		// this version.
		for i := range 100 {
			m, ok, err := ch.Get("upgrade", true)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, want[i], string(m.Body))
		}
		got := drain(t, ch, "upgrade-prio")
		require.Len(t, got, 300)
		// Highest priority first, publish order within a priority.
		require.Equal(t, "p-5", got[0])
		sorted := append([]string(nil), got...)
		sort.Strings(sorted)
		require.Equal(t, 300, len(sorted))
		require.NoError(t, srv.Server.Shutdown(t.Context()))
	}
}
