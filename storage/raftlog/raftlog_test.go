package raftlog

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/warrenmq/warren/storage/wal"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

func ents(term uint64, from, to uint64) []pb.Entry {
	var out []pb.Entry
	for i := from; i <= to; i++ {
		out = append(out, pb.Entry{Term: term, Index: i, Data: []byte{byte(i)}})
	}
	return out
}

// op is one step applied to a group, live.
type op func(t *testing.T, g *Group)

func save(hs pb.HardState, es []pb.Entry) op {
	return func(t *testing.T, g *Group) { waitSave(t, g, hs, es, pb.Snapshot{}) }
}

func install(index, term uint64) op {
	return func(t *testing.T, g *Group) {
		snap := pb.Snapshot{Data: []byte("installed"), Metadata: pb.SnapshotMetadata{Index: index, Term: term, ConfState: pb.ConfState{Voters: []uint64{1, 2, 3}}}}
		waitSave(t, g, pb.HardState{Term: term, Commit: index}, nil, snap)
	}
}

func snapshot(i uint64) op {
	return func(t *testing.T, g *Group) {
		var wg sync.WaitGroup
		wg.Add(1)
		_, err := g.CreateSnapshot(i, &pb.ConfState{Voters: []uint64{1}}, []byte("state"), func(err error) { require.NoError(t, err); wg.Done() })
		require.NoError(t, err)
		wg.Wait()
	}
}

func compact(i uint64) op {
	return func(t *testing.T, g *Group) { require.NoError(t, g.Compact(i)) }
}

func waitSave(t *testing.T, g *Group, hs pb.HardState, es []pb.Entry, snap pb.Snapshot) {
	var wg sync.WaitGroup
	wg.Add(1)
	_, err := g.Save(hs, es, snap, true, func(err error) { require.NoError(t, err); wg.Done() })
	require.NoError(t, err)
	wg.Wait()
}

// state is what raft can read from a storage.
type state struct {
	HS          pb.HardState
	CS          pb.ConfState
	First, Last uint64
	Entries     []pb.Entry
	SnapIndex   uint64
	SnapData    string
}

func read(t *testing.T, s raft.Storage) state {
	hs, cs, err := s.InitialState()
	require.NoError(t, err)
	first, err := s.FirstIndex()
	require.NoError(t, err)
	last, err := s.LastIndex()
	require.NoError(t, err)
	var es []pb.Entry
	if last >= first {
		es, err = s.Entries(first, last+1, 1<<62)
		require.NoError(t, err)
	}
	snap, err := s.Snapshot()
	require.NoError(t, err)
	return state{HS: hs, CS: cs, First: first, Last: last, Entries: es, SnapIndex: snap.Metadata.Index, SnapData: string(snap.Data)}
}

