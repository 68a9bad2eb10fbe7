//go:build invariants

package queue

import "fmt"

// The invariants build (go test -tags invariants) checks, every time an
// operation releases the queue's lock, that the counters agree with what
// they count. A violation panics with what disagrees: the test that made
// it fails at the operation that broke it, not later where a count is
// merely wrong.

// checkState is what the invariants build tracks besides the queue's own
// state: the seqs delivered and not settled yet.
type checkState struct {
	unacked map[uint64]bool
	// checks counts the checks done, to space out the full ones.
	checks int
}

func (c *checkState) delivered(seq uint64) {
	if c.unacked == nil {
		c.unacked = make(map[uint64]bool)
	}
	if c.unacked[seq] {
		panic(fmt.Sprintf("queue invariant: message %d delivered again before it was settled", seq))
	}
	c.unacked[seq] = true
}

func (c *checkState) settled(seq uint64) {
	if !c.unacked[seq] {
		panic(fmt.Sprintf("queue invariant: message %d settled but not outstanding", seq))
	}
	delete(c.unacked, seq)
}

func (c *checkState) dropUnacked() { clear(c.unacked) }

// checkLocked panics if the queue's state is inconsistent.
func (q *Queue) checkLocked() {
	if err := q.invariantLocked(); err != nil {
		panic(fmt.Sprintf("queue %q invariant: %v", q.Name, err))
	}
}

