package exchange

import (
	"math"
	"strconv"
	"time"
)

// The consistent-hash exchange places keys exactly as
// rabbitmq_consistent_hash_exchange 3.10 does, so that a migration from
// RabbitMQ keeps every key on the queue it was on: each binding owns
// `weight` consecutive buckets, in binding order; a message's hash value is
// erlang:phash2 of the routed term (the routing key binary, a header's
// {Type, Value} pair or a property), and the bucket is Lamping and Veach's
// jump consistent hash driven by Erlang's exs1024 generator seeded with
// {H, H, H}. The helpers below reimplement those three Erlang functions for
// the terms a message can produce.

// ErlangPhash2 returns erlang:phash2(T) (range 2^27) of the Erlang term a
// field value becomes in RabbitMQ: a string or byte array is a binary, an
// integer an integer, and so on. ok is false for values whose term is not
// modelled here (tables, arrays, decimals).
func ErlangPhash2(t ErlTerm) (uint32, bool) {
	var h hasher
	if !h.term(t) {
		return 0, false
	}
	return h.hash & (1<<27 - 1), true
}

// ErlTerm is the subset of Erlang terms the exchange hashes: a binary, an
// atom, an integer, a float or a tuple of them.
type ErlTerm struct {
	kind  erlKind
	bin   string
	i     int64
	f     float64
	elems []ErlTerm
}

type erlKind uint8

const (
	ekInvalid erlKind = iota
	ekBinary
	ekAtom
	ekInt
	ekFloat
	ekTuple
)

// Binary is an Erlang binary.
func Binary(s string) ErlTerm { return ErlTerm{kind: ekBinary, bin: s} }

// Atom is an Erlang atom such as undefined.
func Atom(s string) ErlTerm { return ErlTerm{kind: ekAtom, bin: s} }

// Integer is an Erlang integer.
func Integer(i int64) ErlTerm { return ErlTerm{kind: ekInt, i: i} }

// Tuple is an Erlang tuple.
func Tuple(elems ...ErlTerm) ErlTerm { return ErlTerm{kind: ekTuple, elems: elems} }

// FieldTerm is the {Type, Value} pair rabbit_misc:table_lookup returns for a
// header value; ok is false for types not modelled (tables, arrays, decimals).
func FieldTerm(v any) (ErlTerm, bool) {
	tg := tagOf(v)
	var val ErlTerm
	switch x := v.(type) {
	case nil:
		val = Atom("undefined")
	case bool:
		val = Atom(strconv.FormatBool(x))
	case string:
		val = Binary(x)
	case []byte:
		val = Binary(string(x))
	case float32:
		val = ErlTerm{kind: ekFloat, f: float64(x)}
	case float64:
		val = ErlTerm{kind: ekFloat, f: x}
	case time.Time:
		val = Integer(x.Unix())
	case int8, uint8, int16, uint16, int32, uint32, int64, int:
		val = Integer(intVal(v))
	default:
		return ErlTerm{}, false
	}
	return Tuple(Atom(tg.String()), val), true
}

// The constants of OTP's make_hash2 (erts/emulator/beam/utils.c):
// multiples of the golden ratio.
const (
	hconst   = 0x9e3779b9
	hconst3  = 0xdaa66d2b
	hconst9  = 0x8ff34781
	hconst10 = 0x2e2ac13a
	hconst11 = 0xcc623af3
	hconst12 = 0x6a99b4ac
	hconst13 = 0x08d12e65
)

// hasher is make_hash2's running state.
type hasher struct{ hash uint32 }

// mix is Bob Jenkins' 96-bit mix.
func mix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= b
	a -= c
	a ^= c >> 13
	b -= c
	b -= a
	b ^= a << 8
	c -= a
	c -= b
	c ^= b >> 13
	a -= b
	a -= c
	a ^= c >> 12
	b -= c
	b -= a
	b ^= a << 16
	c -= a
	c -= b
	c ^= b >> 5
	a -= b
	a -= c
	a ^= c >> 3
	b -= c
	b -= a
	b ^= a << 10
	c -= a
	c -= b
	c ^= b >> 15
	return a, b, c
}

func (h *hasher) uint32x2(x, y, k uint32) {
	_, _, h.hash = mix(k+x, k+y, h.hash)
}

func (h *hasher) term(t ErlTerm) bool {
	switch t.kind {
	case ekAtom:
		if h.hash == 0 {
			h.hash = atomHash(t.bin)
		} else {
			h.uint32x2(atomHash(t.bin), 0, hconst3)
		}
	case ekBinary:
		if t.bin == "" {
			h.hash += hconst13
		} else {
			h.hash = blockHash(t.bin, hconst13+h.hash)
		}
	case ekInt:
		h.integer(t.i)
	case ekFloat:
		f := t.f
		if f == 0 {
			f = 0 // positive zero
		}
		bits := math.Float64bits(f)
		h.uint32x2(uint32(bits>>32), uint32(bits), hconst12)
	case ekTuple:
		h.uint32x2(uint32(len(t.elems)), 0, hconst9)
		for _, e := range t.elems {
			if !h.term(e) {
				return false
			}
		}
	default:
		return false
	}
	return true
}

