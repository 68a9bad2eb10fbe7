package quorum

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// deliveries collects a node's deliver effects.
type deliveries struct {
	mu  sync.Mutex // guards ids, dcs
	ids map[ConsumerID][]uint64
	dcs map[uint32]int // delivery count -> deliveries seen
}

func newDeliveries() *deliveries {
	return &deliveries{ids: map[ConsumerID][]uint64{}, dcs: map[uint32]int{}}
}

func (d *deliveries) effects(_ uint64, effs []Effect) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range effs {
		if e.Type == EffDeliver {
			d.ids[e.Consumer] = append(d.ids[e.Consumer], e.MsgID)
			d.dcs[e.DeliveryCount]++
		}
	}
}

func (d *deliveries) take(c ConsumerID) []uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := d.ids[c]
	d.ids[c] = nil
	return ids
}

func (d *deliveries) count(c ConsumerID) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.ids[c])
}

// proposeAll proposes cmds and waits for every one to be applied.
func proposeAll(t testing.TB, g *Group, cmds []Command) []Result {
	t.Helper()
	res := make([]Result, len(cmds))
	var wg sync.WaitGroup
	var errMu sync.Mutex // guards firstErr
	var firstErr error
	for i := range cmds {
		wg.Add(1)
		i := i
		require.NoError(t, g.Propose(&cmds[i], func(r Result, err error) {
			res[i] = r
			if err != nil {
				errMu.Lock()
				firstErr = err
				errMu.Unlock()
			}
			wg.Done()
		}))
	}
	// A proposal a follower forwards and the network or a change of
	// leader loses is never answered: fail rather than hang.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("proposals not answered in 30s")
	}
	require.NoError(t, firstErr)
	return res
}

func walFiles(t *testing.T, dir string) int {
	files, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	require.NoError(t, err)
	return len(files)
}

// TestDriverReleasesSegments enqueues 100 000 messages, consumes and settles
// them, and checks that the release snapshots let the WAL delete the
// segments the queue no longer needs.
func TestDriverReleasesSegments(t *testing.T) {
	dir := t.TempDir()
	d := newDeliveries()
	n, err := OpenNode(NodeOptions{Dir: dir, SegmentSize: 256 << 10, Effects: d.effects})
	require.NoError(t, err)
	g, err := n.Create(1, Config{})
	require.NoError(t, err)

	const total = 100000
	body := make([]byte, 16)
	cmds := make([]Command, 0, 1000)
	for i := 0; i < total; i += 1000 {
		cmds = cmds[:0]
		for k := 0; k < 1000; k++ {
			cmds = append(cmds, Command{Type: CmdEnqueue, Body: body})
		}
		proposeAll(t, g, cmds)
	}
	peak := walFiles(t, dir)
	require.Greater(t, peak, 4, "100 000 enqueues fill several 256 KiB segments")

	proposeAll(t, g, []Command{checkout(c1, 1000)})
	settled := 0
	for settled < total {
		require.Eventually(t, func() bool { return d.count(c1) > 0 }, 10*time.Second, time.Millisecond)
		ids := d.take(c1)
		proposeAll(t, g, []Command{settle(c1, ids...)})
		settled += len(ids)
	}
	// An emptied queue releases after a few more commands.
	for i := 0; i < releaseEmpty; i++ {
		proposeAll(t, g, []Command{{Type: CmdPurge}})
	}
	st := n.WALStats()
	require.Greater(t, st.SegmentsDeleted, uint64(peak-3))
	require.LessOrEqual(t, walFiles(t, dir), 3)
	t.Logf("WAL: %d batches, %d syncs, %d records; peak %d segment files, %d deleted", st.Batches, st.Syncs, st.Records, peak, st.SegmentsDeleted)
	require.NoError(t, n.Close())
	require.Equal(t, 0, g.sm.Live())

	// And it all comes back empty.
	n, err = OpenNode(NodeOptions{Dir: dir, SegmentSize: 256 << 10})
	require.NoError(t, err)
	require.NoError(t, n.Close())
	require.Equal(t, 0, n.Group(1).sm.Live())
}

// copyDir copies the node's files as a crash would leave them.
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

