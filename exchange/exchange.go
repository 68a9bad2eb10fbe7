// Package exchange holds exchanges, their bindings and the routing of a
// routing key and headers to destinations, with RabbitMQ's semantics for the
// direct, fanout, topic and headers types. It knows names, keys and argument
// tables, nothing of frames, queues or storage.
package exchange

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// Kind is an exchange type.
type Kind uint8

// The exchange types: AMQP's four, then the plugin types Warren has built
// in, under the plugins' names.
const (
	Direct Kind = iota + 1
	Fanout
	Topic
	Headers
	// ConsistentHash is rabbitmq_consistent_hash_exchange's x-consistent-hash.
	ConsistentHash
	// Random is rabbitmq_random_exchange's x-random.
	Random
	// Delayed is rabbitmq-delayed-message-exchange's x-delayed-message: it
	// routes as its x-delayed-type; the virtual host holds delayed messages.
	Delayed
	// Deduplication is rabbitmq-message-deduplication's
	// x-message-deduplication: it routes as fanout; the virtual host drops
	// duplicates.
	Deduplication
)

var kindNames = [...]string{
	Direct: "direct", Fanout: "fanout", Topic: "topic", Headers: "headers",
	ConsistentHash: "x-consistent-hash", Random: "x-random",
	Delayed: "x-delayed-message", Deduplication: "x-message-deduplication",
}

// ParseKind maps a type name from exchange.declare to a Kind. Names are
// case-sensitive, as in RabbitMQ.
func ParseKind(s string) (Kind, bool) {
	for k, name := range kindNames {
		if name != "" && name == s {
			return Kind(k), true
		}
	}
	return 0, false
}

// String returns the type's name as exchange.declare spells it.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Destination is where a binding leads: a queue, or (exchange-to-exchange
// binding) another exchange.
type Destination struct {
	Name     string
	Exchange bool
}

// Binding is one edge. RabbitMQ identifies a binding by (source,
// destination, key, arguments).
type Binding struct {
	Source      string
	Destination Destination
	Key         string
	Args        map[string]any
}

// Exchange is one exchange and its outgoing bindings. Route is safe to call
// from many goroutines at once and concurrently with the other methods. The
// exported fields are set by New and must not be changed afterwards.
type Exchange struct {
	Name                          string
	Kind                          Kind
	Durable, AutoDelete, Internal bool
	Args                          map[string]any

	// rk is how bindings route: Kind, except that a delayed exchange routes
	// as its x-delayed-type and a deduplication exchange as fanout.
	rk Kind
	// hashHeader names the header a consistent-hash exchange hashes
	// (hash-header), when hashOn is hashHeader.
	hashOn     hashSource
	hashHeader string

	// snap is what Route reads: an immutable routing table, replaced whole
	// on every change so that routing takes no lock and scales across cores.
	snap atomic.Pointer[snapshot]
	seed maphash.Seed // immutable; hashes keys in the persistent maps

	mu sync.Mutex // guards w and serializes publication of snap
	w  writer

	// counts are the management API's publish_in and publish_out, on
	// their own cache line: publishers write them, and routing reads snap.
	counts publishCounts
}

// publishCounts are an exchange's message counts since it was made.
type publishCounts struct {
	_       [64]byte
	in, out atomic.Uint64
	_       [48]byte
}

// CountPublish counts a message published to the exchange, and whether
// it was routed on to at least one queue.
func (e *Exchange) CountPublish(routed bool) {
	e.counts.in.Add(1)
	if routed {
		e.counts.out.Add(1)
	}
}

// PublishCounts returns the messages published to the exchange (in) and
// those it routed on to a queue (out), as RabbitMQ's publish_in and
// publish_out.
func (e *Exchange) PublishCounts() (in, out uint64) {
	return e.counts.in.Load(), e.counts.out.Load()
}

