// Package raftlog keeps raft groups' logs in the shared write-ahead log
// (storage/wal): each group is one WAL stream, and a Group implements
// go.etcd.io/raft/v3's Storage over an in-memory copy of the log, so many
// groups' Ready()s are made durable by one fdatasync.
//
// What is persisted, as WAL records of the group's stream:
//
//	kindEntry      one raft entry; its index is the record's index. An entry
//	               at index i replaces any earlier entries at i and after
//	               (raft overwriting a follower's uncommitted suffix).
//	kindHardState  the HardState; the record's index is its commit index.
//	kindSnapshot   a snapshot this node took (CreateSnapshot): entries stay.
//	kindInstalled  a snapshot received from a leader (ApplySnapshot): it
//	               replaces the log.
//
// The ConfState is persisted in snapshots' metadata, as in raft's
// MemoryStorage and etcd: conf changes after the snapshot are entries that
// the state machine applies again after a restart.
//
// Compact(i) checkpoints the stream at min(i, the last snapshot's index), so
// the WAL deletes segments once every group has moved past them.
package raftlog

import (
	"errors"
	"fmt"
	"sync"

	"github.com/warrenmq/warren/storage/wal"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

const (
	kindEntry uint8 = iota + 1
	kindHardState
	kindSnapshot
	kindInstalled
)

// Group is one raft group's storage. The raft.Storage methods are safe for
// concurrent use; Save, CreateSnapshot and Compact are called by the one
// goroutine that drives the group.
type Group struct {
	id  uint64
	wal *wal.Log
	ms  *raft.MemoryStorage

	mu        sync.Mutex // guards snapIndex, scratch
	snapIndex uint64     // index of the last snapshot persisted
	scratch   []byte     // marshal buffer: the WAL copies payloads
}

var _ raft.Storage = (*Group)(nil)

// New returns an empty group for stream id of w.
func New(w *wal.Log, id uint64) *Group {
	return &Group{id: id, wal: w, ms: raft.NewMemoryStorage()}
}

// Restore rebuilds group id from what the WAL recovered for its stream.
func Restore(w *wal.Log, id uint64, s *wal.Stream) (*Group, error) {
	g := New(w, id)
	if s == nil {
		return g, nil
	}
	var (
		hs      pb.HardState
		snap    pb.Snapshot
		hasSnap bool
		ents    []pb.Entry
	)
	for _, r := range s.Records {
		switch r.Kind {
		case kindEntry:
			var e pb.Entry
			if err := e.Unmarshal(r.Payload); err != nil {
				return nil, fmt.Errorf("raftlog: group %d: entry %d: %w", id, r.Index, err)
			}
			// An entry replaces the entries at its index and after.
			for len(ents) > 0 && ents[len(ents)-1].Index >= e.Index {
				ents = ents[:len(ents)-1]
			}
			ents = append(ents, e)
		case kindHardState:
			if err := hs.Unmarshal(r.Payload); err != nil {
				return nil, fmt.Errorf("raftlog: group %d: hard state: %w", id, err)
			}
		case kindSnapshot, kindInstalled:
			var sn pb.Snapshot
			if err := sn.Unmarshal(r.Payload); err != nil {
				return nil, fmt.Errorf("raftlog: group %d: snapshot %d: %w", id, r.Index, err)
			}
			if r.Kind == kindInstalled {
				ents = ents[:0]
			}
			if !hasSnap || sn.Metadata.Index >= snap.Metadata.Index {
				snap, hasSnap = sn, true
			}
		default:
			return nil, fmt.Errorf("raftlog: group %d: unknown record kind %d", id, r.Kind)
		}
	}
	if hasSnap {
		if err := g.ms.ApplySnapshot(snap); err != nil {
			return nil, fmt.Errorf("raftlog: group %d: %w", id, err)
		}
		g.snapIndex = snap.Metadata.Index
		// Entries the snapshot covers are compacted away.
		i := 0
		for i < len(ents) && ents[i].Index <= snap.Metadata.Index {
			i++
		}
		ents = ents[i:]
	}
	if len(ents) > 0 {
		if last, _ := g.ms.LastIndex(); ents[0].Index != last+1 {
			return nil, fmt.Errorf("raftlog: group %d: log resumes at entry %d after %d: entries are missing", id, ents[0].Index, last)
		}
		for i := 1; i < len(ents); i++ {
			if ents[i].Index != ents[i-1].Index+1 {
				return nil, fmt.Errorf("raftlog: group %d: entry %d follows %d", id, ents[i].Index, ents[i-1].Index)
			}
		}
		if err := g.ms.Append(ents); err != nil {
			return nil, fmt.Errorf("raftlog: group %d: %w", id, err)
		}
	}
	if !raft.IsEmptyHardState(hs) {
		if err := g.ms.SetHardState(hs); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// ID is the group's stream id in the WAL.
func (g *Group) ID() uint64 { return g.id }

// InitialState implements raft.Storage.
func (g *Group) InitialState() (pb.HardState, pb.ConfState, error) { return g.ms.InitialState() }

// Entries implements raft.Storage.
func (g *Group) Entries(lo, hi, maxSize uint64) ([]pb.Entry, error) {
	return g.ms.Entries(lo, hi, maxSize)
}

// Term implements raft.Storage.
func (g *Group) Term(i uint64) (uint64, error) { return g.ms.Term(i) }

// LastIndex implements raft.Storage.
func (g *Group) LastIndex() (uint64, error) { return g.ms.LastIndex() }

// FirstIndex implements raft.Storage.
func (g *Group) FirstIndex() (uint64, error) { return g.ms.FirstIndex() }

// Snapshot implements raft.Storage.
func (g *Group) Snapshot() (pb.Snapshot, error) { return g.ms.Snapshot() }

// Save persists what a Ready asks to be: a snapshot received from a leader,
// new entries, then the hard state, in that order; the in-memory log
// changes at once. done (if not nil) runs when all of it is durable, on the
// WAL's writer goroutine. With mustSync false (raft.Ready.MustSync: only
// the commit index changed) the records wait for the next durable write
// and done runs at once: a lost commit index is learnt again. It returns
// how many records it appended.
func (g *Group) Save(hs pb.HardState, ents []pb.Entry, snap pb.Snapshot, mustSync bool, done func(error)) (int, error) {
	if !mustSync && len(ents) == 0 && raft.IsEmptySnap(snap) {
		if raft.IsEmptyHardState(hs) {
			if done != nil {
				done(nil)
			}
			return 0, nil
		}
		g.mu.Lock()
		err := g.appendMarshaledLazy(kindHardState, hs.Commit, &hs)
		if err == nil {
			err = g.ms.SetHardState(hs)
		}
		g.mu.Unlock()
		if err != nil {
			return 0, err
		}
		if done != nil {
			done(nil)
		}
		return 1, nil
	}
	n := 0
	if !raft.IsEmptySnap(snap) {
		n++
	}
	n += len(ents)
	if !raft.IsEmptyHardState(hs) {
		n++
	}
	if n == 0 {
		if done != nil {
			done(nil)
		}
		return 0, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	last := func() func(error) {
		n--
		if n == 0 {
			return done // the WAL runs callbacks in order: the last means all
		}
		return nil
	}
	if !raft.IsEmptySnap(snap) {
		if err := g.appendMarshaled(kindInstalled, snap.Metadata.Index, &snap, last()); err != nil {
			return 0, err
		}
		if err := g.ms.ApplySnapshot(snap); err != nil {
			return 0, err
		}
		g.snapIndex = snap.Metadata.Index
	}
	for i := range ents {
		if err := g.appendMarshaled(kindEntry, ents[i].Index, &ents[i], last()); err != nil {
			return 0, err
		}
	}
	if len(ents) > 0 {
		if err := g.ms.Append(ents); err != nil {
			return 0, err
		}
	}
	if !raft.IsEmptyHardState(hs) {
		if err := g.appendMarshaled(kindHardState, hs.Commit, &hs, last()); err != nil {
			return 0, err
		}
		if err := g.ms.SetHardState(hs); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// marshaler is what raftpb's generated types offer.
type marshaler interface {
	Size() int
	MarshalTo([]byte) (int, error)
}

// appendMarshaled appends m as one record; g.mu is held.
func (g *Group) appendMarshaled(kind uint8, index uint64, m marshaler, done func(error)) error {
	size := m.Size()
	if cap(g.scratch) < size {
		g.scratch = make([]byte, size)
	}
	b := g.scratch[:size]
	if _, err := m.MarshalTo(b); err != nil {
		return err
	}
	return g.wal.Append(wal.Record{Stream: g.id, Kind: kind, Index: index, Payload: b}, done)
}

// appendMarshaledLazy appends m as a lazy record; g.mu is held.
func (g *Group) appendMarshaledLazy(kind uint8, index uint64, m marshaler) error {
	size := m.Size()
	if cap(g.scratch) < size {
		g.scratch = make([]byte, size)
	}
	b := g.scratch[:size]
	if _, err := m.MarshalTo(b); err != nil {
		return err
	}
	return g.wal.AppendLazy(wal.Record{Stream: g.id, Kind: kind, Index: index, Payload: b})
}

// CreateSnapshot records a snapshot of the state machine at applied index i
// (data is the state machine's encoding) and persists it; entries stay
// until Compact.
func (g *Group) CreateSnapshot(i uint64, cs *pb.ConfState, data []byte, done func(error)) (pb.Snapshot, error) {
	snap, err := g.ms.CreateSnapshot(i, cs, data)
	if err != nil {
		return snap, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.appendMarshaled(kindSnapshot, i, &snap, done); err != nil {
		return snap, err
	}
	g.snapIndex = i
	return snap, nil
}

// Compact discards the entries before compactIndex, in memory and (up to
// the last snapshot, which must stay recoverable) in the WAL.
func (g *Group) Compact(compactIndex uint64) error {
	if err := g.ms.Compact(compactIndex); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return err
	}
	g.mu.Lock()
	cp := min(compactIndex, g.snapIndex)
	g.mu.Unlock()
	if cp == 0 {
		return nil
	}
	return g.wal.Checkpoint(g.id, cp, nil)
}

// Drop forgets the group in the WAL (the queue was deleted).
func (g *Group) Drop(done func(error)) error { return g.wal.Drop(g.id, done) }
