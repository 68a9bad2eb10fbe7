package wire

import (
	"encoding/binary"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// entry builds one table entry: shortstr key, type letter, value bytes.
func entry(key string, typ byte, val ...byte) []byte {
	b := append([]byte{byte(len(key))}, key...)
	b = append(b, typ)
	return append(b, val...)
}

// sized prefixes body with its 4-byte size.
func sized(parts ...[]byte) []byte {
	var body []byte
	for _, p := range parts {
		body = append(body, p...)
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func TestTableValueTypes(t *testing.T) {
	ts := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		name  string
		value any
		wire  []byte // type letter and value
	}{
		{"bool true", true, []byte{'t', 1}},
		{"bool false", false, []byte{'t', 0}},
		{"int8", int8(-2), []byte{'b', 0xFE}},
		{"uint8", uint8(200), []byte{'B', 200}},
		{"int16", int16(-2), []byte{'s', 0xFF, 0xFE}},
		{"uint16", uint16(0xABCD), []byte{'u', 0xAB, 0xCD}},
		{"int32", int32(-2), []byte{'I', 0xFF, 0xFF, 0xFF, 0xFE}},
		{"uint32", uint32(0xDEADBEEF), []byte{'i', 0xDE, 0xAD, 0xBE, 0xEF}},
		{"int64", int64(-2), []byte{'l', 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE}},
		{"float32", float32(1.5), append([]byte{'f'}, binary.BigEndian.AppendUint32(nil, math.Float32bits(1.5))...)},
		{"float64", 2.25, append([]byte{'d'}, binary.BigEndian.AppendUint64(nil, math.Float64bits(2.25))...)},
		{"decimal", Decimal{Scale: 2, Value: -314}, []byte{'D', 2, 0xFF, 0xFF, 0xFE, 0xC6}},
		{"longstr", "héllo", append([]byte{'S', 0, 0, 0, 6}, "héllo"...)},
		{"empty longstr", "", []byte{'S', 0, 0, 0, 0}},
		{"bytes", []byte{1, 2, 3}, []byte{'x', 0, 0, 0, 3, 1, 2, 3}},
		{"timestamp", ts, append([]byte{'T'}, binary.BigEndian.AppendUint64(nil, uint64(ts.Unix()))...)},
		{"void", nil, []byte{'V'}},
		{"array", []any{int32(1), "a", nil, true},
			append([]byte{'A'}, sized([]byte{'I', 0, 0, 0, 1}, []byte{'S', 0, 0, 0, 1, 'a'}, []byte{'V'}, []byte{'t', 1})...)},
		{"empty array", []any{}, []byte{'A', 0, 0, 0, 0}},
		{"nested table", Table{"k": uint8(1), "a": Table{}},
			append([]byte{'F'}, sized(entry("a", 'F', 0, 0, 0, 0), entry("k", 'B', 1))...)},
		{"array of tables", []any{Table{"x": int64(1)}, []any{"y"}},
			append([]byte{'A'}, sized(
				append([]byte{'F'}, sized(entry("x", 'l', 0, 0, 0, 0, 0, 0, 0, 1))...),
				append([]byte{'A'}, sized([]byte{'S', 0, 0, 0, 1, 'y'})...),
			)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := sized(append([]byte{3}, append([]byte("key"), tt.wire...)...))
			require.Equal(t, want, AppendTable(nil, Table{"key": tt.value}))
			got, n, err := DecodeTable(want)
			require.NoError(t, err)
			require.Equal(t, len(want), n)
			require.Equal(t, Table{"key": tt.value}, got)
		})
	}
}

// TestTableEncodeConveniences covers Go types that encode to a letter but decode as another type.
func TestTableEncodeConveniences(t *testing.T) {
	tests := []struct {
		name string
		in   any
		out  any
	}{
		{"int", 5, int64(5)},
		{"uint64", uint64(7), int64(7)},
		{"uint64 too big", uint64(math.MaxUint64), nil},
		{"uint", uint(9), int64(9)},
		{"map", map[string]any{"a": "b"}, Table{"a": "b"}},
		{"[]string", []string{"a", "b"}, []any{"a", "b"}},
		{"[]Table", []Table{{"a": true}}, []any{Table{"a": true}}},
		{"unsupported", struct{}{}, nil},
		{"channel", make(chan int), nil},
		{"local time", time.Unix(100, 0).In(time.FixedZone("x", 3600)), time.Unix(100, 0).UTC()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := DecodeTable(AppendTable(nil, Table{"k": tt.in}))
			require.NoError(t, err)
			require.Equal(t, Table{"k": tt.out}, got)
		})
	}
}

func TestTableSortedKeys(t *testing.T) {
	tab := Table{}
	for _, k := range strings.Fields("z y x w v u t s r q p o n m l k j i h g f e d c b a") {
		tab[k] = k
	}
	first := AppendTable(nil, tab)
	for range 20 {
		require.Equal(t, first, AppendTable(nil, tab))
	}
	require.Equal(t, byte('a'), first[5])
}

func TestTableDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"short size", []byte{0, 0, 0}},
		{"size past end", []byte{0, 0, 0, 5, 1, 'k', 'V'}},
		{"huge size", []byte{0xFF, 0xFF, 0xFF, 0xFF}},
		{"key past end", sized([]byte{9, 'k'})},
		{"missing type", sized([]byte{1, 'k'})},
		{"unknown type", sized(entry("k", 'Z'))},
		{"short int", sized(entry("k", 'I', 0, 0))},
		{"longstr past end", sized(entry("k", 'S', 0, 0, 0, 9, 'a'))},
		{"huge longstr", sized(entry("k", 'S', 0xFF, 0xFF, 0xFF, 0xFF))},
		{"bytes past end", sized(entry("k", 'x', 0, 0, 0, 2, 1))},
		{"array past end", sized(entry("k", 'A', 0, 0, 0, 9))},
		{"bad value in array", sized(entry("k", 'A', 0, 0, 0, 1, 'Z'))},
		{"nested table past end", sized(entry("k", 'F', 0, 0, 0, 9))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodeTable(tt.in)
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
}

