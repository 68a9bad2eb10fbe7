package exchange

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func q(name string) Destination { return Destination{Name: name} }
func x(name string) Destination { return Destination{Name: name, Exchange: true} }

// table stands in for the codec's named table type, which nested values carry.
type table map[string]any

type bind struct {
	dest Destination
	key  string
	args map[string]any
}

func names(ds []Destination) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Name
		if d.Exchange {
			out[i] = "x:" + d.Name
		}
	}
	slices.Sort(out)
	return out
}

func newWith(t *testing.T, kind Kind, binds ...bind) *Exchange {
	t.Helper()
	e := New("ex", kind, false, false, false, nil)
	for _, b := range binds {
		_, err := e.Bind(b.dest, b.key, b.args)
		require.NoError(t, err)
	}
	return e
}

func TestParseKind(t *testing.T) {
	for _, k := range []Kind{Direct, Fanout, Topic, Headers, ConsistentHash, Random, Delayed, Deduplication} {
		got, ok := ParseKind(k.String())
		assert.True(t, ok)
		assert.Equal(t, k, got)
	}
	for _, s := range []string{"", "Direct", "x-consistent-hash-exchange", "match"} {
		_, ok := ParseKind(s)
		assert.False(t, ok, s)
	}
	assert.Equal(t, "Kind(99)", Kind(99).String())
}

func TestDirect(t *testing.T) {
	e := newWith(t, Direct,
		bind{q("q1"), "a", nil},
		bind{q("q2"), "a", nil},
		bind{q("q1"), "b", nil},
		bind{q("q3"), "b", map[string]any{"k": "v"}},
		bind{q("q3"), "b", map[string]any{"k": "w"}}, // same queue twice on one key
		bind{x("e1"), "a", nil},
		bind{q("empty"), "", nil},
	)
	tests := []struct {
		key  string
		want []string
	}{
		{"a", []string{"q1", "q2", "x:e1"}},
		{"b", []string{"q1", "q3"}},
		{"", []string{"empty"}},
		{"c", []string{}},
		{"A", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			assert.Equal(t, tt.want, names(e.Route(tt.key, nil, nil)))
		})
	}
}

func TestFanout(t *testing.T) {
	e := newWith(t, Fanout,
		bind{q("q1"), "a", nil},
		bind{q("q1"), "b", nil},
		bind{q("q2"), "", nil},
		bind{x("e"), "", nil},
	)
	for _, key := range []string{"", "a", "zzz"} {
		assert.Equal(t, []string{"q1", "q2", "x:e"}, names(e.Route(key, nil, nil)))
	}
	assert.True(t, e.Unbind(q("q1"), "a", nil))
	assert.Equal(t, []string{"q1", "q2", "x:e"}, names(e.Route("", nil, nil)), "q1 still bound by b")
	assert.True(t, e.Unbind(q("q1"), "b", nil))
	assert.Equal(t, []string{"q2", "x:e"}, names(e.Route("", nil, nil)))
}