// snapshot is one published routing table. Its parts are persistent
// structures shared with earlier and later snapshots, so publishing costs
// O(log n) for direct and topic exchanges, amortized O(1) for adding to
// fanout and headers ones.
type snapshot struct {
	ndest, nnode int32 // id spaces, sizing the mark arrays of one Route
	bindings     int   // how many bindings, for Bound
	direct       pmap[bag[Destination]]
	fanout       bag[Destination]
	topic        *tnode
	headers      bag[hbinding]
	// buckets maps a consistent-hash exchange's bucket numbers to
	// destinations; all holds a random exchange's bindings, one entry each.
	buckets []Destination
	all     bag[randBinding]
}

// writer is the mutable side: the bindings by identity and by destination,
// and the current routing structures.
type writer struct {
	seq   uint64
	count int
	edges map[edge][]*bindingRec
	dests map[Destination]*destInfo

	nextDest int32
	freeDest []int32

	// The routing structures, shared with published snapshots, and where
	// each entry sits in its bag so that it can be removed.
	direct  pmap[bag[Destination]]
	fanout  bag[Destination]
	trie    trieWriter
	topic   *tnode
	headers bag[hbinding]
	ring    []ringEntry // consistent hash: the bindings owning buckets, in bucket order
	all     bag[randBinding]
	edgePos map[edge]int        // direct: in the key's bag; topic: in the node's bag
	destPos map[Destination]int // fanout
	recPos  map[*bindingRec]int // headers and random
}

// ringEntry is one destination's consecutive run of buckets.
type ringEntry struct {
	dest   Destination
	weight int
}

// randBinding is one binding of a random exchange.
type randBinding struct {
	dest Destination
	rec  *bindingRec
}

// hashSource is what a consistent-hash exchange hashes.
type hashSource uint8

const (
	hashRoutingKey hashSource = iota
	hashHeaderValue
	hashMessageID
	hashCorrelationID
	hashTimestamp
)

// edge is a binding's identity less its arguments.
type edge struct {
	dest Destination
	key  string
}

type bindingRec struct {
	b   Binding
	seq uint64 // insertion order, for Bindings
}

type destInfo struct {
	id   int32
	recs []*bindingRec // in insertion order
}

// New returns an exchange with no bindings.
func New(name string, kind Kind, durable, autoDelete, internal bool, args map[string]any) *Exchange {
	e := &Exchange{
		Name: name, Kind: kind, Durable: durable, AutoDelete: autoDelete, Internal: internal, Args: args,
		seed: maphash.MakeSeed(), rk: kind,
	}
	switch kind {
	case Delayed:
		// CheckArgs has made sure the type is one of the others.
		t, _ := args["x-delayed-type"].(string)
		e.rk, _ = ParseKind(t)
	case Deduplication:
		e.rk = Fanout
	}
	if e.rk == ConsistentHash {
		e.hashOn, e.hashHeader = parseHashArgs(args)
	}
	e.w.edges = make(map[edge][]*bindingRec)
	e.w.dests = make(map[Destination]*destInfo)
	e.w.edgePos = make(map[edge]int)
	e.w.destPos = make(map[Destination]int)
	e.w.recPos = make(map[*bindingRec]int)
	e.w.trie.seed = e.seed
	e.snap.Store(&snapshot{})
	return e
}

