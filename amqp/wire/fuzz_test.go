package wire

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"
)

// seedFrames returns real frames built with the encoders.
func seedFrames() [][]byte {
	props := (&Properties{
		ContentType: "application/json", Headers: Table{"x-death": []any{Table{"count": int64(1), "time": time.Unix(1, 0).UTC()}}},
		DeliveryMode: 2, Priority: 1, MessageID: "m", Timestamp: 1700000000, Present: FlagClusterID,
	}).Append(nil)
	var out [][]byte
	for i, m := range allMethods() {
		fill(m, i)
		out = append(out, AppendMethodFrame(nil, uint16(i), m))
	}
	out = append(out,
		AppendHeaderFrame(nil, 1, ClassBasic, 5, props),
		AppendBodyFrames(nil, 1, []byte("hello"), 0),
		AppendHeartbeat(nil),
		AppendMethodFrame(nil, 0, &ConnectionStartOk{
			ClientProperties: Table{"product": "x", "capabilities": Table{"publisher_confirms": true}},
			Mechanism:        "PLAIN", Response: "\x00guest\x00guest", Locale: "en_US",
		}),
	)
	return out
}

// allocBound fails if fn allocates more than k bytes per input byte (plus
// slack). It guards against allocating what a length field claims (up to
// gigabytes), not against a few stray KiB: the counter is process-wide, and
// while fuzzing the engine allocates beside the test, so a floor of 64 KiB of
// slack keeps it from failing on noise.
func allocBound(t *testing.T, n int, slack uint64, fn func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	const k = 128
	slack = max(slack, 64<<10)
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(n)*k+slack; got > limit {
		t.Fatalf("allocated %d bytes for %d input bytes (limit %d)", got, n, limit)
	}
}

func FuzzFrameReader(f *testing.F) {
	var stream []byte
	for _, fr := range seedFrames() {
		f.Add(fr, uint32(0))
		stream = append(stream, fr...)
	}
	f.Add(stream, uint32(4096))
	f.Add([]byte{1, 0, 0, 0xFF, 0xFF, 0xFF, 0xF0}, uint32(0))
	f.Fuzz(func(t *testing.T, in []byte, frameMax uint32) {
		// bufio's 64 KiB buffer and one read chunk are the fixed cost.
		allocBound(t, len(in), 64<<10+2*readChunk+4096, func() {
			r := NewFrameReader(bytes.NewReader(in), frameMax)
			var d MethodDecoder
			var p Properties
			for {
				fr, err := r.ReadFrame()
				if err != nil {
					if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
						!errors.Is(err, ErrFrameTooLarge) && !errors.Is(err, ErrBadFrameEnd) && !errors.Is(err, ErrBadFrameType) {
						t.Fatalf("unexpected error %v", err)
					}
					return
				}
				// The payload may be frame_max bytes: RabbitMQ's fudge of one
				// frame overhead, which the reader copies.
				if frameMax > 0 && len(fr.Payload) > int(frameMax) {
					t.Fatalf("payload of %d bytes passed frame_max %d", len(fr.Payload), frameMax)
				}
				switch fr.Type {
				case FrameMethod:
					_, _ = d.Decode(fr.Payload)
				case FrameHeader:
					if _, _, props, err := ParseContentHeader(fr.Payload); err == nil {
						_ = p.Decode(props)
					}
				}
			}
		})
	})
}

func FuzzMethodDecode(f *testing.F) {
	for _, fr := range seedFrames() {
		if fr[0] == FrameMethod {
			f.Add(fr[7 : len(fr)-1])
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var d MethodDecoder
		var m Method
		var err error
		allocBound(t, len(payload), 4096, func() { m, err = d.Decode(payload) })
		if err != nil {
			var unknown *UnknownMethodError
			if !errors.Is(err, ErrMalformed) && !errors.As(err, &unknown) {
				t.Fatalf("error neither malformed nor unknown: %v", err)
			}
			return
		}
		// Re-encoding is canonical: a second round trip is byte-exact.
		enc := m.Append(nil)
		m2, err := d.Decode(enc)
		if err != nil {
			t.Fatalf("re-decode %s: %v", m.Name(), err)
		}
		if enc2 := m2.Append(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("%s: not canonical\n%x\n%x", m.Name(), enc, enc2)
		}
	})
}

func FuzzTable(f *testing.F) {
	f.Add(AppendTable(nil, Table{
		"b": true, "i8": int8(-1), "u8": uint8(1), "i16": int16(-1), "u16": uint16(1), "i32": int32(-1),
		"u32": uint32(1), "i64": int64(-1), "f32": float32(1.5), "f64": 2.5, "dec": Decimal{2, 314},
		"s": "str", "x": []byte{1}, "a": []any{int32(1), "a", nil, []any{}}, "t": time.Unix(5, 0).UTC(),
		"f": Table{"n": Table{}}, "v": nil,
	}))
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		var tab Table
		var err error
		allocBound(t, len(in), 4096, func() { tab, _, err = DecodeTable(in) })
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		enc := AppendTable(nil, tab)
		tab2, n, err := DecodeTable(enc)
		if err != nil || n != len(enc) {
			t.Fatalf("re-decode: n=%d err=%v", n, err)
		}
		if enc2 := AppendTable(nil, tab2); !bytes.Equal(enc, enc2) {
			t.Fatalf("not canonical\n%x\n%x", enc, enc2)
		}
	})
}

func FuzzProperties(f *testing.F) {
	for _, fr := range seedFrames() {
		if fr[0] == FrameHeader {
			f.Add(fr[7+12 : len(fr)-1])
		}
	}
	f.Add((&Properties{Present: 0xFFFC}).Append(nil))
	f.Add([]byte{0x80, 0x01, 0x00, 0x00, 1, 'a'})
	f.Fuzz(func(t *testing.T, in []byte) {
		var p Properties
		var err error
		allocBound(t, len(in), 4096, func() { err = p.Decode(in) })
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		enc := p.Append(nil)
		if len(in) >= 2 && in[1]&1 == 0 && p.Headers == nil && !bytes.Equal(in, enc) {
			// Without continuation words or a table to reorder, decode+append is byte-exact.
			t.Fatalf("not byte-exact\n%x\n%x", in, enc)
		}
		var p2 Properties
		if err := p2.Decode(enc); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if enc2 := p2.Append(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("not canonical\n%x\n%x", enc, enc2)
		}
	})
}
