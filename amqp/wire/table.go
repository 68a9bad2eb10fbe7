package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
	"time"
)

// Table is an AMQP field table in RabbitMQ's dialect. Decoded values have the
// Go types listed at DecodeTable.
type Table map[string]any

// Decimal is a field table decimal ('D'): Value × 10^-Scale.
type Decimal struct {
	Scale uint8
	Value int32
}

// Nesting is not limited, as in RabbitMQ, which accepts any depth a frame
// can carry (every level costs at least 5 bytes: about 210 000 levels in
// the largest frame Warren accepts, 1 MiB). Neither the encoder nor the
// decoder recurses: each keeps the containers it is inside on a stack of its
// own, a few words a level, where recursion took hundreds of bytes of
// goroutine stack a level (TestTableDeepNesting measures both). The encoder
// only guards against a container that contains itself, which decoded values
// never do.

// cycleCheckDepth is the nesting from which the encoder starts tracking the
// containers it is inside, to stop at one that contains itself; values
// nested less deeply cost no tracking (encoding/json does the same).
const cycleCheckDepth = 1000

// AppendTable appends t as a field table: a 4-byte size and the entries,
// keys in sorted order so output is deterministic. Values are encoded by Go type:
//
//	bool 't', int8 'b', uint8 'B', int16 's', uint16 'u', int32 'I', uint32 'i',
//	int64/int 'l', uint64/uint 'l' (if ≤ MaxInt64), float32 'f', float64 'd',
//	Decimal 'D', string 'S', []byte 'x', []any/[]string/[]Table 'A',
//	time.Time 'T' (seconds), Table/map[string]any 'F', nil 'V'.
//
// Any other type, and a container inside itself, are written as 'V' (void)
// rather than failing. Keys over 255 bytes are truncated.
func AppendTable(b []byte, t Table) []byte {
	// Stack arrays keep the small tables of the hot path from allocating.
	var frameBuf [4]openEncoding
	var keyBuf [16]string
	frames, keys := frameBuf[:0], keyBuf[:0]
	var seen map[container]struct{} // from cycleCheckDepth on
	frames, keys, b = openEncoding{}.push(frames, keys, b, t)
	for len(frames) > 0 {
		f := &frames[len(frames)-1]
		if f.next == f.n {
			binary.BigEndian.PutUint32(b[f.start:], uint32(len(b)-f.start-4))
			if f.tracked {
				delete(seen, f.id)
			}
			keys = keys[:f.keys]
			frames = frames[:len(frames)-1]
			continue
		}
		var v any
		if f.table != nil {
			k := keys[f.keys+f.next]
			b = appendShortstr(b, k)
			v = f.table[k]
		} else {
			v = element(f.list, f.next)
		}
		f.next++
		var next openEncoding
		switch x := v.(type) {
		case Table, map[string]any, []any, []string, []Table:
			if len(frames) >= cycleCheckDepth {
				next.id, next.tracked = identify(x), true
				if _, ok := seen[next.id]; ok {
					b = append(b, 'V')
					continue
				}
				if seen == nil {
					seen = make(map[container]struct{})
				}
				seen[next.id] = struct{}{}
			}
			frames, keys, b = next.push(frames, keys, b, x)
		default:
			b = appendValue(b, v)
		}
	}
	return b
}

// openEncoding is a table or array that AppendTable is writing.
type openEncoding struct {
	start   int   // offset of its 4-byte size in the output
	table   Table // a table's entries, or nil for
	list    any   // an array: []any, []string or []Table
	keys    int   // a table's sorted keys start here in the key stack
	next, n int   // entries or elements written, and how many there are
	id      container
	tracked bool // id is in the cycle check's set
}

