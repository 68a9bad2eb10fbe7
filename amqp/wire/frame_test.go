package wire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadProtocolHeader(t *testing.T) {
	require.NoError(t, ReadProtocolHeader(bytes.NewReader(ProtocolHeader)))
	require.ErrorIs(t, ReadProtocolHeader(strings.NewReader("AMQP\x00\x00\x09\x00")), ErrBadProtocolHeader)
	require.ErrorIs(t, ReadProtocolHeader(strings.NewReader("GET / HTTP/1.1")), ErrBadProtocolHeader)
	require.ErrorIs(t, ReadProtocolHeader(strings.NewReader("AMQP")), io.ErrUnexpectedEOF)
	require.ErrorIs(t, ReadProtocolHeader(strings.NewReader("")), io.EOF)
}

func TestFrameRoundTrip(t *testing.T) {
	var b []byte
	b = AppendMethodFrame(b, 3, &BasicPublish{Exchange: "ex", RoutingKey: "rk", Mandatory: true})
	props := (&Properties{ContentType: "text/plain", DeliveryMode: 2}).Append(nil)
	b = AppendHeaderFrame(b, 3, ClassBasic, 10, props)
	b = AppendBodyFrames(b, 3, []byte("0123456789"), 13) // 5 bytes per frame
	b = AppendHeartbeat(b)

	r := NewFrameReader(bytes.NewReader(b), 0)
	var d MethodDecoder

	f, err := r.ReadFrame()
	require.NoError(t, err)
	require.Equal(t, uint8(FrameMethod), f.Type)
	require.Equal(t, uint16(3), f.Channel)
	m, err := d.Decode(f.Payload)
	require.NoError(t, err)
	require.Equal(t, &BasicPublish{Exchange: "ex", RoutingKey: "rk", Mandatory: true}, m)

	f, err = r.ReadFrame()
	require.NoError(t, err)
	require.Equal(t, uint8(FrameHeader), f.Type)
	cls, size, gotProps, err := ParseContentHeader(f.Payload)
	require.NoError(t, err)
	require.Equal(t, uint16(ClassBasic), cls)
	require.Equal(t, uint64(10), size)
	require.Equal(t, props, gotProps)

	for _, want := range []string{"01234", "56789"} {
		f, err = r.ReadFrame()
		require.NoError(t, err)
		require.Equal(t, Frame{Type: FrameBody, Channel: 3, Payload: []byte(want)}, f)
	}
	f, err = r.ReadFrame()
	require.NoError(t, err)
	require.Equal(t, uint8(FrameHeartbeat), f.Type)
	require.Empty(t, f.Payload)

	_, err = r.ReadFrame()
	require.ErrorIs(t, err, io.EOF)
}

// headerOnlyReader serves a frame header, then fails the test if read again.
type headerOnlyReader struct {
	t    *testing.T
	hdr  []byte
	done bool
}

func (r *headerOnlyReader) Read(p []byte) (int, error) {
	if r.done {
		r.t.Error("payload was read after the header announced a too-large frame")
		return 0, io.ErrUnexpectedEOF
	}
	r.done = true
	return copy(p, r.hdr), nil
}

func TestFrameReaderErrors(t *testing.T) {
	good := AppendMethodFrame(nil, 1, &ChannelOpen{})
	badEnd := bytes.Clone(good)
	badEnd[len(badEnd)-1] = 0
	badType := bytes.Clone(good)
	badType[0] = 4

	tests := []struct {
		name     string
		in       []byte
		frameMax uint32
		want     error
	}{
		{"bad end", badEnd, 0, ErrBadFrameEnd},
		{"bad type", badType, 0, ErrBadFrameType},
		{"too large", good, uint32(len(good) - 9), ErrFrameTooLarge}, // payload one byte over frame_max (RabbitMQ fudge)
		{"too large without limit", []byte{1, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF}, 0, ErrFrameTooLarge},
		{"empty", nil, 0, io.EOF},
		{"short header", good[:3], 0, io.ErrUnexpectedEOF},
		{"short payload", good[:8], 0, io.ErrUnexpectedEOF},
		{"missing end", good[:len(good)-1], 0, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewFrameReader(bytes.NewReader(tt.in), tt.frameMax).ReadFrame()
			require.ErrorIs(t, err, tt.want)
		})
	}

	t.Run("exact frame max is fine", func(t *testing.T) {
		_, err := NewFrameReader(bytes.NewReader(good), uint32(len(good))).ReadFrame()
		require.NoError(t, err)
	})

	t.Run("too large checked before reading payload", func(t *testing.T) {
		hdr := []byte{FrameBody, 0, 1, 0, 0x10, 0, 0} // 1 MiB payload
		r := NewFrameReader(&headerOnlyReader{t: t, hdr: hdr}, 128<<10)
		_, err := r.ReadFrame()
		require.ErrorIs(t, err, ErrFrameTooLarge)
	})

	t.Run("lying size does not allocate it all", func(t *testing.T) {
		hdr := []byte{FrameBody, 0, 1, 0x07, 0xFF, 0xFF, 0x00} // ~128 MiB announced, nothing sent
		r := NewFrameReader(bytes.NewReader(hdr), 0)
		_, err := r.ReadFrame()
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		require.LessOrEqual(t, cap(r.buf), 2*readChunk)
	})

	t.Run("io error passes through", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := NewFrameReader(io.MultiReader(bytes.NewReader(good[:5]), errReader{boom}), 0).ReadFrame()
		require.ErrorIs(t, err, boom)
	})
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestSetFrameMax(t *testing.T) {
	big := AppendBodyFrames(nil, 1, make([]byte, 100), 0)
	in := append(bytes.Clone(big), big...)
	r := NewFrameReader(bytes.NewReader(in), 0)
	_, err := r.ReadFrame()
	require.NoError(t, err)
	r.SetFrameMax(50)
	_, err = r.ReadFrame()
	require.ErrorIs(t, err, ErrFrameTooLarge)
}