func (q *Queue) invariantLocked() error {
	rs := &q.ready
	// The full check walks every message in memory. On a big queue it runs
	// once every size/fullEvery checks, so that a test that fills a queue
	// stays linear; the counts it checks are cumulative, so a drift is
	// still caught, a few operations late.
	size := len(rs.deadlines)
	for l := range rs.levels {
		size += rs.levels[l].len()
	}
	q.check.checks++
	if size > fullEvery && q.check.checks%(size/fullEvery) != 0 {
		return q.cheapInvariantLocked()
	}
	pending := make(map[uint64]pendingWrite, len(q.pending))
	for i, w := range q.pending {
		if i > 0 && q.pending[i-1].seq >= w.seq {
			return fmt.Errorf("pending not in seq order at %d", i)
		}
		if w.msg == nil || w.seq > q.nextSeq || int(w.level) >= len(rs.levels) {
			return fmt.Errorf("pending %d malformed", w.seq)
		}
		pending[w.seq] = w
	}
	heap := make(map[deadline]bool, len(rs.deadlines))
	for i, d := range rs.deadlines {
		if i > 0 && rs.deadlines[(i-1)/2].at > d.at {
			return fmt.Errorf("deadline heap out of order at %d", i)
		}
		if int(d.level) >= len(rs.levels) {
			return fmt.Errorf("deadline of seq %d at level %d of %d", d.seq, d.level, len(rs.levels))
		}
		if i := rs.find(d); i >= 0 {
			if e := rs.levels[d.level].at(i); e.deadline != d.at {
				return fmt.Errorf("deadline of seq %d is %d in the heap, %d in the queue", d.seq, d.at, e.deadline)
			}
		} // otherwise stale: its message left, expired or is pending
		heap[d] = true
	}

	count, timed := 0, 0
	var bytes, charged int64
	var nonEmpty [4]uint64
	inMemory := 0 // pending messages found in memory
	for l := range rs.levels {
		r := &rs.levels[l]
		level := uint8(l)
		for i := 0; i < r.len(); i++ {
			e := r.at(i)
			if i > 0 && r.at(i-1).seq >= e.seq {
				return fmt.Errorf("level %d not in seq order at %d", l, i)
			}
			if e.seq > q.nextSeq {
				return fmt.Errorf("level %d holds seq %d beyond the last, %d", l, e.seq, q.nextSeq)
			}
			if e.expired {
				if e.msg != nil {
					return fmt.Errorf("expired seq %d keeps its message", e.seq)
				}
				continue
			}
			if e.msg == nil {
				return fmt.Errorf("live seq %d has no message", e.seq)
			}
			count++
			bytes += int64(e.msg.Size())
			charged += messageCost(e.msg)
			w, isPending := pending[e.seq]
			if isPending {
				if w.paged || w.level != level || w.msg != e.msg {
					return fmt.Errorf("pending seq %d is not where its entry is", e.seq)
				}
				inMemory++
			}
			if e.deadline != 0 {
				timed++
				if !isPending && !heap[deadline{at: e.deadline, seq: e.seq, level: level}] {
					return fmt.Errorf("seq %d at level %d has deadline %d that is not in the heap", e.seq, l, e.deadline)
				}
			}
		}
		if r.len() > 0 {
			nonEmpty[l>>6] |= 1 << (l & 63)
		}
	}
	if rs.paged != nil {
		if len(rs.paged) != len(rs.levels) {
			return fmt.Errorf("%d paged parts for %d levels", len(rs.paged), len(rs.levels))
		}
		inFlight := make([]int, len(rs.paged))
		for _, w := range q.pending {
			if w.paged {
				if p := rs.paged[w.level]; p.count == 0 || w.seq < p.from {
					return fmt.Errorf("pending paged seq %d is outside level %d's paged part %+v", w.seq, w.level, p)
				}
				inFlight[w.level]++
			}
		}
		for i, r := range q.page.recent {
			if i > 0 && q.page.recent[i-1].seq >= r.seq {
				return fmt.Errorf("recent paged not in seq order at %d", i)
			}
			if r.sub == 0 || r.msg == nil {
				return fmt.Errorf("recent paged seq %d malformed", r.seq)
			}
			if _, ok := pending[r.seq]; ok {
				return fmt.Errorf("seq %d both recent and pending", r.seq)
			}
			if p := rs.paged[r.level]; p.count == 0 || r.seq < p.from {
				return fmt.Errorf("recent paged seq %d is outside level %d's paged part %+v", r.seq, r.level, p)
			}
			inFlight[r.level]++
		}
		for l, p := range rs.paged {
			if p.count < 0 || p.bytes < 0 || (p.count == 0 && p.bytes != 0) {
				return fmt.Errorf("level %d's paged part is %+v", l, p)
			}
			if p.count < inFlight[l] {
				return fmt.Errorf("level %d counts %d paged, fewer than the %d recent or pending", l, p.count, inFlight[l])
			}
			count += p.count
			bytes += p.bytes
			if p.count > 0 {
				nonEmpty[l>>6] |= 1 << (l & 63)
			}
		}
		if q.page.purging < 0 || q.page.loading != (q.page.loadDone != nil) {
			return fmt.Errorf("loader state: purging %d, loading %v", q.page.purging, q.page.loading)
		}
	} else if q.entries != nil || len(q.page.recent) > 0 || len(q.pending) > 0 {
		return fmt.Errorf("a queue without paging has paging state")
	}
	if q.deleted {
		if count != 0 || len(rs.deadlines) != 0 || len(q.page.recent) != 0 {
			return fmt.Errorf("deleted, yet %d ready, %d deadlines, %d recent", count, len(rs.deadlines), len(q.page.recent))
		}
		if q.unacked != 0 || len(q.consumers) != 0 {
			return fmt.Errorf("deleted, yet %d unacked and %d consumers", q.unacked, len(q.consumers))
		}
	} else if n := len(q.pending) - q.pagedPendingLocked(); inMemory != n {
		return fmt.Errorf("%d pending in memory, %d found there", n, inMemory)
	}

	if count != rs.count || bytes != rs.bytes {
		return fmt.Errorf("ready counts %d messages, %d bytes; the levels hold %d, %d", rs.count, rs.bytes, count, bytes)
	}
	if timed != rs.timed {
		return fmt.Errorf("timed counts %d, the levels hold %d", rs.timed, timed)
	}
	if nonEmpty != rs.nonEmpty {
		return fmt.Errorf("non-empty bitmap %x, the levels say %x", rs.nonEmpty, nonEmpty)
	}
	if rs.budget == nil {
		charged = 0
	}
	if charged != rs.charged {
		return fmt.Errorf("charged %d to the budget for messages costing %d", rs.charged, charged)
	}
	if len(rs.deadlines) > 0 && (q.ttlAt == 0 || q.ttlAt > rs.deadlines[0].at) {
		return fmt.Errorf("the TTL timer is armed for %d, the first deadline is %d", q.ttlAt, rs.deadlines[0].at)
	}
	if q.unacked != len(q.check.unacked) {
		return fmt.Errorf("unacked counts %d, %d are outstanding", q.unacked, len(q.check.unacked))
	}
	n := 0
	for i, g := range q.groups {
		if g.start != n || g.end <= g.start || g.next < 0 || g.next >= g.end-g.start {
			return fmt.Errorf("consumer group %d is %+v", i, g)
		}
		for j := g.start; j < g.end; j++ {
			if q.consumers[j].priority != g.priority {
				return fmt.Errorf("consumer %d of priority %d in the group of %d", j, q.consumers[j].priority, g.priority)
			}
		}
		if i > 0 && q.groups[i-1].priority <= g.priority {
			return fmt.Errorf("consumer groups not by priority at %d", i)
		}
		n = g.end
	}
	if n != len(q.consumers) {
		return fmt.Errorf("consumer groups cover %d of %d consumers", n, len(q.consumers))
	}
	return q.dedupInvariantLocked()
}