// push writes the opening of container v and makes it the innermost.
func (e openEncoding) push(frames []openEncoding, keys []string, b []byte, v any) ([]openEncoding, []string, []byte) {
	switch x := v.(type) {
	case map[string]any:
		v = Table(x)
	}
	if t, ok := v.(Table); ok {
		if len(frames) > 0 {
			b = append(b, 'F')
		}
		e.keys = len(keys)
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys[e.keys:])
		e.n = len(t)
		if e.n > 0 {
			e.table = t // nil marks an array, which an empty table may pass for
		}
	} else {
		b = append(b, 'A')
		e.list = v
		switch x := v.(type) {
		case []any:
			e.n = len(x)
		case []string:
			e.n = len(x)
		case []Table:
			e.n = len(x)
		}
		e.keys = len(keys)
	}
	e.start = len(b)
	return append(frames, e), keys, append(b, 0, 0, 0, 0)
}

// element is element i of an array.
func element(list any, i int) any {
	switch x := list.(type) {
	case []any:
		return x[i]
	case []string:
		return x[i]
	case []Table:
		return x[i]
	}
	return nil
}

// container identifies a map or slice by its storage; a slice also by its
// length, since a slice may hold a shorter slice of the same array.
type container struct {
	ptr uintptr
	len int
}

func identify(v any) container {
	rv := reflect.ValueOf(v)
	c := container{ptr: rv.Pointer()}
	if rv.Kind() == reflect.Slice {
		c.len = rv.Len()
	}
	return c
}

// appendValue appends a type letter and a value that is not a container.
func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case bool:
		if v {
			return append(b, 't', 1)
		}
		return append(b, 't', 0)
	case int8:
		return append(b, 'b', byte(v))
	case uint8:
		return append(b, 'B', v)
	case int16:
		return binary.BigEndian.AppendUint16(append(b, 's'), uint16(v))
	case uint16:
		return binary.BigEndian.AppendUint16(append(b, 'u'), v)
	case int32:
		return binary.BigEndian.AppendUint32(append(b, 'I'), uint32(v))
	case uint32:
		return binary.BigEndian.AppendUint32(append(b, 'i'), v)
	case int64:
		return binary.BigEndian.AppendUint64(append(b, 'l'), uint64(v))
	case int:
		return binary.BigEndian.AppendUint64(append(b, 'l'), uint64(v))
	case uint64:
		if v <= math.MaxInt64 {
			return binary.BigEndian.AppendUint64(append(b, 'l'), v)
		}
	case uint:
		if uint64(v) <= math.MaxInt64 {
			return binary.BigEndian.AppendUint64(append(b, 'l'), uint64(v))
		}
	case float32:
		return binary.BigEndian.AppendUint32(append(b, 'f'), math.Float32bits(v))
	case float64:
		return binary.BigEndian.AppendUint64(append(b, 'd'), math.Float64bits(v))
	case Decimal:
		return binary.BigEndian.AppendUint32(append(b, 'D', v.Scale), uint32(v.Value))
	case string:
		return appendLongstr(append(b, 'S'), v)
	case []byte:
		b = binary.BigEndian.AppendUint32(append(b, 'x'), uint32(len(v)))
		return append(b, v...)
	case time.Time:
		return binary.BigEndian.AppendUint64(append(b, 'T'), uint64(v.Unix()))
	}
	return append(b, 'V')
}

