package exchange

import (
	"hash/maphash"
	"slices"
	"strings"
	"sync"
)

// destRef is a destination with its small per-exchange id, used to drop
// duplicates while routing without hashing names.
type destRef struct {
	d  Destination
	id int32
}

// tnode is a node of the topic trie. Nodes are immutable once published: a
// bind copies the nodes on its path (keeping their ids) and swaps the root.
type tnode struct {
	id       int32 // stable across copies; indexes the per-route node marks
	isHash   bool  // reached by a "#" word, so it also consumes any further words
	children pmap[*tnode]
	star     *tnode // child for the word "*"
	hash     *tnode // child for the word "#"
	dests    bag[destRef]
}

func (n *tnode) empty() bool {
	return n.children.root == nil && n.star == nil && n.hash == nil && n.dests.len() == 0
}

// linearMax is how large a set may grow while duplicates are found by a
// linear scan; past it a pooled mark array takes over.
const linearMax = 16

// scratch holds mark arrays indexed by destination and node id. A slot is
// marked when it holds the current stamp, so no clearing is needed per use.
type scratch struct {
	destMarks []uint32
	destStamp uint32
	nodeMarks []uint32
	nodeStamp uint32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func nextStamp(marks []uint32, stamp uint32) uint32 {
	stamp++
	if stamp == 0 {
		clear(marks)
		stamp = 1
	}
	return stamp
}

func grow(marks []uint32, n int32) []uint32 {
	if int(n) <= len(marks) {
		return marks
	}
	return make([]uint32, n+n/4+8)
}

// matcher removes duplicates among the destinations one Route appends and,
// for topics, among the trie nodes active at one step.
type matcher struct {
	snap   *snapshot
	sc     *scratch
	destSc bool // destination duplicates are tracked in sc
	nodeSc bool // node duplicates are tracked in sc
	ids    [linearMax]int32
	nids   int
}

func (m *matcher) scratch() *scratch {
	if m.sc == nil {
		m.sc = scratchPool.Get().(*scratch)
		m.sc.destMarks = grow(m.sc.destMarks, m.snap.ndest)
		m.sc.nodeMarks = grow(m.sc.nodeMarks, m.snap.nnode)
	}
	return m.sc
}

func (m *matcher) release() {
	if m.sc != nil {
		scratchPool.Put(m.sc)
		m.sc = nil
	}
}

// seen reports whether id was already seen.
func (m *matcher) seen(id int32) bool {
	if m.destSc {
		return m.sc.destMarks[id] == m.sc.destStamp
	}
	return slices.Contains(m.ids[:m.nids], id)
}

// mark records id as seen; id must not have been seen.
func (m *matcher) mark(id int32) {
	if !m.destSc && m.nids < linearMax {
		m.ids[m.nids] = id
		m.nids++
		return
	}
	if !m.destSc {
		sc := m.scratch()
		sc.destStamp = nextStamp(sc.destMarks, sc.destStamp)
		for _, old := range m.ids[:m.nids] {
			sc.destMarks[old] = sc.destStamp
		}
		m.destSc = true
	}
	m.sc.destMarks[id] = m.sc.destStamp
}

// step starts a new set of active topic nodes.
func (m *matcher) step() {
	if m.nodeSc {
		m.sc.nodeStamp = nextStamp(m.sc.nodeMarks, m.sc.nodeStamp)
	}
}

// addNode adds n, and the "#" nodes reachable from it without consuming a
// word, to set unless already present.
func (m *matcher) addNode(set []*tnode, n *tnode) []*tnode {
	for ; n != nil; n = n.hash {
		switch {
		case m.nodeSc:
			if m.sc.nodeMarks[n.id] == m.sc.nodeStamp {
				return set
			}
			m.sc.nodeMarks[n.id] = m.sc.nodeStamp
		case slices.Contains(set, n):
			return set
		case len(set) >= linearMax:
			sc := m.scratch()
			sc.nodeStamp = nextStamp(sc.nodeMarks, sc.nodeStamp)
			for _, old := range set {
				sc.nodeMarks[old.id] = sc.nodeStamp
			}
			sc.nodeMarks[n.id] = sc.nodeStamp
			m.nodeSc = true
		}
		set = append(set, n)
	}
	return set
}

// routeTopic runs the trie as an NFA over the routing key's words, keeping
// the set of active nodes deduplicated at every step. Its cost is bounded by
// words × active nodes, whatever the number of bindings and however many "#"
// a binding key has, unlike RabbitMQ's backtracking walk which can revisit a
// node once per way of splitting the key.
//
// Words follow rabbit_db_topic_exchange:split_topic_key: "" is zero words,
// otherwise every "." separates words and empty words are kept ("a..b" is
// "a", "", "b"; "a." is "a", "").
func (s *snapshot) routeTopic(seed maphash.Seed, key string, out []Destination) []Destination {
	if s.topic == nil {
		return out
	}
	m := matcher{snap: s}
	var bufA, bufB [linearMax]*tnode
	cur := m.addNode(bufA[:0], s.topic)
	spare := bufB[:0]
	rest := key
	for done := key == ""; !done; {
		w := rest
		if i := strings.IndexByte(rest, '.'); i >= 0 {
			w, rest = rest[:i], rest[i+1:]
		} else {
			done = true
		}
		m.step()
		next := spare[:0]
		var h uint64
		hashed := false
		for _, n := range cur {
			if n.children.root != nil {
				if !hashed {
					h, hashed = maphash.String(seed, w), true
				}
				if c, ok := n.children.get(h, w); ok {
					next = m.addNode(next, c)
				}
			}
			if n.star != nil {
				next = m.addNode(next, n.star)
			}
			if n.isHash {
				next = m.addNode(next, n)
			}
		}
		if len(next) == 0 {
			m.release()
			return out
		}
		spare, cur = cur, next
	}
	for _, n := range cur {
		for _, c := range n.dests.chunks {
			for _, r := range c {
				if !m.seen(r.id) {
					m.mark(r.id)
					out = append(out, r.d)
				}
			}
		}
	}
	m.release()
	return out
}

// routeHeaders tests every binding, skipping those whose destination is
// already chosen.
func (s *snapshot) routeHeaders(headers map[string]any, out []Destination) []Destination {
	m := matcher{snap: s}
	for _, c := range s.headers.chunks {
		for i := range c {
			b := &c[i]
			if m.seen(b.ref.id) || !b.match(headers) {
				continue
			}
			m.mark(b.ref.id)
			out = append(out, b.ref.d)
		}
	}
	m.release()
	return out
}

// splitKey splits a binding key the way routing keys are split.
func splitKey(key string) []string {
	if key == "" {
		return nil
	}
	return strings.Split(key, ".")
}

// trieWriter updates the topic trie by path copying. It lives in the
// exchange's writer state.
type trieWriter struct {
	seed   maphash.Seed
	nextID int32
	free   []int32
}

func (t *trieWriter) newNode(isHash bool) *tnode {
	n := &tnode{isHash: isHash}
	if k := len(t.free); k > 0 {
		n.id, t.free = t.free[k-1], t.free[:k-1]
	} else {
		n.id = t.nextID
		t.nextID++
	}
	return n
}

// child returns n's child for word w.
func (t *trieWriter) child(n *tnode, w string) *tnode {
	switch w {
	case "*":
		return n.star
	case "#":
		return n.hash
	}
	c, _ := n.children.get(maphash.String(t.seed, w), w)
	return c
}

// setChild sets n's child for w on n, which must be a private copy; nil
// removes it.
func (t *trieWriter) setChild(n *tnode, w string, c *tnode) {
	switch w {
	case "*":
		n.star = c
	case "#":
		n.hash = c
	default:
		h := maphash.String(t.seed, w)
		if c == nil {
			n.children = n.children.del(h, w)
		} else {
			n.children = n.children.set(h, w, c)
		}
	}
}

// insert returns a copy of n with ref added at the node for words, and
// ref's position in that node's bag.
func (t *trieWriter) insert(n *tnode, words []string, ref destRef, isHash bool) (*tnode, int) {
	var c *tnode
	if n == nil {
		c = t.newNode(isHash)
	} else {
		cp := *n
		c = &cp
	}
	if len(words) == 0 {
		var pos int
		c.dests, pos = c.dests.add(ref)
		return c, pos
	}
	w := words[0]
	child, pos := t.insert(t.child(c, w), words[1:], ref, w == "#")
	t.setChild(c, w, child)
	return c, pos
}

// remove returns a copy of n without the destination at pos in the bag of
// the node for words, pruning nodes left empty (nil when n itself is). If
// another destination moved into pos, it is returned with moved true.
func (t *trieWriter) remove(n *tnode, words []string, pos int) (_ *tnode, mv destRef, moved bool) {
	cp := *n
	c := &cp
	if len(words) == 0 {
		c.dests, mv, moved = c.dests.removeAt(pos)
	} else {
		w := words[0]
		var child *tnode
		child, mv, moved = t.remove(t.child(c, w), words[1:], pos)
		t.setChild(c, w, child)
	}
	if c.empty() {
		t.free = append(t.free, c.id)
		return nil, mv, moved
	}
	return c, mv, moved
}
