package storage

import "encoding/binary"

// A put followed later in the same group by a delete of the same key (a
// publish acked before its commit) need not be written: the delete is still
// applied, so the result is the same as applying every op. A message put
// in the group is skipped when every entry that references it is. The
// cancelPlan of a group says which puts those are; ops are numbered across
// the group (groupOps) to tell which comes later.

// opKey names the target of a put or delete, for cancelling pairs.
type opKey struct {
	kind opKind // the delete's kind
	name string
	key  string
	n    uint64
}

// cancelPlan holds, for one group, what the puts are checked against. The
// committer reuses one; build clears it.
type cancelPlan struct {
	dels  map[opKey]int  // the index of the last delete of each key
	drops map[string]int // the index of the last DeleteQueue of each queue
	// entries are the entry puts skipped, with the message each referenced:
	// the delete that undoes the put drops that reference instead (refs.go).
	entries map[opKey]uint64
	msgs    map[uint64]bool // messages whose put is skipped
}

func newCancelPlan() cancelPlan {
	return cancelPlan{
		dels:    make(map[opKey]int),
		drops:   make(map[string]int),
		entries: make(map[opKey]uint64),
		msgs:    make(map[uint64]bool),
	}
}

// build plans reqs, a group: it records where each key is last deleted and
// each queue last dropped, then which entry puts that makes void, then which
// message puts.
func (p *cancelPlan) build(reqs []request) {
	clear(p.dels)
	clear(p.drops)
	clear(p.entries)
	clear(p.msgs)
	puts := 0
	for i, o := range groupOps(reqs) {
		switch o.kind {
		case opDelDef, opDelMsg, opDelEntry:
			p.dels[opKey{kind: o.kind, name: o.name, key: o.key, n: o.n}] = i
		case opDelQueue:
			p.drops[o.name] = i
		case opPutMsg:
			puts++
		}
	}
	if len(p.dels) == 0 && len(p.drops) == 0 {
		return
	}
	// refsSkipped counts, per message, the skipped entries referencing it.
	var refsSkipped map[uint64]uint32
	if puts > 0 {
		refsSkipped = make(map[uint64]uint32)
	}
	for i, o := range groupOps(reqs) {
		if o.kind != opPutEntry || !p.superseded(i, o) {
			continue
		}
		ck := entryKey(o)
		if _, seen := p.entries[ck]; seen {
			continue // a second put of the same entry (a requeue)
		}
		id := binary.BigEndian.Uint64(o.value)
		p.entries[ck] = id
		if refsSkipped != nil {
			refsSkipped[id]++
		}
	}
	if len(refsSkipped) == 0 {
		return
	}
	for _, o := range groupOps(reqs) {
		if o.kind == opPutMsg && o.refs > 0 && refsSkipped[o.n] >= o.refs {
			p.msgs[o.n] = true
		}
	}
}

// skips reports whether o, the op at index i, need not be written.
func (p *cancelPlan) skips(i int, o *op) bool {
	switch o.kind {
	case opPutDef, opPutEntry:
		return p.superseded(i, o)
	case opPutMsg:
		return o.refs == 0 || p.msgs[o.n]
	}
	return false
}

// superseded reports whether the put o at index i is undone later in the
// group.
func (p *cancelPlan) superseded(i int, o *op) bool {
	if len(p.dels) == 0 && len(p.drops) == 0 {
		return false
	}
	var del opKind
	switch o.kind {
	case opPutDef:
		del = opDelDef
	case opPutEntry:
		if d, ok := p.drops[o.name]; ok && d > i {
			return true
		}
		del = opDelEntry
	}
	d, ok := p.dels[opKey{kind: del, name: o.name, key: o.key, n: o.n}]
	return ok && d > i
}

// entryKey is the key of o's entry (o a put or delete of an entry), as
// entries holds it.
func entryKey(o *op) opKey {
	return opKey{kind: opDelEntry, name: o.name, n: o.n}
}