// TestRestoreEquivalence applies each sequence to a live group, reopens the
// WAL, restores the group, and requires raft to read the same log from both
// (entries at and after the first index; a restored group may keep older
// entries a compaction dropped from memory but not yet from the WAL).
func TestRestoreEquivalence(t *testing.T) {
	tests := []struct {
		name string
		ops  []op
		want state // checked on the restored group, besides equivalence
	}{
		{name: "empty", want: state{First: 1}},
		{
			name: "entries and hard state",
			ops:  []op{save(pb.HardState{Term: 1, Vote: 1, Commit: 2}, ents(1, 1, 3))},
			want: state{HS: pb.HardState{Term: 1, Vote: 1, Commit: 2}, First: 1, Last: 3},
		},
		{
			name: "overwritten suffix",
			ops: []op{
				save(pb.HardState{Term: 1, Commit: 1}, ents(1, 1, 5)),
				save(pb.HardState{Term: 2, Commit: 2}, ents(2, 3, 4)),
			},
			want: state{HS: pb.HardState{Term: 2, Commit: 2}, First: 1, Last: 4},
		},
		{
			name: "snapshot then compact",
			ops: []op{
				save(pb.HardState{Term: 1, Commit: 10}, ents(1, 1, 10)),
				snapshot(8), compact(8),
				save(pb.HardState{Term: 1, Commit: 12}, ents(1, 11, 12)),
			},
			want: state{HS: pb.HardState{Term: 1, Commit: 12}, CS: pb.ConfState{Voters: []uint64{1}}, First: 9, Last: 12, SnapIndex: 8, SnapData: "state"},
		},
		{
			name: "compact beyond the snapshot keeps the snapshot",
			ops: []op{
				save(pb.HardState{Term: 1, Commit: 10}, ents(1, 1, 10)),
				snapshot(4), compact(9),
			},
			want: state{HS: pb.HardState{Term: 1, Commit: 10}, CS: pb.ConfState{Voters: []uint64{1}}, First: 10, Last: 10, SnapIndex: 4, SnapData: "state"},
		},
		{
			name: "installed snapshot replaces the log",
			ops: []op{
				save(pb.HardState{Term: 1, Commit: 3}, ents(1, 1, 5)),
				install(20, 3),
				save(pb.HardState{Term: 3, Commit: 21}, ents(3, 21, 22)),
			},
			want: state{HS: pb.HardState{Term: 3, Commit: 21}, CS: pb.ConfState{Voters: []uint64{1, 2, 3}}, First: 21, Last: 22, SnapIndex: 20, SnapData: "installed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w, _, err := wal.Open(dir, wal.Options{SegmentSize: 1 << 16})
			require.NoError(t, err)
			g := New(w, 7)
			for _, o := range tt.ops {
				o(t, g)
			}
			live := read(t, g)
			require.NoError(t, w.Close())

			w, rec, err := wal.Open(dir, wal.Options{SegmentSize: 1 << 16})
			require.NoError(t, err)
			defer w.Close()
			r, err := Restore(w, 7, rec.Streams[7])
			require.NoError(t, err)
			got := read(t, r)
			// The restored log may start earlier; from the live first index on
			// it must be the same.
			require.LessOrEqual(t, got.First, live.First)
			if got.First < live.First {
				got.Entries = got.Entries[live.First-got.First:]
				got.First = live.First
			}
			require.Equal(t, live, got)
			require.Equal(t, tt.want.HS, got.HS)
			require.Equal(t, tt.want.CS, got.CS)
			require.Equal(t, tt.want.First, got.First)
			require.Equal(t, tt.want.Last, got.Last)
			require.Equal(t, tt.want.SnapIndex, got.SnapIndex)
			require.Equal(t, tt.want.SnapData, got.SnapData)
		})
	}
}

// TestStorageErrors are raft's own storage test cases (storage_test.go:
// Term and Entries around a compacted log) against a restored group.
func TestStorageErrors(t *testing.T) {
	dir := t.TempDir()
	w, _, err := wal.Open(dir, wal.Options{SegmentSize: 1 << 16})
	require.NoError(t, err)
	g := New(w, 1)
	save(pb.HardState{Term: 5, Commit: 5}, []pb.Entry{{Index: 1, Term: 1}, {Index: 2, Term: 2}, {Index: 3, Term: 3}, {Index: 4, Term: 4}, {Index: 5, Term: 5}})(t, g)
	snapshot(3)(t, g)
	compact(3)(t, g)
	require.NoError(t, w.Close())
	w, rec, err := wal.Open(dir, wal.Options{SegmentSize: 1 << 16})
	require.NoError(t, err)
	defer w.Close()
	g, err = Restore(w, 1, rec.Streams[1])
	require.NoError(t, err)

	terms := []struct {
		i    uint64
		err  error
		term uint64
	}{
		{2, raft.ErrCompacted, 0},
		{3, nil, 3},
		{4, nil, 4},
		{5, nil, 5},
		{6, raft.ErrUnavailable, 0},
	}
	for _, tt := range terms {
		term, err := g.Term(tt.i)
		require.ErrorIs(t, err, tt.err, "term %d", tt.i)
		require.Equal(t, tt.term, term, "term %d", tt.i)
	}
	size := uint64((&pb.Entry{Index: 4, Term: 4}).Size())
	entries := []struct {
		lo, hi, maxSize uint64
		err             error
		n               int
	}{
		{2, 6, 1 << 62, raft.ErrCompacted, 0},
		{3, 4, 1 << 62, raft.ErrCompacted, 0},
		{4, 5, 1 << 62, nil, 1},
		{4, 6, 1 << 62, nil, 2},
		{4, 6, 0, nil, 1}, // at least one entry
		{4, 6, size, nil, 1},
		{4, 6, 2 * size, nil, 2},
	}
	for _, tt := range entries {
		es, err := g.Entries(tt.lo, tt.hi, tt.maxSize)
		require.ErrorIs(t, err, tt.err, "entries %d-%d", tt.lo, tt.hi)
		require.Len(t, es, tt.n, "entries %d-%d/%d", tt.lo, tt.hi, tt.maxSize)
	}
}