// The topic cases follow rabbit_db_topic_exchange: split_topic_key makes ""
// zero words and keeps empty words elsewhere; trie_match lets "#" match
// zero or more words and "*" exactly one.
func TestTopicMatch(t *testing.T) {
	tests := []struct {
		binding string
		key     string
		match   bool
	}{
		{"#", "", true},
		{"#", "a", true},
		{"#", "a.b.c", true},
		{"#", ".", true},
		{"a.#", "a", true},
		{"a.#", "a.b", true},
		{"a.#", "a.b.c", true},
		{"a.#", "b", false},
		{"a.#", "", false},
		{"a.#", "a.", true},
		{"#.a", "a", true},
		{"#.a", "b.a", true},
		{"#.a", "b.c.a", true},
		{"#.a", "a.b", false},
		{"#.a", "", false},
		{"*", "", false},
		{"*", "a", true},
		{"*", "a.b", false},
		{"*", ".", false},
		{"*.*", ".", true},
		{"*", "#", true},
		{"*", "*", true},
		{"", "", true},
		{"", "a", false},
		{"a", "", false},
		{"a", "a", true},
		{"a", "a.", false},
		{"a.", "a.", true},
		{"a.*", "a.", true},
		{"a.*", "a", false},
		{"a..b", "a..b", true},
		{"a.*.b", "a..b", true},
		{"a.b", "a..b", false},
		{"a.#.b", "a..b", true},
		{"a.#.b", "a.b", true},
		{".a", ".a", true},
		{"*.a", ".a", true},
		{"a.*.#", "a", false},
		{"a.*.#", "a.b", true},
		{"a.*.#", "a.b.c.d", true},
		{"#.#", "", true},
		{"#.#", "a", true},
		{"#.#", "a.b.c", true},
		{"#.*", "", false},
		{"#.*", "a", true},
		{"#.*", "a.b", true},
		{"*.#", "", false},
		{"*.#", "a", true},
		{"#.a.#", "a", true},
		{"#.a.#", "x.a.y", true},
		{"#.a.#", "x.y", false},
		{"#.*.#.*.#", "a", false},
		{"#.*.#.*.#", "a.b", true},
		{"a.b", "a.*", false},
		{"a.*", "a.*", true},
		{"a.#", "a.#", true},
		{"a.b.c", "a.b.c", true},
		{"a.b.c", "a.b", false},
		{"a.b", "a.b.c", false},
		{"order.*.placed", "order.eu.placed", true},
		{"order.#.placed", "order.eu.de.placed", true},
		{"order.#.placed", "order.eu.de.shipped", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q~%q", tt.binding, tt.key), func(t *testing.T) {
			e := newWith(t, Topic, bind{q("q"), tt.binding, nil})
			got := e.Route(tt.key, nil, nil)
			assert.Equal(t, tt.match, len(got) == 1, "routed to %v", got)
			assert.Equal(t, tt.match, refMatch(splitKey(tt.binding), splitKey(tt.key)), "reference matcher disagrees")
		})
	}
}

func TestTopicDedupAndMany(t *testing.T) {
	e := newWith(t, Topic,
		bind{q("q1"), "a.*", nil},
		bind{q("q1"), "a.#", nil},
		bind{q("q1"), "#", nil},
		bind{q("q2"), "a.b", nil},
		bind{x("e"), "*.b", nil},
	)
	assert.Equal(t, []string{"q1", "q2", "x:e"}, names(e.Route("a.b", nil, nil)))
	assert.Equal(t, []string{"q1"}, names(e.Route("", nil, nil)))

	// More destinations than the linear dedup handles.
	e = New("ex", Topic, false, false, false, nil)
	for i := range 100 {
		for _, k := range []string{"#", "a.#", "*.b", "a.b", "#.b"} {
			_, err := e.Bind(q(fmt.Sprint("q", i)), k, nil)
			require.NoError(t, err)
		}
	}
	got := e.Route("a.b", nil, nil)
	assert.Len(t, got, 100)
	assert.Len(t, names(got), len(slices.Compact(names(got))))
}

func TestTopicManyActiveNodes(t *testing.T) {
	// Many "*" and "#" paths alive at once exercise the marked node sets.
	e := New("ex", Topic, false, false, false, nil)
	var keys []string
	for i := range 40 {
		k := fmt.Sprintf("w%d.#", i)
		keys = append(keys, k, fmt.Sprintf("#.w%d.#", i), fmt.Sprintf("*.*.w%d", i), "#.#.#.#.#.#")
	}
	for i, k := range keys {
		_, err := e.Bind(q(fmt.Sprint("q", i%50)), k, nil)
		require.NoError(t, err)
	}
	for _, key := range []string{"w1.w2.w3.w4.w5", "", "a", "w39.x.w0", strings.Repeat("w7.", 60) + "w7"} {
		var want []string
		for i, k := range keys {
			if refMatch(splitKey(k), splitKey(key)) {
				want = append(want, fmt.Sprint("q", i%50))
			}
		}
		slices.Sort(want)
		assert.Equal(t, slices.Compact(want), names(e.Route(key, nil, nil)), key)
	}
}

