package queue

// ring is a growable FIFO of deliveries. A slice-backed ring keeps the queue's
// hot path free of per-message allocations once it has grown.
type ring struct {
	buf  []Delivery
	head int
	n    int
}

func (r *ring) len() int { return r.n }

func (r *ring) push(d Delivery) {
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = d
	r.n++
}

func (r *ring) peek() *Delivery { return &r.buf[r.head] }

func (r *ring) pop() Delivery {
	d := r.buf[r.head]
	r.buf[r.head] = Delivery{} // drop the reference so the message can be collected
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
	if r.n == 0 {
		r.head = 0
		if len(r.buf) > 1024 {
			r.buf = nil // give back the memory of a drained backlog
		}
	}
	return d
}

// grow doubles the buffer; its length stays a power of two so indexes wrap with a mask.
func (r *ring) grow() {
	size := 2 * len(r.buf)
	if size == 0 {
		size = 16
	}
	buf := make([]Delivery, size)
	for i := 0; i < r.n; i++ {
		buf[i] = r.buf[(r.head+i)&(len(r.buf)-1)]
	}
	r.buf, r.head = buf, 0
}

// seqHeap is a min-heap of requeued deliveries ordered by their original
// position, so that requeued messages are delivered again in queue order.
type seqHeap []Delivery

func (h *seqHeap) push(d Delivery) {
	*h = append(*h, d)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p].seq <= s[i].seq {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *seqHeap) pop() Delivery {
	s := *h
	d := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s[last] = Delivery{}
	s = s[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s[l].seq < s[m].seq {
			m = l
		}
		if r < len(s) && s[r].seq < s[m].seq {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return d
}
