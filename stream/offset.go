package stream

import (
	"time"

	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/storage/streamlog"
)

// OffsetKind is what an x-stream-offset asks for.
type OffsetKind uint8

// The x-stream-offset specifications.
const (
	Next OffsetKind = iota // the default: only what is published from now on
	First
	Last      // the start of the newest chunk
	Numeric   // Offset
	Timestamp // the first chunk at or after At
)

// OffsetSpec is a parsed x-stream-offset.
type OffsetSpec struct {
	Kind   OffsetKind
	Offset uint64
	At     time.Time
}

// ParseOffset reads a consumer's x-stream-offset (present says whether the
// argument was given) as RabbitMQ 3.10.8 does: "first", "last", "next", a
// number (negative means the start), a timestamp, or an interval back from
// now ("1h", "7D"). Anything else is the 541 RabbitMQ answers.
func ParseOffset(v any, present bool, now time.Time) (OffsetSpec, error) {
	if !present {
		return OffsetSpec{Kind: Next}, nil
	}
	switch x := v.(type) {
	case string:
		switch x {
		case "first":
			return OffsetSpec{Kind: First}, nil
		case "last":
			return OffsetSpec{Kind: Last}, nil
		case "next":
			return OffsetSpec{Kind: Next}, nil
		}
		if d, ok := ParseAge(x); ok {
			return OffsetSpec{Kind: Timestamp, At: now.Add(-d)}, nil
		}
	case time.Time:
		return OffsetSpec{Kind: Timestamp, At: x}, nil
	default:
		if n, ok := queue.IntArg(v); ok {
			if n < 0 {
				return OffsetSpec{Kind: First}, nil
			}
			return OffsetSpec{Kind: Numeric, Offset: uint64(n)}, nil
		}
	}
	return OffsetSpec{}, errorf(InternalError, "INTERNAL_ERROR")
}

// start resolves a spec against the log: the first offset to deliver.
func (o OffsetSpec) start(l *streamlog.Log) (uint64, error) {
	switch o.Kind {
	case First:
		return l.First(), nil
	case Last:
		return l.LastChunk(), nil
	case Numeric:
		if n := l.Next(); o.Offset > n {
			return n, nil
		}
		if f := l.First(); o.Offset < f {
			return f, nil
		}
		return o.Offset, nil
	case Timestamp:
		return l.OffsetAt(o.At.UnixMilli())
	}
	return l.Next(), nil
}