// TestRawNodeRestart runs a one-member raft group on a Group, commits
// proposals, reopens the WAL without closing it (a crash), and checks that
// a new RawNode on the restored group replays exactly the committed
// entries and keeps going.
func TestRawNodeRestart(t *testing.T) {
	dir := t.TempDir()
	w, _, err := wal.Open(dir, wal.Options{SegmentSize: 1 << 16})
	require.NoError(t, err)
	g := New(w, 42)
	cfg := func(s raft.Storage, applied uint64) *raft.Config {
		return &raft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: s, Applied: applied,
			MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, Logger: discard{}}
	}
	rn, err := raft.NewRawNode(cfg(g, 0))
	require.NoError(t, err)
	require.NoError(t, rn.Bootstrap([]raft.Peer{{ID: 1}}))

	var applied []string
	drive := func(rn *raft.RawNode, g *Group) {
		for rn.HasReady() {
			rd := rn.Ready()
			waitSave(t, g, rd.HardState, rd.Entries, rd.Snapshot)
			for _, e := range rd.CommittedEntries {
				switch e.Type {
				case pb.EntryNormal:
					if len(e.Data) > 0 {
						applied = append(applied, string(e.Data))
					}
				case pb.EntryConfChange:
					var cc pb.ConfChange
					require.NoError(t, cc.Unmarshal(e.Data))
					rn.ApplyConfChange(cc)
				}
			}
			rn.Advance(rd)
		}
	}
	// raft refuses to campaign with conf changes still to apply.
	drive(rn, g)
	require.NoError(t, rn.Campaign())
	drive(rn, g)
	for _, p := range []string{"a", "b", "c"} {
		require.NoError(t, rn.Propose([]byte(p)))
		drive(rn, g)
	}
	require.Equal(t, []string{"a", "b", "c"}, applied)

	// Crash: the old WAL is never closed; its files are reopened as they are.
	w2, rec, err := wal.Open(dir, wal.Options{SegmentSize: 1 << 16})
	require.NoError(t, err)
	defer w2.Close()
	defer w.Close()
	g2, err := Restore(w2, 42, rec.Streams[42])
	require.NoError(t, err)
	applied = nil
	rn2, err := raft.NewRawNode(cfg(g2, 0))
	require.NoError(t, err)
	// The membership is rebuilt by applying the committed conf change
	// again (it lives in the log, not the hard state); then it can campaign.
	drive(rn2, g2)
	require.NoError(t, rn2.Campaign())
	drive(rn2, g2)
	require.NoError(t, rn2.Propose([]byte("d")))
	drive(rn2, g2)
	require.Equal(t, []string{"a", "b", "c", "d"}, applied)
}

// discard is a raft.Logger that drops everything.
type discard struct{}

func (discard) Debug(...interface{})            {}
func (discard) Debugf(string, ...interface{})   {}
func (discard) Error(...interface{})            {}
func (discard) Errorf(string, ...interface{})   {}
func (discard) Info(...interface{})             {}
func (discard) Infof(string, ...interface{})    {}
func (discard) Warning(...interface{})          {}
func (discard) Warningf(string, ...interface{}) {}
func (discard) Fatal(v ...interface{})          { panic(v) }
func (discard) Fatalf(f string, v ...interface{}) {
	panic(f)
}
func (discard) Panic(v ...interface{})            { panic(v) }
func (discard) Panicf(f string, v ...interface{}) { panic(f) }
