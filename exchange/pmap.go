package exchange

import "math/bits"

// pmap is an immutable hash array mapped trie from string keys to V. An update
// copies only the path to the changed entry (O(log32 n) small nodes), so the
// copy-on-write routing snapshot stays cheap to update at 100 000 keys, while
// a lookup takes no lock and does not allocate. Callers pass the key's hash so
// that one hash of a routing-key word serves lookups in many trie nodes.
type pmap[V any] struct {
	root *pnode[V]
}

// pnode is one level of the trie: a bitmap of the occupied slots out of 32
// and the occupied entries in slot order. Below shift 64 the hash bits are
// used up and a node is a plain list of colliding keys.
type pnode[V any] struct {
	bitmap  uint32
	entries []pentry[V]
}

// pentry is a leaf (sub == nil) or a link to the next level.
type pentry[V any] struct {
	hash uint64
	key  string
	val  V
	sub  *pnode[V]
}

const (
	pbits = 5
	pmask = 1<<pbits - 1
)

func (m pmap[V]) get(h uint64, key string) (v V, ok bool) {
	n := m.root
	for shift := uint(0); n != nil; shift += pbits {
		if shift >= 64 {
			for i := range n.entries {
				if n.entries[i].key == key {
					return n.entries[i].val, true
				}
			}
			return v, false
		}
		bit := uint32(1) << ((h >> shift) & pmask)
		if n.bitmap&bit == 0 {
			return v, false
		}
		e := &n.entries[bits.OnesCount32(n.bitmap&(bit-1))]
		if e.sub == nil {
			if e.hash == h && e.key == key {
				return e.val, true
			}
			return v, false
		}
		n = e.sub
	}
	return v, false
}

// set returns a map with key bound to val; m itself is unchanged.
func (m pmap[V]) set(h uint64, key string, val V) pmap[V] {
	n := m.root
	if n == nil {
		n = &pnode[V]{}
	}
	return pmap[V]{root: n.set(0, pentry[V]{hash: h, key: key, val: val})}
}

// del returns a map without key; m itself is unchanged.
func (m pmap[V]) del(h uint64, key string) pmap[V] {
	if m.root == nil {
		return m
	}
	return pmap[V]{root: m.root.del(0, h, key)}
}

func (n *pnode[V]) set(shift uint, leaf pentry[V]) *pnode[V] {
	if shift >= 64 {
		for i := range n.entries {
			if n.entries[i].key == leaf.key {
				entries := cloneEntries(n.entries, 0)
				entries[i] = leaf
				return &pnode[V]{entries: entries}
			}
		}
		return &pnode[V]{entries: append(cloneEntries(n.entries, 1), leaf)}
	}
	bit := uint32(1) << ((leaf.hash >> shift) & pmask)
	idx := bits.OnesCount32(n.bitmap & (bit - 1))
	if n.bitmap&bit == 0 {
		entries := make([]pentry[V], 0, len(n.entries)+1)
		entries = append(entries, n.entries[:idx]...)
		entries = append(entries, leaf)
		entries = append(entries, n.entries[idx:]...)
		return &pnode[V]{bitmap: n.bitmap | bit, entries: entries}
	}
	old := n.entries[idx]
	var ne pentry[V]
	switch {
	case old.sub != nil:
		ne = pentry[V]{sub: old.sub.set(shift+pbits, leaf)}
	case old.hash == leaf.hash && old.key == leaf.key:
		ne = leaf
	default:
		ne = pentry[V]{sub: pairNode(shift+pbits, old, leaf)}
	}
	entries := cloneEntries(n.entries, 0)
	entries[idx] = ne
	return &pnode[V]{bitmap: n.bitmap, entries: entries}
}

// pairNode builds the smallest subtree holding two leaves whose hashes agree
// on all bits below shift.
func pairNode[V any](shift uint, a, b pentry[V]) *pnode[V] {
	if shift >= 64 {
		return &pnode[V]{entries: []pentry[V]{a, b}}
	}
	ia, ib := (a.hash>>shift)&pmask, (b.hash>>shift)&pmask
	if ia == ib {
		return &pnode[V]{bitmap: 1 << ia, entries: []pentry[V]{{sub: pairNode(shift+pbits, a, b)}}}
	}
	if ia > ib {
		a, b = b, a
		ia, ib = ib, ia
	}
	return &pnode[V]{bitmap: 1<<ia | 1<<ib, entries: []pentry[V]{a, b}}
}

// del returns n without key, or nil when nothing is left.
func (n *pnode[V]) del(shift uint, h uint64, key string) *pnode[V] {
	if shift >= 64 {
		for i := range n.entries {
			if n.entries[i].key == key {
				if len(n.entries) == 1 {
					return nil
				}
				return &pnode[V]{entries: removeEntry(n.entries, i)}
			}
		}
		return n
	}
	bit := uint32(1) << ((h >> shift) & pmask)
	if n.bitmap&bit == 0 {
		return n
	}
	idx := bits.OnesCount32(n.bitmap & (bit - 1))
	e := n.entries[idx]
	if e.sub == nil {
		if e.hash != h || e.key != key {
			return n
		}
	} else {
		sub := e.sub.del(shift+pbits, h, key)
		if sub == e.sub {
			return n
		}
		if sub != nil {
			ne := pentry[V]{sub: sub}
			if len(sub.entries) == 1 && sub.entries[0].sub == nil {
				// A lone leaf moves up so lookups stay short.
				ne = sub.entries[0]
			}
			entries := cloneEntries(n.entries, 0)
			entries[idx] = ne
			return &pnode[V]{bitmap: n.bitmap, entries: entries}
		}
	}
	if len(n.entries) == 1 {
		return nil
	}
	return &pnode[V]{bitmap: n.bitmap &^ bit, entries: removeEntry(n.entries, idx)}
}

func cloneEntries[V any](s []pentry[V], extra int) []pentry[V] {
	c := make([]pentry[V], len(s), len(s)+extra)
	copy(c, s)
	return c
}

func removeEntry[V any](s []pentry[V], i int) []pentry[V] {
	c := make([]pentry[V], 0, len(s)-1)
	c = append(c, s[:i]...)
	return append(c, s[i+1:]...)
}
