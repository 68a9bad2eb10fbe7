package exchange

import "slices"

// chunkSize bounds what one change to a bag copies.
const chunkSize = 128

// bag is an unordered persistent collection: chunks of up to chunkSize
// elements, all full but the last. Adding writes past the end of the last
// chunk (published snapshots never read there) and copies the chunk list;
// removing moves the last element into the hole, copying two chunks and the
// chunk list. So a change costs O(chunkSize + n/chunkSize), and 10 000
// queues bound to one fanout exchange can be bound and deleted one by one
// without quadratic copying, while routing still walks plain slices.
type bag[T any] struct {
	chunks [][]T
	n      int
}

func (b bag[T]) len() int { return b.n }

// add returns the bag with v appended and v's position.
func (b bag[T]) add(v T) (bag[T], int) {
	chunks := make([][]T, len(b.chunks), len(b.chunks)+1)
	copy(chunks, b.chunks)
	if k := len(chunks); k > 0 && len(chunks[k-1]) < chunkSize {
		chunks[k-1] = append(chunks[k-1], v)
	} else {
		chunks = append(chunks, []T{v})
	}
	return bag[T]{chunks: chunks, n: b.n + 1}, b.n
}

// removeAt returns the bag without the element at pos. If another element
// moved into pos, it is returned with moved true.
func (b bag[T]) removeAt(pos int) (nb bag[T], mv T, moved bool) {
	lc := len(b.chunks) - 1
	last := b.chunks[lc]
	lastV := last[len(last)-1]
	chunks := slices.Clone(b.chunks)
	if len(last) == 1 {
		chunks = chunks[:lc]
	} else {
		// A copy: a later add must not write where published snapshots read.
		chunks[lc] = slices.Clone(last[:len(last)-1])
	}
	nb = bag[T]{chunks: chunks, n: b.n - 1}
	if pos == b.n-1 {
		return nb, mv, false
	}
	ci, pi := pos/chunkSize, pos%chunkSize
	c := slices.Clone(chunks[ci])
	c[pi] = lastV
	chunks[ci] = c
	return nb, lastV, true
}
