package wire

import (
	"encoding/binary"
	"fmt"
	"math"
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

// MaxTableDepth bounds nesting of tables and arrays, so a hostile frame cannot
// exhaust the stack. The top-level table is depth 0.
const MaxTableDepth = 100

// AppendTable appends t as a field table: a 4-byte size and the entries,
// keys in sorted order so output is deterministic. Values are encoded by Go type:
//
//	bool 't', int8 'b', uint8 'B', int16 's', uint16 'u', int32 'I', uint32 'i',
//	int64/int 'l', uint64/uint 'l' (if ≤ MaxInt64), float32 'f', float64 'd',
//	Decimal 'D', string 'S', []byte 'x', []any/[]string/[]Table 'A',
//	time.Time 'T' (seconds), Table/map[string]any 'F', nil 'V'.
//
// Any other type, and containers nested deeper than MaxTableDepth, are written
// as 'V' (void) rather than failing. Keys over 255 bytes are truncated.
func AppendTable(b []byte, t Table) []byte {
	return appendTable(b, t, 0)
}

func appendTable(b []byte, t Table, depth int) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	if len(t) > 0 {
		// A stack array avoids allocating for the small tables of the hot path.
		var arr [16]string
		keys := arr[:0]
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = appendShortstr(b, k)
			b = appendValue(b, t[k], depth)
		}
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

// appendArray appends an 'A' body: a 4-byte size and the values.
func appendArray[T any](b []byte, vs []T, depth int) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	for _, v := range vs {
		b = appendValue(b, v, depth)
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

// appendValue appends a type letter and value; depth is that of the container holding it.
func appendValue(b []byte, v any, depth int) []byte {
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
	case Table:
		if depth < MaxTableDepth {
			return appendTable(append(b, 'F'), v, depth+1)
		}
	case map[string]any:
		if depth < MaxTableDepth {
			return appendTable(append(b, 'F'), Table(v), depth+1)
		}
	case []any:
		if depth < MaxTableDepth {
			return appendArray(append(b, 'A'), v, depth+1)
		}
	case []string:
		if depth < MaxTableDepth {
			return appendArray(append(b, 'A'), v, depth+1)
		}
	case []Table:
		if depth < MaxTableDepth {
			return appendArray(append(b, 'A'), v, depth+1)
		}
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
	return decodeTable(b, 0)
}

func decodeTable(b []byte, depth int) (Table, int, error) {
	if depth > MaxTableDepth {
		return nil, 0, errTooDeep
	}
	if len(b) < 4 {
		return nil, 0, errShort
	}
	size := uint64(binary.BigEndian.Uint32(b))
	if size > uint64(len(b)-4) {
		return nil, 0, errShort
	}
	body := b[4 : 4+size]
	var t Table
	for len(body) > 0 {
		klen := int(body[0])
		if len(body) < 1+klen {
			return nil, 0, errShort
		}
		key := string(body[1 : 1+klen])
		body = body[1+klen:]
		v, n, err := decodeValue(body, depth)
		if err != nil {
			return nil, 0, err
		}
		body = body[n:]
		if t == nil {
			t = make(Table)
		}
		t[key] = v
	}
	return t, int(4 + size), nil
}

var errTooDeep = fmt.Errorf("%w: field table nested deeper than %d", ErrMalformed, MaxTableDepth)

// decodeValue decodes one type letter and value; depth is that of its container.
func decodeValue(b []byte, depth int) (any, int, error) {
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
	case 'A':
		if depth >= MaxTableDepth {
			return nil, 0, errTooDeep
		}
		if need(4) {
			n := uint64(binary.BigEndian.Uint32(p))
			if n <= uint64(len(p)-4) {
				arr, err := decodeArray(p[4:4+n], depth+1)
				if err != nil {
					return nil, 0, err
				}
				return arr, int(5 + n), nil
			}
		}
	case 'F':
		if depth >= MaxTableDepth {
			return nil, 0, errTooDeep
		}
		t, n, err := decodeTable(p, depth+1)
		if err != nil {
			return nil, 0, err
		}
		if t == nil {
			// A nested empty table stays a Table so that it re-encodes as 'F'.
			t = Table{}
		}
		return t, 1 + n, nil
	case 'V':
		return nil, 1, nil
	default:
		return nil, 0, fmt.Errorf("%w: unknown field type %q", ErrMalformed, typ)
	}
	return nil, 0, errShort
}

func decodeArray(body []byte, depth int) ([]any, error) {
	arr := []any{}
	for len(body) > 0 {
		v, n, err := decodeValue(body, depth)
		if err != nil {
			return nil, err
		}
		body = body[n:]
		arr = append(arr, v)
	}
	return arr, nil
}