// refMatch is a plain recursive reading of AMQP topic matching.
func refMatch(b, k []string) bool {
	if len(b) == 0 {
		return len(k) == 0
	}
	switch b[0] {
	case "#":
		for i := 0; i <= len(k); i++ {
			if refMatch(b[1:], k[i:]) {
				return true
			}
		}
		return false
	case "*":
		return len(k) > 0 && refMatch(b[1:], k[1:])
	}
	return len(k) > 0 && k[0] == b[0] && refMatch(b[1:], k[1:])
}

func TestTopicProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"a", "b", "c", "", "*", "#"}
	keyWords := []string{"a", "b", "c", "", "*", "#"}
	gen := func(ws []string, maxLen int) string {
		n := r.IntN(maxLen + 1)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = ws[r.IntN(len(ws))]
		}
		return strings.Join(parts, ".")
	}
	for round := range 30 {
		e := New("ex", Topic, false, false, false, nil)
		var bs []bind
		for i := range 60 {
			b := bind{q(fmt.Sprint("q", i%20)), gen(words, 5), nil}
			bs = append(bs, b)
			_, err := e.Bind(b.dest, b.key, nil)
			require.NoError(t, err)
		}
		// Unbind some, so that pruning is exercised too.
		for i := 0; i < len(bs); i += 3 {
			e.Unbind(bs[i].dest, bs[i].key, nil)
		}
		for range 200 {
			key := gen(keyWords[:4], 6)
			if r.IntN(10) == 0 {
				key = gen(keyWords, 6)
			}
			var want []string
			for i, b := range bs {
				if e.HasBinding(b.dest, b.key, nil) && refMatch(splitKey(b.key), splitKey(key)) {
					want = append(want, bs[i].dest.Name)
				}
			}
			slices.Sort(want)
			want = slices.Compact(want)
			if want == nil {
				want = []string{}
			}
			require.Equal(t, want, names(e.Route(key, nil, nil)), "round %d key %q", round, key)
		}
	}
}