// TestTableDeepNesting: tables and arrays nest as deep as a frame can carry,
// as RabbitMQ allows (about 210 000 levels in Warren's largest frame,
// 1 MiB), and round-trip; the stack that takes is measured. A table that
// contains itself (only Go code can build one) still encodes.
func TestTableDeepNesting(t *testing.T) {
	const frame = 1 << 20
	// Built outside in: an array level is 'A' and the size of what it holds.
	levels := (frame - 16) / 5
	deepArrays := make([]byte, 0, frame)
	for k := levels; k > 0; k-- {
		deepArrays = binary.BigEndian.AppendUint32(append(deepArrays, 'A'), uint32(1+5*(k-1)))
	}
	deepArrays = append(deepArrays, 'V')
	// A table level is its size and one entry: empty key, 'F', the next table.
	levels = (frame - 16) / 6
	deepTables := make([]byte, 0, frame)
	for k := levels; k > 0; k-- {
		deepTables = append(binary.BigEndian.AppendUint32(deepTables, uint32(6*k)), 0, 'F')
	}
	deepTables = binary.BigEndian.AppendUint32(deepTables, 0)
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"arrays", sized(append([]byte{1, 'k'}, deepArrays...))},
		{"tables", deepTables},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got Table
			var err error
			var enc []byte
			var took [2]time.Duration
			var stack [2]int64
			measure := func(i int, f func()) {
				done := make(chan struct{})
				go func() { // a fresh goroutine, so its stack is this call's
					defer close(done)
					var before, after runtime.MemStats
					runtime.ReadMemStats(&before)
					start := time.Now()
					f()
					took[i] = time.Since(start)
					runtime.ReadMemStats(&after)
					stack[i] = int64(after.StackInuse) - int64(before.StackInuse)
				}()
				<-done
			}
			measure(0, func() { got, _, err = DecodeTable(tc.in) })
			require.NoError(t, err)
			depth := 0
			for v := any(got); ; depth++ {
				switch x := v.(type) {
				case Table:
					v = x[map[string]string{"arrays": "k", "tables": ""}[tc.name]]
					continue
				case []any:
					v = x[0]
					continue
				}
				break
			}
			require.Greater(t, depth, frame/6-100)
			measure(1, func() { enc = AppendTable(nil, got) })
			require.Equal(t, tc.in, enc, "round trip")
			t.Logf("%d levels in %d bytes: decoded in %v (stack %+d KiB), encoded in %v (stack %+d KiB)",
				depth, len(tc.in), took[0], stack[0]>>10, took[1], stack[1]>>10)
		})
	}

	self := Table{"leaf": true}
	self["me"] = self
	var enc []byte
	require.NotPanics(t, func() { enc = AppendTable(nil, self) })
	got, _, err := DecodeTable(enc)
	require.NoError(t, err)
	depth := 0
	for x := got; x != nil; depth++ {
		require.Equal(t, true, x["leaf"])
		x, _ = x["me"].(Table)
	}
	require.Equal(t, cycleCheckDepth+1, depth, "nested until the check finds the cycle, then void")
}

func TestTableDoesNotAlias(t *testing.T) {
	in := sized(entry("s", 'S', 0, 0, 0, 1, 'a'), entry("x", 'x', 0, 0, 0, 1, 'b'))
	got, _, err := DecodeTable(in)
	require.NoError(t, err)
	for i := range in {
		in[i] = 0
	}
	require.Equal(t, Table{"s": "a", "x": []byte{'b'}}, got)
}

func TestEmptyTable(t *testing.T) {
	require.Equal(t, []byte{0, 0, 0, 0}, AppendTable(nil, nil))
	got, n, err := DecodeTable([]byte{0, 0, 0, 0, 9})
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.Nil(t, got)
}
