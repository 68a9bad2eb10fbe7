package quorum

// fifo is a queue of messages that reuses its backing array: pop moves a
// head index and the array is compacted once the head passes half of it.
type fifo struct {
	items []*message
	head  int
}

func (f *fifo) len() int { return len(f.items) - f.head }

func (f *fifo) push(m *message) { f.items = append(f.items, m) }

func (f *fifo) peek() *message { return f.items[f.head] }

func (f *fifo) pop() *message {
	m := f.items[f.head]
	f.items[f.head] = nil
	f.head++
	if f.head == len(f.items) {
		f.items, f.head = f.items[:0], 0
	} else if f.head > 1024 && f.head*2 > len(f.items) {
		n := copy(f.items, f.items[f.head:])
		clear(f.items[n:])
		f.items, f.head = f.items[:n], 0
	}
	return m
}

// drain removes and returns every message, in order.
func (f *fifo) drain() []*message {
	out := append([]*message(nil), f.items[f.head:]...)
	clear(f.items)
	f.items, f.head = f.items[:0], 0
	return out
}

func (f *fifo) each(fn func(*message)) {
	for _, m := range f.items[f.head:] {
		fn(m)
	}
}