func TestHeadersMatch(t *testing.T) {
	tests := []struct {
		name    string
		args    map[string]any
		headers map[string]any
		match   bool
	}{
		{"all default", map[string]any{"a": "1", "b": "2"}, map[string]any{"a": "1", "b": "2", "c": "3"}, true},
		{"all missing one", map[string]any{"a": "1", "b": "2"}, map[string]any{"a": "1"}, false},
		{"all wrong value", map[string]any{"x-match": "all", "a": "1"}, map[string]any{"a": "2"}, false},
		{"all no keys matches anything", map[string]any{}, nil, true},
		{"all only x-match", map[string]any{"x-match": "all"}, map[string]any{"a": "1"}, true},
		{"any one", map[string]any{"x-match": "any", "a": "1", "b": "2"}, map[string]any{"b": "2"}, true},
		{"any none", map[string]any{"x-match": "any", "a": "1", "b": "2"}, map[string]any{"a": "2", "c": "1"}, false},
		{"any no keys matches nothing", map[string]any{"x-match": "any"}, map[string]any{"a": "1"}, false},
		{"any nil headers", map[string]any{"x-match": "any", "a": "1"}, nil, false},
		{"all ignores x- keys", map[string]any{"a": "1", "x-b": "2"}, map[string]any{"a": "1"}, true},
		{"any ignores x- keys", map[string]any{"x-match": "any", "x-b": "2"}, map[string]any{"x-b": "2"}, false},
		{"all-with-x counts x- keys", map[string]any{"x-match": "all-with-x", "a": "1", "x-b": "2"}, map[string]any{"a": "1"}, false},
		{"all-with-x match", map[string]any{"x-match": "all-with-x", "a": "1", "x-b": "2"}, map[string]any{"a": "1", "x-b": "2"}, true},
		{"any-with-x", map[string]any{"x-match": "any-with-x", "x-b": "2"}, map[string]any{"x-b": "2"}, true},
		{"with-x never counts x-match", map[string]any{"x-match": "all-with-x"}, map[string]any{}, true},
		{"void is presence", map[string]any{"a": nil}, map[string]any{"a": int32(7)}, true},
		{"void absent", map[string]any{"a": nil}, map[string]any{"b": int32(7)}, false},
		{"void matches void", map[string]any{"a": nil}, map[string]any{"a": nil}, true},
		{"void header vs value", map[string]any{"a": "1"}, map[string]any{"a": nil}, false},
		{"int32 vs int64", map[string]any{"a": int32(5)}, map[string]any{"a": int64(5)}, true},
		{"uint8 vs int16", map[string]any{"a": uint8(5)}, map[string]any{"a": int16(5)}, true},
		{"int vs double", map[string]any{"a": int32(5)}, map[string]any{"a": 5.0}, true},
		{"int vs double fraction", map[string]any{"a": int32(5)}, map[string]any{"a": 5.5}, false},
		{"float vs double", map[string]any{"a": float32(0.5)}, map[string]any{"a": 0.5}, true},
		{"float 0.1 vs double 0.1", map[string]any{"a": float32(0.1)}, map[string]any{"a": 0.1}, false},
		{"timestamp vs long", map[string]any{"a": time.Unix(1000, 0)}, map[string]any{"a": int64(1000)}, true},
		{"longstr vs bytes", map[string]any{"a": "abc"}, map[string]any{"a": []byte("abc")}, true},
		{"string vs int", map[string]any{"a": "5"}, map[string]any{"a": int32(5)}, false},
		{"bool", map[string]any{"a": true}, map[string]any{"a": true}, true},
		{"bool vs int", map[string]any{"a": true}, map[string]any{"a": int8(1)}, false},
		{"array same", map[string]any{"a": []any{int32(1), "x"}}, map[string]any{"a": []any{int32(1), "x"}}, true},
		{"array element types differ", map[string]any{"a": []any{int32(1)}}, map[string]any{"a": []any{int64(1)}}, false},
		{"array order", map[string]any{"a": []any{"x", "y"}}, map[string]any{"a": []any{"y", "x"}}, false},
		{"nested named table", map[string]any{"a": table{"k": "v"}}, map[string]any{"a": map[string]any{"k": "v"}}, true},
		{"nested table differs", map[string]any{"a": map[string]any{"k": "v"}}, map[string]any{"a": table{"k": "w"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newWith(t, Headers, bind{q("q"), "", tt.args})
			assert.Equal(t, tt.match, len(e.Route("ignored", tt.headers, nil)) == 1)
		})
	}
}

func TestHeadersDedup(t *testing.T) {
	e := newWith(t, Headers,
		bind{q("q1"), "", map[string]any{"a": "1"}},
		bind{q("q1"), "", map[string]any{"b": "1"}},
		bind{q("q2"), "", map[string]any{"x-match": "any", "a": "1", "b": "2"}},
	)
	assert.Equal(t, []string{"q1", "q2"}, names(e.Route("", map[string]any{"a": "1", "b": "1"}, nil)))
	for i := range 40 {
		_, err := e.Bind(q(fmt.Sprint("m", i%20)), "", map[string]any{"n": int32(i)})
		require.NoError(t, err)
	}
	assert.Len(t, e.Route("", map[string]any{"a": "1", "b": "1"}, nil), 2)
	assert.Len(t, e.Route("", map[string]any{"n": int32(3)}, nil), 1)
}

func TestHeadersInvalidXMatch(t *testing.T) {
	tests := []struct {
		val  any
		text string
	}{
		{"foo", `Invalid x-match field value <<"foo">>; expected all, any, all-with-x, or any-with-x`},
		{"ALL", `Invalid x-match field value <<"ALL">>; expected all, any, all-with-x, or any-with-x`},
		{"", `Invalid x-match field value <<"">>; expected all, any, all-with-x, or any-with-x`},
		{"é", `Invalid x-match field value <<"é"/utf8>>; expected all, any, all-with-x, or any-with-x`},
		{int32(5), `Invalid x-match field type signedint (value 5); expected longstr`},
		{[]byte("all"), `Invalid x-match field type binary (value <<"all">>); expected longstr`},
		{true, `Invalid x-match field type bool (value true); expected longstr`},
		{1.5, `Invalid x-match field type double (value 1.5); expected longstr`},
	}
	for _, tt := range tests {
		e := New("ex", Headers, false, false, false, nil)
		added, err := e.Bind(q("q"), "", map[string]any{"x-match": tt.val})
		require.Error(t, err)
		assert.False(t, added)
		assert.True(t, errors.Is(err, ErrInvalidBinding))
		var be *BindingError
		require.ErrorAs(t, err, &be)
		assert.Equal(t, tt.text, be.Text)
		assert.Zero(t, e.BindingCount())
	}
	// Other exchange types do not look at x-match.
	e := New("ex", Direct, false, false, false, nil)
	_, err := e.Bind(q("q"), "", map[string]any{"x-match": "foo"})
	assert.NoError(t, err)
}

func TestBindIdentity(t *testing.T) {
	e := New("ex", Direct, false, false, false, nil)
	add := func(d Destination, key string, args map[string]any) bool {
		added, err := e.Bind(d, key, args)
		require.NoError(t, err)
		return added
	}
	assert.True(t, add(q("q"), "k", nil))
	assert.False(t, add(q("q"), "k", nil))
	assert.False(t, add(q("q"), "k", map[string]any{}), "nil and empty args are the same table")
	assert.True(t, add(q("q"), "k", map[string]any{"a": int32(1)}))
	assert.False(t, add(q("q"), "k", map[string]any{"a": int32(1)}))
	assert.True(t, add(q("q"), "k", map[string]any{"a": int64(1)}), "types are part of the identity")
	assert.True(t, add(q("q"), "k", map[string]any{"a": []byte{'1'}}))
	assert.True(t, add(q("q"), "k", map[string]any{"a": "1"}))
	assert.True(t, add(q("q"), "k", map[string]any{"t": table{"n": int32(1)}}))
	assert.False(t, add(q("q"), "k", map[string]any{"t": map[string]any{"n": int32(1)}}))
	assert.True(t, add(x("q"), "k", nil), "an exchange named like a queue is another destination")
	assert.True(t, add(q("q"), "K", nil))
	assert.Equal(t, 8, e.BindingCount())
	assert.Equal(t, []string{"q", "x:q"}, names(e.Route("k", nil, nil)))

	assert.True(t, e.HasBinding(q("q"), "k", map[string]any{"a": int64(1)}))
	assert.False(t, e.HasBinding(q("q"), "k", map[string]any{"a": int16(1)}))
	assert.False(t, e.Unbind(q("q"), "k", map[string]any{"a": int16(1)}))
	assert.True(t, e.Unbind(q("q"), "k", map[string]any{"a": int64(1)}))
	assert.False(t, e.HasBinding(q("q"), "k", map[string]any{"a": int64(1)}))
	assert.Equal(t, 7, e.BindingCount())

	bs := e.Bindings()
	require.Len(t, bs, 7)
	assert.Equal(t, "ex", bs[0].Source)
	assert.Equal(t, []string{"k", "k", "k", "k", "k", "k", "K"}, func() []string {
		var ks []string
		for _, b := range bs {
			ks = append(ks, b.Key)
		}
		return ks
	}(), "insertion order")
	assert.Equal(t, map[string]any{"a": int32(1)}, bs[1].Args)
	bs[1].Args["a"] = "changed"
	assert.True(t, e.HasBinding(q("q"), "k", map[string]any{"a": int32(1)}), "Bindings returns copies")
}

func TestBindCopiesArgs(t *testing.T) {
	e := New("ex", Direct, false, false, false, nil)
	args := map[string]any{"a": "1"}
	_, err := e.Bind(q("q"), "k", args)
	require.NoError(t, err)
	args["a"] = "2"
	assert.True(t, e.HasBinding(q("q"), "k", map[string]any{"a": "1"}))
}

func TestUnbindAndRemoveDestination(t *testing.T) {
	for _, kind := range []Kind{Direct, Fanout, Topic, Headers} {
		t.Run(kind.String(), func(t *testing.T) {
			e := newWith(t, kind,
				bind{q("q1"), "a", nil},
				bind{q("q2"), "a", nil},
				bind{q("q1"), "b", nil},
				bind{q("q1"), "a", map[string]any{"z": "1"}},
				bind{x("q1"), "a", nil},
			)
			route := func() []string { return names(e.Route("a", map[string]any{"z": "1"}, nil)) }
			assert.Equal(t, []string{"q1", "q2", "x:q1"}, route())

			assert.True(t, e.Unbind(q("q1"), "a", nil))
			assert.False(t, e.Unbind(q("q1"), "a", nil))
			assert.Equal(t, []string{"q1", "q2", "x:q1"}, route(), "q1 still bound with args")

			removed := e.RemoveDestination(q("q1"))
			assert.Equal(t, []Binding{
				{Source: "ex", Destination: q("q1"), Key: "b"},
				{Source: "ex", Destination: q("q1"), Key: "a", Args: map[string]any{"z": "1"}},
			}, removed)
			assert.Nil(t, e.RemoveDestination(q("q1")))
			assert.Equal(t, []string{"q2", "x:q1"}, route())
			assert.Equal(t, 2, e.BindingCount())

			assert.Len(t, e.RemoveDestination(q("q2")), 1)
			assert.Len(t, e.RemoveDestination(x("q1")), 1)
			assert.Empty(t, e.Route("a", map[string]any{"z": "1"}, nil))
			assert.Zero(t, e.BindingCount())
			assert.Empty(t, e.Bindings())

			// Ids and trie nodes are reused cleanly.
			_, err := e.Bind(q("q3"), "a", nil)
			require.NoError(t, err)
			assert.Equal(t, []string{"q3"}, route())
		})
	}
}

func TestTopicPrune(t *testing.T) {
	e := New("ex", Topic, false, false, false, nil)
	keys := []string{"a.b.c", "a.b", "a.*.#", "#", "a.#.c", ""}
	for _, k := range keys {
		_, err := e.Bind(q("q"), k, nil)
		require.NoError(t, err)
	}
	for _, k := range keys {
		require.True(t, e.Unbind(q("q"), k, nil))
	}
	assert.Nil(t, e.snap.Load().topic, "every node pruned")
	assert.Empty(t, e.Route("a.b.c", nil, nil))
}

func TestRouteAppends(t *testing.T) {
	e := newWith(t, Topic, bind{q("q1"), "a", nil}, bind{q("q2"), "#", nil})
	out := []Destination{q("q1")}
	out = e.Route("a", nil, out)
	assert.Equal(t, []string{"q1", "q1", "q2"}, names(out), "out's contents are kept and not consulted")
}

func TestEquivalent(t *testing.T) {
	e := New("ex", Topic, true, false, false, map[string]any{"alternate-exchange": "ae", "other": int32(1)})
	tests := []struct {
		name                          string
		kind                          Kind
		durable, autoDelete, internal bool
		args                          map[string]any
		want                          bool
	}{
		{"same", Topic, true, false, false, map[string]any{"alternate-exchange": "ae", "other": int32(1)}, true},
		{"other args ignored", Topic, true, false, false, map[string]any{"alternate-exchange": "ae", "x-whatever": true}, true},
		{"ae as bytes", Topic, true, false, false, map[string]any{"alternate-exchange": []byte("ae")}, true},
		{"ae differs", Topic, true, false, false, map[string]any{"alternate-exchange": "ae2"}, false},
		{"ae missing", Topic, true, false, false, nil, false},
		{"type", Direct, true, false, false, map[string]any{"alternate-exchange": "ae"}, false},
		{"durable", Topic, false, false, false, map[string]any{"alternate-exchange": "ae"}, false},
		{"auto-delete", Topic, true, true, false, map[string]any{"alternate-exchange": "ae"}, false},
		{"internal", Topic, true, false, true, map[string]any{"alternate-exchange": "ae"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, e.Equivalent(tt.kind, tt.durable, tt.autoDelete, tt.internal, tt.args))
		})
	}
	plain := New("p", Fanout, false, false, false, nil)
	assert.True(t, plain.Equivalent(Fanout, false, false, false, map[string]any{"x": 1}))
	assert.False(t, plain.Equivalent(Fanout, false, false, false, map[string]any{"alternate-exchange": "ae"}))

	num := New("n", Fanout, false, false, false, map[string]any{"alternate-exchange": int32(5)})
	assert.True(t, num.Equivalent(Fanout, false, false, false, map[string]any{"alternate-exchange": uint8(5)}), "same type class")
	assert.False(t, num.Equivalent(Fanout, false, false, false, map[string]any{"alternate-exchange": 5.0}), "int and float differ")
}