// Bind adds a binding; added is false if an identical binding exists
// (arguments compared as RabbitMQ does: same keys, types and values). For a
// headers exchange an x-match that is not one of all, any, all-with-x and
// any-with-x is a *BindingError.
func (e *Exchange) Bind(dest Destination, key string, args map[string]any) (added bool, err error) {
	var hb hbinding
	weight := 0
	switch e.rk {
	case Headers:
		if hb, err = compileHeaders(args); err != nil {
			return false, err
		}
	case ConsistentHash:
		if weight, err = ParseWeight(key); err != nil {
			return false, err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := &e.w
	ek := edge{dest, key}
	recs := w.edges[ek]
	for _, r := range recs {
		if argsIdentical(r.b.Args, args) {
			return false, nil
		}
	}
	rec := &bindingRec{b: Binding{Source: e.Name, Destination: dest, Key: key, Args: maps.Clone(args)}, seq: w.seq}
	w.seq++
	w.count++
	w.edges[ek] = append(recs, rec)
	di := w.dests[dest]
	if di == nil {
		di = &destInfo{id: w.allocDest()}
		w.dests[dest] = di
	}
	di.recs = append(di.recs, rec)
	ref := destRef{d: dest, id: di.id}

	// Routing structures hold each destination once per place it can be
	// reached from, so direct and fanout routes need no deduplication.
	switch e.rk {
	case Direct:
		if len(recs) == 0 {
			h := maphash.String(e.seed, key)
			list, _ := w.direct.get(h, key)
			list, w.edgePos[ek] = list.add(dest)
			w.direct = w.direct.set(h, key, list)
		}
	case Fanout:
		if len(di.recs) == 1 {
			w.fanout, w.destPos[dest] = w.fanout.add(dest)
		}
	case Topic:
		if len(recs) == 0 {
			w.topic, w.edgePos[ek] = w.trie.insert(w.topic, splitKey(key), ref, false)
		}
	case Headers:
		hb.ref, hb.rec = ref, rec
		w.headers, w.recPos[rec] = w.headers.add(hb)
	case ConsistentHash:
		// As the plugin: a destination that already owns buckets (bound
		// with another key) gets no more.
		if !slices.ContainsFunc(w.ring, func(r ringEntry) bool { return r.dest == dest }) {
			w.ring = append(w.ring, ringEntry{dest, weight})
		}
	case Random:
		w.all, w.recPos[rec] = w.all.add(randBinding{dest, rec})
	}
	e.publish()
	return true, nil
}

// Unbind removes the binding identical to the one given; removed is false
// if there is none.
func (e *Exchange) Unbind(dest Destination, key string, args map[string]any) (removed bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.w.edges[edge{dest, key}] {
		if argsIdentical(r.b.Args, args) {
			e.remove(r)
			e.publish()
			return true
		}
	}
	return false
}

// HasBinding reports whether a binding identical to the one given exists.
func (e *Exchange) HasBinding(dest Destination, key string, args map[string]any) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, r := range e.w.edges[edge{dest, key}] {
		if argsIdentical(r.b.Args, args) {
			return true
		}
	}
	return false
}

// RemoveDestination drops every binding to dest (its queue or exchange was
// deleted) and returns them in the order they were made.
func (e *Exchange) RemoveDestination(dest Destination) []Binding {
	e.mu.Lock()
	defer e.mu.Unlock()
	di := e.w.dests[dest]
	if di == nil {
		return nil
	}
	recs := slices.Clone(di.recs)
	out := make([]Binding, len(recs))
	for i, r := range recs {
		e.remove(r)
		out[i] = r.b
	}
	e.publish()
	return out
}

// Bindings returns a snapshot of the bindings in the order they were made.
// Each Args is a copy.
func (e *Exchange) Bindings() []Binding {
	e.mu.Lock()
	recs := make([]*bindingRec, 0, e.w.count)
	for _, rs := range e.w.edges {
		recs = append(recs, rs...)
	}
	e.mu.Unlock()
	slices.SortFunc(recs, func(a, b *bindingRec) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]Binding, len(recs))
	for i, r := range recs {
		out[i] = r.b
		out[i].Args = maps.Clone(r.b.Args)
	}
	return out
}

// BindingCount returns the number of bindings.
func (e *Exchange) BindingCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.w.count
}

// Bound reports whether the exchange has any binding, without a lock: the
// event exchange's emitters check it before building an event.
func (e *Exchange) Bound() bool { return e.snap.Load().bindings > 0 }