func TestLargeFrameAcrossChunks(t *testing.T) {
	body := bytes.Repeat([]byte("abcdefgh"), (3*readChunk)/8+3)
	in := AppendBodyFrames(nil, 9, body, 0)
	r := NewFrameReader(bytes.NewReader(in), 0)
	f, err := r.ReadFrame()
	require.NoError(t, err)
	require.Equal(t, body, f.Payload)
}

func TestAppendBodyFrames(t *testing.T) {
	tests := []struct {
		name     string
		bodyLen  int
		frameMax uint32
		sizes    []int
	}{
		{"empty body, no frame", 0, 4096, nil},
		{"fits exactly", 4088, 4096, []int{4088}},
		{"one byte over", 4089, 4096, []int{4088, 1}},
		{"two exact frames", 8176, 4096, []int{4088, 4088}},
		{"no limit", 10000, 0, []int{10000}},
		{"tiny frame max clamps to 1 byte", 3, 2, []int{1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := make([]byte, tt.bodyLen)
			for i := range body {
				body[i] = byte(i)
			}
			out := AppendBodyFrames([]byte("prefix"), 7, body, tt.frameMax)
			require.Equal(t, "prefix", string(out[:6]))
			readMax := tt.frameMax
			if readMax < 9 {
				readMax = 0 // the writer clamps; the reader would refuse
			}
			r := NewFrameReader(bytes.NewReader(out[6:]), readMax)
			var got []byte
			var sizes []int
			for {
				f, err := r.ReadFrame()
				if err == io.EOF {
					break
				}
				require.NoError(t, err)
				require.Equal(t, uint8(FrameBody), f.Type)
				require.Equal(t, uint16(7), f.Channel)
				sizes = append(sizes, len(f.Payload))
				got = append(got, f.Payload...)
			}
			require.Equal(t, tt.sizes, sizes)
			require.Equal(t, body, append([]byte{}, got...))
		})
	}
}

func TestAppendFrameWire(t *testing.T) {
	require.Equal(t, []byte{8, 0, 0, 0, 0, 0, 0, 0xCE}, AppendHeartbeat(nil))
	require.Equal(t,
		[]byte{1, 0, 5, 0, 0, 0, 4, 0, 90, 0, 10, 0xCE},
		AppendMethodFrame(nil, 5, &TxSelect{}))
	require.Equal(t,
		[]byte{2, 0, 1, 0, 0, 0, 14, 0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0x10, 0x00, 0xCE},
		AppendHeaderFrame(nil, 1, ClassBasic, 3, []byte{0x10, 0x00}))
}

func TestParseContentHeaderShort(t *testing.T) {
	_, _, _, err := ParseContentHeader(make([]byte, 13))
	require.ErrorIs(t, err, ErrMalformed)
}

func TestFrameReaderHasFrame(t *testing.T) {
	frame := AppendMethodFrame(nil, 1, &BasicAck{DeliveryTag: 7})
	two := append(append([]byte{}, frame...), frame...)
	tests := []struct {
		name  string
		data  []byte
		reads int // frames read before asking
		want  bool
	}{
		{"nothing buffered", frame, 0, false}, // nothing read from the stream yet
		{"second frame whole", two, 1, true},
		{"half a frame left", append(append([]byte{}, frame...), frame[:10]...), 1, false},
		{"only a header left", append(append([]byte{}, frame...), frame[:7]...), 1, false},
		{"all read", frame, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewFrameReader(bytes.NewReader(tt.data), 0)
			for range tt.reads {
				if _, err := r.ReadFrame(); err != nil {
					t.Fatal(err)
				}
			}
			if got := r.HasFrame(); got != tt.want {
				t.Errorf("HasFrame = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestFrameReaderLargeAndSmall reads frames larger than the read buffer
// (copied) between small ones (returned in place).
func TestFrameReaderLargeAndSmall(t *testing.T) {
	big := bytes.Repeat([]byte("abcdefgh"), 40<<10) // 320 KiB
	var data []byte
	data = AppendBodyFrames(data, 1, []byte("small"), 0)
	data = AppendBodyFrames(data, 1, big, 0)
	data = AppendBodyFrames(data, 2, []byte("after"), 0)
	r := NewFrameReader(bytes.NewReader(data), 0)
	for i, want := range [][]byte{[]byte("small"), big, []byte("after")} {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(f.Payload, want) {
			t.Fatalf("frame %d: payload of %d bytes differs", i, len(f.Payload))
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}
}