// integer hashes a small integer (28 bits) one way and larger ones (and
// bignums up to 64 bits, which hash alike) another.
func (h *hasher) integer(i int64) {
	if i >= -(1<<27) && i < 1<<27 {
		y := int32(i)
		if y < 0 {
			h.uint32x2(uint32(-y), 0, hconst)
		}
		h.uint32x2(uint32(y), 0, hconst)
		return
	}
	k, t := uint32(hconst11), uint64(i)
	if i < 0 {
		k, t = hconst10, uint64(-i)
	}
	h.uint32x2(uint32(t), uint32(t>>32), k)
}

// blockHash is make_hash2's hash of a binary's bytes.
func blockHash(k string, init uint32) uint32 {
	a, b, c := uint32(hconst), uint32(hconst), init
	n := len(k)
	for len(k) >= 12 {
		a += uint32(k[0]) | uint32(k[1])<<8 | uint32(k[2])<<16 | uint32(k[3])<<24
		b += uint32(k[4]) | uint32(k[5])<<8 | uint32(k[6])<<16 | uint32(k[7])<<24
		c += uint32(k[8]) | uint32(k[9])<<8 | uint32(k[10])<<16 | uint32(k[11])<<24
		a, b, c = mix(a, b, c)
		k = k[12:]
	}
	c += uint32(n)
	var tail [11]byte
	copy(tail[:], k)
	c += uint32(tail[10])<<24 | uint32(tail[9])<<16 | uint32(tail[8])<<8
	b += uint32(tail[7])<<24 | uint32(tail[6])<<16 | uint32(tail[5])<<8 | uint32(tail[4])
	a += uint32(tail[3])<<24 | uint32(tail[2])<<16 | uint32(tail[1])<<8 | uint32(tail[0])
	_, _, c = mix(a, b, c)
	return c
}

// atomHash is the atom table's hashpjw, which make_hash2 uses for atoms
// (ASCII names only, which is all the exchange produces).
func atomHash(s string) uint32 {
	var h uint32
	for i := 0; i < len(s); i++ {
		h = h<<4 + uint32(s[i])
		if g := h & 0xf0000000; g != 0 {
			h ^= g >> 24
			h ^= g
		}
	}
	return h
}

// exs1024 is Erlang's rand exs1024 (xorshift1024*) as rand:seed_s(exs1024,
// {A, A, A}) sets it up; the state is the 16-word ring, with the same
// rotation as the Erlang list pair.
type exs1024 struct {
	s [16]uint64
	p int
}

func newExs1024(a uint64) exs1024 {
	const m21 = 1<<21 - 1
	b1 := ((a&m21 + 1) * 2097131) & m21
	b2 := ((a&m21 + 1) * 2097133) & m21
	b3 := ((a&m21 + 1) * 2097143) & m21
	r := b1<<43 | b2<<22 | b3<<1 | 1
	var g exs1024
	// exs1024_gen1024 prepends each value, so the first generated is last.
	for i := 15; i >= 0; i-- {
		r ^= r >> 12
		r ^= (r & (1<<39 - 1)) << 25
		r ^= r >> 27
		g.s[i] = r * 2685821657736338717
	}
	return g
}

// next is exs1024_next: the list [S0, S1 | L] becomes [NS1 | L] with S0
// moved to the reversed tail, which is a ring walk.
func (g *exs1024) next() uint64 {
	s0 := g.s[g.p]
	g.p = (g.p + 1) & 15
	s1 := g.s[g.p]
	s1 ^= s1 << 31
	s1 ^= s1 >> 11
	s0 ^= s0 >> 30
	ns := s0 ^ s1
	g.s[g.p] = ns
	return ns * 1181783497276652981
}

// jumpBucket is the plugin's jump_consistent_hash(Key, N) for an integer
// key.
func jumpBucket(key uint32, n int) int {
	if n == 1 {
		return 0
	}
	g := newExs1024(uint64(key))
	b, j := -1, 0
	for j < n {
		b = j
		r := float64(g.next()) / 18446744073709551616.0
		if r == 0 {
			return b
		}
		f := float64(b+1) / r
		if f >= float64(n) {
			break
		}
		j = int(f)
	}
	return b
}

// ParseWeight checks a consistent-hash binding key as the plugin's
// validate_binding does, returning the weight or the plugin's error text.
func ParseWeight(key string) (int, error) {
	w, err := erlangListToInteger(key)
	if err != nil {
		return 0, &BindingError{Text: "The binding key must be an integer: <<\"" + key + "\">>"}
	}
	if w < 1 {
		return 0, &BindingError{Text: "The binding key must be greater than 0"}
	}
	if w > 1<<20 {
		// The plugin would allocate that many buckets; Warren refuses.
		return 0, &BindingError{Text: "The binding key must be at most 1048576"}
	}
	return int(w), nil
}

// erlangListToInteger accepts what list_to_integer/1 accepts: an optional
// sign and decimal digits.
func erlangListToInteger(s string) (int64, error) {
	if s == "" || s == "+" || s == "-" {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseInt(s, 10, 64)
}