// Route appends to out every destination bound for a message with this
// routing key and headers, each at most once among those it appends, and
// returns the extended slice. Destinations already in out are not
// consulted. It does not allocate for direct, fanout and topic exchanges
// when out has the capacity (nor, with simple argument values, for headers).
func (e *Exchange) Route(key string, headers map[string]any, out []Destination) []Destination {
	s := e.snap.Load()
	switch e.rk {
	case Direct:
		if s.direct.root == nil {
			return out
		}
		if list, ok := s.direct.get(maphash.String(e.seed, key), key); ok {
			for _, c := range list.chunks {
				out = append(out, c...)
			}
		}
	case Fanout:
		for _, c := range s.fanout.chunks {
			out = append(out, c...)
		}
	case Topic:
		out = s.routeTopic(e.seed, key, out)
	case Headers:
		out = s.routeHeaders(headers, out)
	case ConsistentHash:
		switch e.hashOn {
		case hashRoutingKey:
			h, _ := ErlangPhash2(Binary(key))
			out = s.routeBucket(h, out)
		case hashHeaderValue:
			// A missing header hashes the atom undefined, as in the plugin.
			t := Atom("undefined")
			if v, ok := headers[e.hashHeader]; ok {
				if t, ok = FieldTerm(v); !ok {
					// Not a term Warren models: still the same queue every time.
					t = Binary(fmt.Sprint(v))
				}
			}
			h, _ := ErlangPhash2(t)
			out = s.routeBucket(h, out)
		}
	case Random:
		if n := s.all.len(); n > 0 {
			i := rand.IntN(n)
			out = append(out, s.all.chunks[i/chunkSize][i%chunkSize].dest)
		}
	}
	return out
}

// RoutesOnce reports whether the exchange routes a message once whatever
// its CC and BCC keys (fanout, consistent-hash, random and deduplication
// exchanges ignore routing keys, or hash only the first).
func (e *Exchange) RoutesOnce() bool {
	switch e.rk {
	case Fanout, ConsistentHash, Random:
		return true
	}
	return false
}

// RoutingKind is the type whose logic routes this exchange's messages: the
// x-delayed-type of a delayed exchange, fanout for a deduplication one.
func (e *Exchange) RoutingKind() Kind { return e.rk }

// MessageProperties are the properties a consistent-hash exchange may hash
// on (hash-property).
type MessageProperties struct {
	MessageID, CorrelationID string
	Timestamp                uint64
	HasMessageID             bool
	HasCorrelationID         bool
	HasTimestamp             bool
}

// HashesProperty reports whether the exchange hashes a message property,
// so that its caller must use RouteProperties.
func (e *Exchange) HashesProperty() bool {
	return e.rk == ConsistentHash && e.hashOn >= hashMessageID
}

// RouteProperties routes by a message property (hash-property). An absent
// property hashes the atom undefined, as in the plugin.
func (e *Exchange) RouteProperties(p *MessageProperties, out []Destination) []Destination {
	t := Atom("undefined")
	switch {
	case e.hashOn == hashMessageID && p.HasMessageID:
		t = Binary(p.MessageID)
	case e.hashOn == hashCorrelationID && p.HasCorrelationID:
		t = Binary(p.CorrelationID)
	case e.hashOn == hashTimestamp && p.HasTimestamp:
		t = Binary(strconv.FormatUint(p.Timestamp, 10))
	}
	h, _ := ErlangPhash2(t)
	return e.snap.Load().routeBucket(h, out)
}

// routeBucket appends the destination of the bucket the hash jumps to.
func (s *snapshot) routeBucket(h uint32, out []Destination) []Destination {
	if n := len(s.buckets); n > 0 {
		out = append(out, s.buckets[jumpBucket(h, n)])
	}
	return out
}

// Equivalent reports whether a redeclare with these properties matches this
// exchange, by rabbit_exchange:assert_equivalence: type, durable,
// auto-delete and internal must be equal, and of the arguments only
// alternate-exchange is compared (absent on both sides, or present on both
// with equivalent values).
func (e *Exchange) Equivalent(kind Kind, durable, autoDelete, internal bool, args map[string]any) bool {
	if kind != e.Kind || durable != e.Durable || autoDelete != e.AutoDelete || internal != e.Internal {
		return false
	}
	a, aok := e.Args["alternate-exchange"]
	b, bok := args["alternate-exchange"]
	if !aok || !bok {
		return aok == bok
	}
	return argEquivalent(a, b)
}