func TestConcurrentRouteAndBind(t *testing.T) {
	for _, kind := range []Kind{Direct, Fanout, Topic, Headers} {
		t.Run(kind.String(), func(t *testing.T) {
			e := New("ex", kind, false, false, false, nil)
			_, err := e.Bind(q("stable"), "a.b", nil)
			require.NoError(t, err)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					out := make([]Destination, 0, 64)
					for {
						select {
						case <-stop:
							return
						default:
						}
						out = e.Route("a.b", nil, out[:0])
						if !slices.Contains(out, q("stable")) {
							t.Error("stable binding lost")
							return
						}
					}
				})
			}
			for i := range 2000 {
				d := q(fmt.Sprint("q", i%37))
				key := []string{"a.b", "a.*", "#", "c"}[i%4]
				_, err := e.Bind(d, key, nil)
				require.NoError(t, err)
				if i%3 == 0 {
					e.Unbind(d, key, nil)
				}
				if i%101 == 0 {
					e.RemoveDestination(d)
				}
			}
			close(stop)
			wg.Wait()
		})
	}
}

// TestManyBinds binds and removes 10 000 destinations on every kind. How fast
// that goes is BenchmarkBindRemove10000's business, not a test's.
func TestManyBinds(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	for _, kind := range []Kind{Direct, Fanout, Topic, Headers} {
		t.Run(kind.String(), func(t *testing.T) {
			e := New("ex", kind, false, false, false, nil)
			bindRemove(t, e, 10000)
			assert.Zero(t, e.BindingCount())
		})
	}
}