// TestDriverRestartAfterKill reopens a node's files while the node is still
// running (as after kill -9): every committed message is back, those its
// consumer held are ready again with their delivery count raised.
func TestDriverRestartAfterKill(t *testing.T) {
	dir := t.TempDir()
	d := newDeliveries()
	n, err := OpenNode(NodeOptions{Dir: dir, SegmentSize: 1 << 20, Effects: d.effects})
	require.NoError(t, err)
	defer n.Close()
	cfgs := []Config{{}, {DeliveryLimit: 5}}
	for id, cfg := range cfgs {
		_, err := n.Create(uint64(id+1), cfg)
		require.NoError(t, err)
	}
	g := n.Group(1)
	var cmds []Command
	for i := 0; i < 1000; i++ {
		cmds = append(cmds, enq("m"))
	}
	proposeAll(t, g, cmds)
	proposeAll(t, g, []Command{checkout(c1, 10)})
	require.Eventually(t, func() bool { return d.count(c1) == 10 }, 5*time.Second, time.Millisecond)
	ids := d.take(c1)
	proposeAll(t, g, []Command{settle(c1, ids[:4]...)}) // 4 gone, 6 held, 4 more delivered
	require.Eventually(t, func() bool { return d.count(c1) == 4 }, 5*time.Second, time.Millisecond)
	proposeAll(t, n.Group(2), []Command{enq("other")})

	d2 := newDeliveries()
	n2, err := OpenNode(NodeOptions{Dir: copyDir(t, dir), SegmentSize: 1 << 20, Effects: d2.effects})
	require.NoError(t, err)
	require.ElementsMatch(t, []uint64{1, 2}, n2.Groups())
	g2 := n2.Group(1)
	proposeAll(t, g2, []Command{checkout(c2, 0)})
	require.Eventually(t, func() bool { return d2.count(c2) == 996 }, 5*time.Second, time.Millisecond)
	d2.mu.Lock()
	require.Equal(t, 10, d2.dcs[1], "the 10 held by the dead consumer come back with x-delivery-count 1")
	require.Equal(t, 986, d2.dcs[0])
	d2.mu.Unlock()
	require.NoError(t, n2.Close())
	require.Equal(t, Config{DeliveryLimit: 5}, n2.Group(2).sm.Config())
	require.Equal(t, 1, n2.Group(2).sm.Live())
}

// TestIdleGroupMemory reports the heap an idle group costs.
func TestIdleGroupMemory(t *testing.T) {
	n, err := OpenNode(NodeOptions{Dir: t.TempDir(), SegmentSize: 4 << 20})
	require.NoError(t, err)
	defer n.Close()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const groups = 1000
	for i := 1; i <= groups; i++ {
		_, err := n.Create(uint64(i), Config{})
		require.NoError(t, err)
	}
	// Let them elect themselves: one proposal to every group at once, so
	// they share fsyncs instead of waiting for a thousand in a row.
	require.Eventually(t, func() bool {
		var failed atomic.Bool
		var wg sync.WaitGroup
		for i := 1; i <= groups; i++ {
			wg.Add(1)
			err := n.Group(uint64(i)).Propose(&Command{Type: CmdPurge}, func(r Result, err error) {
				if err != nil || r.Err != nil {
					failed.Store(true)
				}
				wg.Done()
			})
			if err != nil {
				failed.Store(true)
				wg.Done()
			}
		}
		wg.Wait()
		return !failed.Load()
	}, time.Minute, 10*time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / groups
	t.Logf("heap per idle group: %d B", per)
	require.Less(t, per, int64(20<<10), "an idle quorum queue costs at most 20 KiB (#12)")
}

// TestGroupsShareFsyncs proposes to many groups at once: their entries are
// made durable together, far fewer fsyncs than groups.
func TestGroupsShareFsyncs(t *testing.T) {
	n, err := OpenNode(NodeOptions{Dir: t.TempDir(), SegmentSize: 4 << 20})
	require.NoError(t, err)
	defer n.Close()
	const groups = 50
	for i := 1; i <= groups; i++ {
		g, err := n.Create(uint64(i), Config{})
		require.NoError(t, err)
		proposeAll(t, g, []Command{{Type: CmdPurge}}) // elected
	}
	before := n.WALStats()
	var wg sync.WaitGroup
	cmd := enq("x")
	for i := 1; i <= groups; i++ {
		wg.Add(1)
		require.NoError(t, n.Group(uint64(i)).Propose(&cmd, func(r Result, err error) {
			require.NoError(t, err)
			wg.Done()
		}))
	}
	wg.Wait()
	after := n.WALStats()
	syncs := after.Syncs - before.Syncs
	t.Logf("%d groups' enqueues made durable with %d fsyncs", groups, syncs)
	require.Less(t, syncs, uint64(groups/2))
	require.Equal(t, after.Batches-before.Batches, syncs, "one fsync per batch")
}

func TestRemoveDropsGroup(t *testing.T) {
	dir := t.TempDir()
	n, err := OpenNode(NodeOptions{Dir: dir})
	require.NoError(t, err)
	g, err := n.Create(5, Config{})
	require.NoError(t, err)
	done := make(chan error, 1)
	require.NoError(t, g.Propose(&Command{Type: CmdEnqueue, Body: []byte("a")}, func(_ Result, err error) { done <- err }))
	require.NoError(t, <-done)
	require.Equal(t, 1, g.Stats().Ready)
	require.NoError(t, n.Remove(5))
	require.ErrorIs(t, g.Propose(&Command{Type: CmdEnqueue, Body: []byte("b")}, nil), ErrNoGroup)
	require.ErrorIs(t, n.Remove(5), ErrNoGroup)
	// A barrier: another group's commit syncs the drop too.
	g2, err := n.Create(6, Config{})
	require.NoError(t, err)
	require.NoError(t, g2.Propose(&Command{Type: CmdEnqueue, Body: []byte("c")}, func(_ Result, err error) { done <- err }))
	require.NoError(t, <-done)
	require.NoError(t, n.Close())

	n, err = OpenNode(NodeOptions{Dir: dir})
	require.NoError(t, err)
	defer n.Close()
	require.Equal(t, []uint64{6}, n.Groups())
	require.Equal(t, 1, n.Group(6).Stats().Ready)
}