// dedupInvariantLocked checks the header values against the messages that
// carry one: each ready message's value is counted, and the counts exceed
// the ready messages by at most the unacked ones (whose messages the queue
// does not keep). A deleted queue holds none.
func (q *Queue) dedupInvariantLocked() error {
	if q.dedup == nil {
		return nil
	}
	if q.deleted {
		if len(q.dedup) != 0 {
			return fmt.Errorf("deleted queue holds %d header values", len(q.dedup))
		}
		return nil
	}
	ready := make(map[string]int)
	carrying := 0
	for l := range q.ready.levels {
		r := &q.ready.levels[l]
		for i := 0; i < r.len(); i++ {
			if e := r.at(i); !e.expired && e.msg.DedupKey != "" {
				ready[e.msg.DedupKey]++
				carrying++
			}
		}
	}
	total := 0
	for k, n := range q.dedup {
		if n <= 0 {
			return fmt.Errorf("header value %q counted %d times", k, n)
		}
		total += n
	}
	for k, n := range ready {
		if q.dedup[k] < n {
			return fmt.Errorf("header value %q on %d ready messages, counted %d", k, n, q.dedup[k])
		}
	}
	if total < carrying || total-carrying > q.unacked {
		return fmt.Errorf("%d header values counted for %d ready messages carrying one and %d unacked", total, carrying, q.unacked)
	}
	return nil
}

// fullEvery is the queue size up to which every check is a full one.
const fullEvery = 64

// cheapInvariantLocked checks what costs no walk over the messages.
func (q *Queue) cheapInvariantLocked() error {
	rs := &q.ready
	if rs.count < 0 || rs.bytes < 0 || rs.timed < 0 || rs.charged < 0 || q.unacked < 0 {
		return fmt.Errorf("negative counts: %d ready, %d bytes, %d timed, %d charged, %d unacked", rs.count, rs.bytes, rs.timed, rs.charged, q.unacked)
	}
	for l := range rs.levels {
		bit := rs.nonEmpty[l>>6]&(1<<(l&63)) != 0
		full := rs.levels[l].len() > 0 || (rs.paged != nil && rs.paged[l].count > 0)
		if bit != full {
			return fmt.Errorf("non-empty bit of level %d is %v", l, bit)
		}
	}
	if q.unacked != len(q.check.unacked) {
		return fmt.Errorf("unacked counts %d, %d are outstanding", q.unacked, len(q.check.unacked))
	}
	if len(rs.deadlines) > 0 && (q.ttlAt == 0 || q.ttlAt > rs.deadlines[0].at) {
		return fmt.Errorf("the TTL timer is armed for %d, the first deadline is %d", q.ttlAt, rs.deadlines[0].at)
	}
	return nil
}
