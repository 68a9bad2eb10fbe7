package queue

import "math/bits"

// readySet is a queue's ready messages and everything counted about them:
// the totals, the bitmap of non-empty levels, the deadline heap and the
// memory charged to the budget. It is the only code that changes any of
// these, so the counters cannot drift from what they count (the invariants
// build checks that they do not). It holds no lock of its own: the owning
// Queue's mu guards it.
//
// A priority level's messages are in memory, in a seq-ordered ring, and,
// once the level is paged, on disk only after those: the level's paged
// part, of which only a count, a byte total and the seq to read from are
// kept.
type readySet struct {
	levels []ring
	// paged is each level's paged part; nil for queues that keep nothing
	// on disk.
	paged []pagedPart
	// nonEmpty has a bit per level holding messages (in memory, expired
	// ones included, or paged), so finding the highest is a few word
	// operations whatever the number of levels.
	nonEmpty [4]uint64
	count    int   // live ready messages, in memory and paged (expired ones excluded)
	bytes    int64 // their body sizes
	// deadlines holds the deadline of every live message in memory that
	// has one and is not pending (Queue.pending); it may also hold stale
	// items (the message left, or is pending), dropped when they come due or
	// by compaction.
	deadlines deadlineHeap
	timed     int // live messages in memory with a deadline
	// budget is charged for every live message in memory; charged is this
	// set's share of it.
	budget  *Budget
	charged int64
}

// pagedPart is a priority level's paged messages: those of the level with
// a seq of at least from (every message of the level in memory, ready or
// unacked, has a lower seq).
type pagedPart struct {
	count int
	bytes int64
	from  uint64
}

func newReadySet(levels int, paging bool, budget *Budget) readySet {
	rs := readySet{levels: make([]ring, levels), budget: budget}
	if paging {
		rs.paged = make([]pagedPart, levels)
	}
	return rs
}

// mark sets or clears level's non-empty bit from what it holds.
func (rs *readySet) mark(level uint8) {
	if rs.levels[level].len() > 0 || (rs.paged != nil && rs.paged[level].count > 0) {
		rs.nonEmpty[level>>6] |= 1 << (level & 63)
	} else {
		rs.nonEmpty[level>>6] &^= 1 << (level & 63)
	}
}

// highest returns the highest level holding messages, or -1.
func (rs *readySet) highest() int {
	for w := len(rs.nonEmpty) - 1; w >= 0; w-- {
		if x := rs.nonEmpty[w]; x != 0 {
			return w*64 + 63 - bits.LeadingZeros64(x)
		}
	}
	return -1
}

// charge adds (sign 1) or removes (-1) a message in memory from the budget.
func (rs *readySet) charge(m *Message, sign int64) {
	if rs.budget == nil {
		return
	}
	c := sign * messageCost(m)
	rs.charged += c
	rs.budget.used.Add(c)
}

// add puts a live message in memory at its seq position. Its deadline, if
// any, is counted but not scheduled: the caller schedules it unless the
// message is pending.
func (rs *readySet) add(level uint8, e entry) {
	r := &rs.levels[level]
	if r.len() == 0 || r.at(r.len()-1).seq < e.seq {
		r.push(e)
	} else {
		r.insert(e)
	}
	rs.nonEmpty[level>>6] |= 1 << (level & 63)
	rs.count++
	rs.bytes += int64(e.msg.Size())
	rs.charge(e.msg, 1)
	if e.deadline != 0 {
		rs.timed++
	}
}

// popFront removes the head of a level in memory: a live message leaves
// the counts, an expired one was out of them already.
func (rs *readySet) popFront(level uint8) entry {
	e := rs.levels[level].popFront()
	if !e.expired {
		rs.count--
		rs.bytes -= int64(e.msg.Size())
		rs.charge(e.msg, -1)
		if e.deadline != 0 {
			rs.timed--
		}
	}
	if rs.levels[level].len() == 0 {
		rs.mark(level)
	}
	return e
}