// DecodeTable decodes a field table (4-byte size and entries) from the start of
// b and returns it with the number of bytes consumed. An empty table decodes as
// nil. Values have these Go types:
//
//	't' bool, 'b' int8, 'B' uint8, 's' int16, 'u' uint16, 'I' int32, 'i' uint32,
//	'l' int64, 'f' float32, 'd' float64, 'D' Decimal, 'S' string, 'x' []byte,
//	'A' []any, 'T' time.Time (UTC), 'F' Table, 'V' nil.
//
// Strings and byte slices are copied, never aliasing b. Errors wrap ErrMalformed.
func DecodeTable(b []byte) (Table, int, error) {
	if len(b) < 4 {
		return nil, 0, errShort
	}
	size := uint64(binary.BigEndian.Uint32(b))
	if size > uint64(len(b)-4) {
		return nil, 0, errShort
	}
	// The containers being filled, outermost first, on a stack of our own
	// rather than the goroutine's: a deep frame costs a few words a level
	// here, where recursion cost hundreds of bytes of stack.
	var buf [8]openContainer
	stack := append(buf[:0], openContainer{end: int(4 + size)})
	pos := 4
	for {
		top := &stack[len(stack)-1]
		if pos == top.end {
			done := *top
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return done.table, pos, nil
			}
			stack[len(stack)-1].add(done.value())
			continue
		}
		if !top.array {
			klen := int(b[pos])
			if top.end-pos < 1+klen {
				return nil, 0, errShort
			}
			top.key = string(b[pos+1 : pos+1+klen])
			pos += 1 + klen
		}
		if pos == top.end {
			return nil, 0, errShort
		}
		if typ := b[pos]; typ == 'A' || typ == 'F' {
			if top.end-pos < 5 {
				return nil, 0, errShort
			}
			n := int(binary.BigEndian.Uint32(b[pos+1:]))
			if n > top.end-pos-5 {
				return nil, 0, errShort
			}
			stack = append(stack, openContainer{array: typ == 'A', end: pos + 5 + n})
			pos += 5
			continue
		}
		v, n, err := decodeValue(b[pos:top.end])
		if err != nil {
			return nil, 0, err
		}
		top.add(v)
		pos += n
	}
}

// openContainer is a table or array that DecodeTable is filling.
type openContainer struct {
	table Table
	arr   []any
	key   string // where the next value goes in a table
	end   int    // where its contents end in the input
	array bool
}

func (c *openContainer) add(v any) {
	if c.array {
		c.arr = append(c.arr, v)
		return
	}
	if c.table == nil {
		c.table = make(Table)
	}
	c.table[c.key] = v
}

// value is a nested container's decoded value: never nil, so that an empty
// one re-encodes as what it was.
func (c *openContainer) value() any {
	if c.array {
		if c.arr == nil {
			return []any{}
		}
		return c.arr
	}
	if c.table == nil {
		return Table{}
	}
	return c.table
}

// decodeValue decodes one type letter and a value that is not a container.
func decodeValue(b []byte) (any, int, error) {
	if len(b) < 1 {
		return nil, 0, errShort
	}
	typ, p := b[0], b[1:]
	need := func(n int) bool { return len(p) >= n }
	switch typ {
	case 't':
		if need(1) {
			return p[0] != 0, 2, nil
		}
	case 'b':
		if need(1) {
			return int8(p[0]), 2, nil
		}
	case 'B':
		if need(1) {
			return p[0], 2, nil
		}
	case 's':
		if need(2) {
			return int16(binary.BigEndian.Uint16(p)), 3, nil
		}
	case 'u':
		if need(2) {
			return binary.BigEndian.Uint16(p), 3, nil
		}
	case 'I':
		if need(4) {
			return int32(binary.BigEndian.Uint32(p)), 5, nil
		}
	case 'i':
		if need(4) {
			return binary.BigEndian.Uint32(p), 5, nil
		}
	case 'l':
		if need(8) {
			return int64(binary.BigEndian.Uint64(p)), 9, nil
		}
	case 'f':
		if need(4) {
			return math.Float32frombits(binary.BigEndian.Uint32(p)), 5, nil
		}
	case 'd':
		if need(8) {
			return math.Float64frombits(binary.BigEndian.Uint64(p)), 9, nil
		}
	case 'D':
		if need(5) {
			return Decimal{Scale: p[0], Value: int32(binary.BigEndian.Uint32(p[1:]))}, 6, nil
		}
	case 'T':
		if need(8) {
			return time.Unix(int64(binary.BigEndian.Uint64(p)), 0).UTC(), 9, nil
		}
	case 'S', 'x':
		if need(4) {
			n := uint64(binary.BigEndian.Uint32(p))
			if n <= uint64(len(p)-4) {
				if typ == 'S' {
					return string(p[4 : 4+n]), int(5 + n), nil
				}
				return slices.Clone(p[4 : 4+n : 4+n]), int(5 + n), nil
			}
		}
	case 'V':
		return nil, 1, nil
	default:
		return nil, 0, fmt.Errorf("%w: unknown field type %q", ErrMalformed, typ)
	}
	return nil, 0, errShort
}