// publish makes the writer's current structures what Route sees.
func (e *Exchange) publish() {
	w := &e.w
	s := &snapshot{
		ndest: w.nextDest, nnode: w.trie.nextID, bindings: w.count,
		direct: w.direct, fanout: w.fanout, topic: w.topic, headers: w.headers,
		all: w.all,
	}
	if e.rk == ConsistentHash {
		for _, r := range w.ring {
			for range r.weight {
				s.buckets = append(s.buckets, r.dest)
			}
		}
	}
	e.snap.Store(s)
}

func (w *writer) allocDest() int32 {
	if k := len(w.freeDest); k > 0 {
		id := w.freeDest[k-1]
		w.freeDest = w.freeDest[:k-1]
		return id
	}
	w.nextDest++
	return w.nextDest - 1
}

// remove takes one binding out of the writer's state; the caller publishes.
func (e *Exchange) remove(r *bindingRec) {
	w := &e.w
	dest, key := r.b.Destination, r.b.Key
	ek := edge{dest, key}
	recs := slices.DeleteFunc(w.edges[ek], func(x *bindingRec) bool { return x == r })
	if len(recs) == 0 {
		delete(w.edges, ek)
	} else {
		w.edges[ek] = recs
	}
	w.count--
	di := w.dests[dest]
	di.recs = slices.DeleteFunc(di.recs, func(x *bindingRec) bool { return x == r })
	lastForDest := len(di.recs) == 0
	if lastForDest {
		delete(w.dests, dest)
		w.freeDest = append(w.freeDest, di.id)
	}
	switch e.rk {
	case Direct:
		if len(recs) == 0 {
			h := maphash.String(e.seed, key)
			list, _ := w.direct.get(h, key)
			pos := w.edgePos[ek]
			list, mv, moved := list.removeAt(pos)
			delete(w.edgePos, ek)
			if moved {
				w.edgePos[edge{mv, key}] = pos
			}
			if list.len() == 0 {
				w.direct = w.direct.del(h, key)
			} else {
				w.direct = w.direct.set(h, key, list)
			}
		}
	case Fanout:
		if lastForDest {
			var mv Destination
			var moved bool
			pos := w.destPos[dest]
			w.fanout, mv, moved = w.fanout.removeAt(pos)
			delete(w.destPos, dest)
			if moved {
				w.destPos[mv] = pos
			}
		}
	case Topic:
		if len(recs) == 0 {
			pos := w.edgePos[ek]
			var mv destRef
			var moved bool
			w.topic, mv, moved = w.trie.remove(w.topic, splitKey(key), pos)
			delete(w.edgePos, ek)
			if moved {
				w.edgePos[edge{mv.d, key}] = pos
			}
		}
	case Headers:
		pos := w.recPos[r]
		var mv hbinding
		var moved bool
		w.headers, mv, moved = w.headers.removeAt(pos)
		delete(w.recPos, r)
		if moved {
			w.recPos[mv.rec] = pos
		}
	case ConsistentHash:
		// As the plugin: removing any binding to a destination takes all
		// its buckets; the buckets after them move down.
		w.ring = slices.DeleteFunc(w.ring, func(x ringEntry) bool { return x.dest == dest })
	case Random:
		pos := w.recPos[r]
		var mv randBinding
		var moved bool
		w.all, mv, moved = w.all.removeAt(pos)
		delete(w.recPos, r)
		if moved {
			w.recPos[mv.rec] = pos
		}
	}
}

// parseHashArgs reads hash-header and hash-property (CheckArgs validated them).
func parseHashArgs(args map[string]any) (hashSource, string) {
	if h, ok := args["hash-header"].(string); ok {
		return hashHeaderValue, h
	}
	switch args["hash-property"] {
	case "message_id":
		return hashMessageID, ""
	case "correlation_id":
		return hashCorrelationID, ""
	case "timestamp":
		return hashTimestamp, ""
	}
	return hashRoutingKey, ""
}