// expire expires the live message at index i of a level in place, leaving
// a tombstone that is skipped at the head, and returns it; tombstones that
// reach the head go at once.
func (rs *readySet) expire(level uint8, i int) entry {
	r := &rs.levels[level]
	e := r.at(i)
	gone := *e
	rs.count--
	rs.bytes -= int64(e.msg.Size())
	rs.charge(e.msg, -1)
	rs.timed--
	e.expired, e.msg = true, nil
	for r.len() > 0 && r.front().expired {
		r.popFront()
	}
	rs.mark(level)
	return gone
}

// find returns the index of the live message that a deadline item refers
// to, or -1 when it is stale.
func (rs *readySet) find(d deadline) int {
	r := &rs.levels[d.level]
	i := r.search(d.seq)
	if i == r.len() {
		return -1
	}
	if e := r.at(i); e.seq != d.seq || e.expired {
		return -1
	}
	return i
}

// schedule puts a deadline in the heap and reports whether the heap was
// rebuilt, which may drop the item the timer was armed for.
//
// The heap is rebuilt when most of its items belong to messages already
// gone (delivered, acked, dropped): they would otherwise stay until their
// deadline, and a busy queue with a long TTL would hold millions of them.
// The rebuild is linear and runs only after the heap has doubled past the
// live count, so it is cheap amortised.
func (rs *readySet) schedule(d deadline) (rebuilt bool) {
	rs.deadlines.push(d)
	if len(rs.deadlines) <= 2*rs.timed+1024 {
		return false
	}
	h := rs.deadlines[:0]
	for level := range rs.levels {
		r := &rs.levels[level]
		for i := 0; i < r.len(); i++ {
			if e := r.at(i); !e.expired && e.deadline != 0 {
				h = append(h, deadline{at: e.deadline, seq: e.seq, level: uint8(level)})
			}
		}
	}
	clear(h[len(h):cap(h)])
	// Heapify bottom-up.
	rs.deadlines = h
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
	return true
}

// firstDeadline returns the earliest deadline in the heap.
func (rs *readySet) firstDeadline() (int64, bool) {
	if len(rs.deadlines) == 0 {
		return 0, false
	}
	return rs.deadlines[0].at, true
}

// popDue takes the earliest deadline item from the heap if it is due at
// now.
func (rs *readySet) popDue(now int64) (deadline, bool) {
	if len(rs.deadlines) == 0 || rs.deadlines[0].at > now {
		return deadline{}, false
	}
	return rs.deadlines.pop(), true
}

// addPaged counts a message of size bytes with seq into a level's paged
// part.
func (rs *readySet) addPaged(level uint8, seq uint64, size int64) {
	p := &rs.paged[level]
	if p.count == 0 {
		p.from = seq
	}
	p.count++
	p.bytes += size
	rs.count++
	rs.bytes += size
	rs.nonEmpty[level>>6] |= 1 << (level & 63)
}

// takePaged counts a message of size bytes out of a level's paged part
// (read back, or gone).
func (rs *readySet) takePaged(level uint8, size int64) {
	p := &rs.paged[level]
	p.count--
	p.bytes -= size
	rs.count--
	rs.bytes -= size
	rs.mark(level)
}

// readFrom records that a level's paged part has been read up to from.
func (rs *readySet) readFrom(level uint8, from uint64) {
	p := &rs.paged[level]
	p.from = max(p.from, from)
}

// losePaged drops what is still counted in a level's paged part (entries
// lost to a crash between writes) and returns how many.
func (rs *readySet) losePaged(level uint8) int {
	p := &rs.paged[level]
	n := p.count
	rs.count -= p.count
	rs.bytes -= p.bytes
	p.count, p.bytes = 0, 0
	rs.mark(level)
	return n
}

// pagedCount is the number of paged messages.
func (rs *readySet) pagedCount() int {
	n := 0
	for i := range rs.paged {
		n += rs.paged[i].count
	}
	return n
}

// clear empties the set, in memory and paged, and gives its memory back
// to the budget.
func (rs *readySet) clear() {
	for i := range rs.levels {
		rs.levels[i] = ring{}
	}
	for i := range rs.paged {
		rs.paged[i] = pagedPart{}
	}
	rs.nonEmpty = [4]uint64{}
	rs.count, rs.bytes = 0, 0
	rs.deadlines, rs.timed = nil, 0
	if rs.budget != nil {
		rs.budget.used.Add(-rs.charged)
	}
	rs.charged = 0
}