func bindRemove(tb testing.TB, e *Exchange, n int) {
	for i := range n {
		_, err := e.Bind(q(fmt.Sprint("q", i)), fmt.Sprintf("k%d.#", i), nil)
		require.NoError(tb, err)
	}
	for i := range n {
		e.RemoveDestination(q(fmt.Sprint("q", i)))
	}
}

// BenchmarkBindRemove10000 guards against quadratic copying of the binding
// snapshot: 10 000 binds and removals should take milliseconds, not seconds.
func BenchmarkBindRemove10000(b *testing.B) {
	for _, kind := range []Kind{Direct, Fanout, Topic, Headers} {
		b.Run(kind.String(), func(b *testing.B) {
			for range b.N {
				bindRemove(b, New("ex", kind, false, false, false, nil), 10000)
			}
		})
	}
}

// TestRandomChurn binds and unbinds many destinations on few keys, so that
// bags span several chunks and elements move, and checks routing against a
// model after every step batch.
func TestRandomChurn(t *testing.T) {
	for _, kind := range []Kind{Direct, Fanout, Topic, Headers} {
		t.Run(kind.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			e := New("ex", kind, false, false, false, nil)
			type b struct {
				d   Destination
				key string
			}
			live := map[b]bool{}
			keys := []string{"k", "j"}
			for step := range 3000 {
				bb := b{q(fmt.Sprint("q", r.IntN(400))), keys[r.IntN(2)]}
				switch r.IntN(10) {
				case 0:
					e.RemoveDestination(bb.d)
					for k := range live {
						if k.d == bb.d {
							delete(live, k)
						}
					}
				case 1, 2, 3:
					assert.Equal(t, live[bb], e.Unbind(bb.d, bb.key, nil))
					delete(live, bb)
				default:
					added, err := e.Bind(bb.d, bb.key, nil)
					require.NoError(t, err)
					assert.Equal(t, !live[bb], added)
					live[bb] = true
				}
				if step%100 != 0 {
					continue
				}
				want := []string{}
				seen := map[string]bool{}
				for k := range live {
					if (kind == Direct || kind == Topic) && k.key != "k" {
						continue
					}
					if !seen[k.d.Name] {
						seen[k.d.Name] = true
						want = append(want, k.d.Name)
					}
				}
				slices.Sort(want)
				require.Equal(t, want, names(e.Route("k", nil, nil)), "step %d", step)
				require.Equal(t, len(live), e.BindingCount())
			}
		})
	}
}
