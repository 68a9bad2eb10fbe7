package queue

// entry is one message in a queue.
type entry struct {
	msg      *Message
	seq      uint64 // position in the queue: requeued messages go back by it
	deadline int64  // unix milliseconds at which the message expires; 0: never
	// deliveries counts returns after delivery, for the delivery limit.
	deliveries  uint32
	redelivered bool
	// expired marks a message that expired in place (TTL in mid-queue); it
	// is skipped and dropped when it reaches the head.
	expired bool
	// stored: the queue has an entry on disk for the message.
	stored bool
}

// ring is a growable deque of entries kept in seq order. A slice-backed ring
// keeps the hot path free of per-message allocations once it has grown.
type ring struct {
	buf  []entry
	head int
	n    int
}

func (r *ring) len() int { return r.n }

func (r *ring) at(i int) *entry { return &r.buf[(r.head+i)&(len(r.buf)-1)] }

func (r *ring) front() *entry { return &r.buf[r.head] }

func (r *ring) push(e entry) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = e
	r.n++
}

func (r *ring) popFront() entry {
	e := r.buf[r.head]
	r.buf[r.head] = entry{} // drop the reference so the message can be collected
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	if r.n == 0 {
		r.head = 0
		if len(r.buf) > 1024 {
			r.buf = nil // give back the memory of a drained backlog
		}
	}
	return e
}

// search returns the index of the first entry with a seq not below seq.
func (r *ring) search(seq uint64) int {
	lo, hi := 0, r.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.at(m).seq < seq {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// insert puts e at its seq position. Requeued messages land near the head,
// so the entries before the position move one slot towards the front.
func (r *ring) insert(e entry) {
	i := r.search(e.seq)
	if i == r.n {
		r.push(e)
		return
	}
	if r.n == len(r.buf) {
		r.grow()
	}
	mask := len(r.buf) - 1
	if i < r.n/2 {
		r.head = (r.head - 1) & mask
		for j := 0; j < i; j++ {
			*r.at(j) = *r.at(j + 1)
		}
	} else {
		for j := r.n; j > i; j-- {
			r.buf[(r.head+j)&mask] = r.buf[(r.head+j-1)&mask]
		}
	}
	r.n++
	*r.at(i) = e
}

// grow doubles the buffer; its length stays a power of two so indexes wrap with a mask.
func (r *ring) grow() {
	size := 2 * len(r.buf)
	if size == 0 {
		size = 16
	}
	buf := make([]entry, size)
	for i := 0; i < r.n; i++ {
		buf[i] = *r.at(i)
	}
	r.buf, r.head = buf, 0
}

// deadline is one message's expiry, kept in a min-heap so that messages
// expire on time wherever they sit in the queue.
type deadline struct {
	at    int64
	seq   uint64
	level uint8
}

type deadlineHeap []deadline

func (h *deadlineHeap) push(d deadline) {
	*h = append(*h, d)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].at <= s[i].at {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *deadlineHeap) pop() deadline {
	s := *h
	d := s[0]
	last := len(s) - 1
	s[0] = s[last]
	*h = s[:last]
	h.down(0)
	return d
}

// down restores the heap order below i.
func (h deadlineHeap) down(i int) {
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && h[l].at < h[m].at {
			m = l
		}
		if r < len(h) && h[r].at < h[m].at {
			m = r
		}
		if m == i {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
