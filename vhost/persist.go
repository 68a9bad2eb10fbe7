package vhost

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/storage"
)

// Durable definitions are stored under "<vhost>\x00<name>" keys with field
// table values, so arguments keep their AMQP types across a restart. A
// binding is durable when both its ends are, as in RabbitMQ; its key holds
// the whole binding, since RabbitMQ identifies bindings by all their parts.

// encodeTable encodes a stored definition as a field table.
func encodeTable(t map[string]any) []byte { return wire.AppendTable(nil, wire.Table(t)) }

// decodeTable decodes a stored definition; nested tables come back as plain
// maps, as arguments arrive from the channel.
func decodeTable(b []byte) (map[string]any, error) {
	t, _, err := wire.DecodeTable(b)
	if err != nil {
		return nil, err
	}
	return plain(t).(map[string]any), nil
}

func plain(v any) any {
	switch v := v.(type) {
	case wire.Table:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = plain(x)
		}
		return m
	case []any:
		for i, x := range v {
			v[i] = plain(x)
		}
	}
	return v
}

// key is a stored definition's key.
func (v *VHost) key(name string) string { return v.Name + "\x00" + name }

// newStoreKey names a new durable queue's entries in storage. Each queue
// gets its own, never reused: a deleted queue's entries are dropped in the
// background, and a queue declared again under the same name must not see
// them.
func (v *VHost) newStoreKey(name string) string {
	if v.store == nil {
		return ""
	}
	return v.key(name) + "\x00" + strconv.FormatUint(v.store.NextMessageID(), 36)
}

func (v *VHost) storeExchange(b *storage.Batch, e *exchange.Exchange) {
	if v.store == nil || !e.Durable {
		return
	}
	rec := map[string]any{
		"name": e.Name, "type": e.Kind.String(), "durable": e.Durable,
		"auto_delete": e.AutoDelete, "internal": e.Internal, "arguments": e.Args,
	}
	if key := v.delayKeys[e.Name]; key != "" {
		rec["storage_key"] = key // where its delayed messages are
	}
	b.PutDefinition(storage.KindExchange, v.key(e.Name), encodeTable(rec))
}

func (v *VHost) forgetExchange(b *storage.Batch, e *exchange.Exchange) {
	if v.store != nil && e.Durable {
		b.DeleteDefinition(storage.KindExchange, v.key(e.Name))
	}
}

func (v *VHost) storeQueue(b *storage.Batch, q queue.Interface) {
	if v.store == nil || !q.Declared().Durable || q.Declared().Exclusive {
		return
	}
	rec := map[string]any{
		"name": q.Declared().Name, "durable": true, "auto_delete": q.Declared().AutoDelete, "arguments": q.Declared().Args,
		"storage_key": q.StoreKey(),
	}
	if qq, ok := q.(*queue.Quorum); ok {
		rec["quorum_group"] = int64(qq.Group()) // its raft group in the quorum engine's log
	}
	b.PutDefinition(storage.KindQueue, v.key(q.Declared().Name), encodeTable(rec))
}

func (v *VHost) forgetQueue(b *storage.Batch, q queue.Interface) {
	if v.store != nil && q.Declared().Durable && !q.Declared().Exclusive {
		b.DeleteDefinition(storage.KindQueue, v.key(q.Declared().Name))
	}
}

func (v *VHost) bindingRecord(bd exchange.Binding) []byte {
	kind := "queue"
	if bd.Destination.Exchange {
		kind = "exchange"
	}
	return encodeTable(map[string]any{
		"source": bd.Source, "destination": bd.Destination.Name, "destination_type": kind,
		"routing_key": bd.Key, "arguments": bd.Args,
	})
}

// storeBindingLocked stores a binding whose two ends are durable.
func (v *VHost) storeBindingLocked(b *storage.Batch, bd exchange.Binding) {
	if v.store == nil {
		return
	}
	src := v.exchanges[bd.Source]
	if src == nil || !src.Durable {
		return
	}
	if bd.Destination.Exchange {
		if d := v.exchanges[bd.Destination.Name]; d == nil || !d.Durable {
			return
		}
	} else if q := v.queues[bd.Destination.Name]; q == nil || !q.Declared().Durable || q.Declared().Exclusive {
		return
	}
	b.PutDefinition(storage.KindBinding, v.key(string(v.bindingRecord(bd))), nil)
}

// forgetBinding deletes a binding's record; deleting one never stored is harmless.
func (v *VHost) forgetBinding(b *storage.Batch, bd exchange.Binding) {
	if v.store != nil {
		b.DeleteDefinition(storage.KindBinding, v.key(string(v.bindingRecord(bd))))
	}
}

// enqueue pushes m to qs. A persistent message bound for durable queues is
// stored (body once, an entry per queue) and is released to consumers and
// basic.get only after the write is submitted, so no ack can overtake it;
// onDisk, if given, learns when it is there (publisher confirms).
func (v *VHost) enqueue(qs []queue.Interface, m *queue.Message, owner any, onDisk func(error)) (r Routed) {
	return v.enqueueBatch(qs, m, nil, owner, onDisk)
}

// enqueueBatch is enqueue with writes already collected in b (a delayed
// message's record, or the deletion of its entry), which are submitted with
// the message's own, so onDisk waits for them too.
func (v *VHost) enqueueBatch(qs []queue.Interface, m *queue.Message, b *storage.Batch, owner any, onDisk func(error)) (r Routed) {
	if m.Persistent && v.store != nil {
		for _, q := range qs {
			if storesWithBatch(q) {
				if b == nil {
					b = &storage.Batch{Owner: owner}
				}
				m.ID = v.store.NextMessageID()
				b.PutMessage(m.ID, queue.EncodeMessage(m))
				break
			}
		}
	}
	var join *confirmJoin // queues that confirm on their own commit
	refs := 0             // entries that reference the stored message
	for _, q := range qs {
		if q.Declared().Type != queue.TypeClassic {
			if e, ok := q.(queue.Enqueuer); ok {
				if join == nil {
					join = &confirmJoin{done: onDisk, log: v.logFailure}
					join.n.Store(1) // the caller's own share, dropped below
				}
				join.n.Add(1)
				r.Queues++
				e.Enqueue(m, join.settle)
				continue
			}
		}
		switch q.Push(m, b) {
		case queue.Accepted:
			r.Queues++
			if b != nil && storesWithBatch(q) {
				refs++
			}
		case queue.Refused, queue.Duplicate:
			// A queue-level duplicate is refused like a full queue's
			// publish: the plugin (0.5, on RabbitMQ 3.8-3.10) makes the
			// queue drop it and the publisher gets basic.nack.
			r.Refused++
		}
	}
	if join != nil {
		r.Stored = true
		if r.Refused > 0 {
			join.refused.Store(true)
		}
		if b != nil {
			join.n.Add(1)
		}
		defer join.settle(false, nil) // the caller's share: all proposals are made
	}
	if b == nil {
		return r
	}
	if m.ID != 0 {
		b.SetMessageRefs(m.ID, refs)
	}
	r.Stored = true
	if join != nil {
		onDisk = func(err error) { join.settle(false, err) }
	} else if onDisk == nil {
		onDisk = v.logFailure
	} else if r.Refused > 0 {
		confirm := onDisk
		onDisk = func(err error) {
			if err == nil {
				err = ErrRefused
			}
			confirm(err)
		}
	}
	v.store.Submit(b, onDisk)
	for _, q := range qs {
		q.Release(m)
	}
	return r
}

// storesWithBatch reports whether q keeps persistent messages in the
// publisher's storage batch: durable classic queues do, other types keep
// their own logs.
func storesWithBatch(q queue.Interface) bool {
	d := q.Declared()
	return d.Type == queue.TypeClassic && d.Durable && !d.Exclusive
}

// confirmJoin calls done once every queue that confirms on its own commit
// (and the storage batch, if any) has settled one publish: with the first
// error, or ErrRefused if a queue refused it.
type confirmJoin struct {
	n       atomic.Int32
	refused atomic.Bool
	mu      sync.Mutex // guards err
	err     error
	done    func(error) // nil: nobody waits
	log     func(error)
}

func (j *confirmJoin) settle(refused bool, err error) {
	if refused {
		j.refused.Store(true)
	}
	if err != nil {
		j.mu.Lock()
		if j.err == nil {
			j.err = err
		}
		j.mu.Unlock()
	}
	if j.n.Add(-1) != 0 {
		return
	}
	j.mu.Lock()
	err = j.err
	j.mu.Unlock()
	if err == nil && j.refused.Load() {
		err = ErrRefused
	}
	if j.done != nil {
		j.done(err)
	} else if err != nil && err != ErrRefused {
		j.log(err)
	}
}

func (v *VHost) logFailure(err error) {
	if err != nil {
		v.log.Error("storing messages failed", "vhost", v.Name, "err", err)
	}
}

// Recover rebuilds the virtual host's durable definitions and messages from
// storage, at start. It returns the storage keys of the queues it
// recovered, so that the caller can drop entries nothing owns, and the
// number of messages.
func (v *VHost) Recover() (keys []string, messages int, err error) {
	if v.store == nil {
		return nil, 0, nil
	}
	prefix := v.Name + "\x00"
	var records [5][][]byte
	for i, kind := range []string{storage.KindExchange, storage.KindQueue, storage.KindBinding, storage.KindPolicy, storage.KindOperatorPolicy} {
		err := v.store.Definitions(kind, func(key string, value []byte) error {
			if len(key) <= len(prefix) || key[:len(prefix)] != prefix {
				return nil
			}
			if kind == storage.KindBinding {
				value = []byte(key[len(prefix):])
			}
			records[i] = append(records[i], value)
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
	}
	decode := func(b []byte) (map[string]any, error) {
		t, err := decodeTable(b)
		if err != nil {
			return nil, fmt.Errorf("vhost %s: stored definition: %w", v.Name, err)
		}
		return t, nil
	}
	str := func(t map[string]any, k string) string { s, _ := t[k].(string); return s }
	flag := func(t map[string]any, k string) bool { b, _ := t[k].(bool); return b }
	args := func(t map[string]any) map[string]any {
		// No arguments are nil, as a channel hands them over.
		if a, _ := t["arguments"].(map[string]any); len(a) > 0 {
			return a
		}
		return nil
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.recoverPoliciesLocked(records[3], false); err != nil {
		return nil, 0, err
	}
	if err := v.recoverPoliciesLocked(records[4], true); err != nil {
		return nil, 0, err
	}
	for _, rec := range records[0] {
		t, err := decode(rec)
		if err != nil {
			return nil, 0, err
		}
		kind, ok := exchange.ParseKind(str(t, "type"))
		if !ok {
			return nil, 0, fmt.Errorf("vhost %s: stored exchange %q has unknown type %q", v.Name, str(t, "name"), str(t, "type"))
		}
		x := exchange.New(str(t, "name"), kind, true, flag(t, "auto_delete"), flag(t, "internal"), args(t))
		v.exchanges[x.Name] = x
		if key := str(t, "storage_key"); kind == exchange.Delayed && key != "" {
			v.delayKeys[x.Name] = key
			n, err := v.recoverDelayedLocked(x, key)
			if err != nil {
				return nil, 0, fmt.Errorf("vhost %s: delayed exchange %q: %w", v.Name, x.Name, err)
			}
			messages += n
			keys = append(keys, key)
		}
	}
	for _, rec := range records[1] {
		t, err := decode(rec)
		if err != nil {
			return nil, 0, err
		}
		op := DeclareQueue{Name: str(t, "name"), Durable: true, AutoDelete: flag(t, "auto_delete"), Args: args(t)}
		cfg, err := queue.ParseArgs(op.Args)
		if err != nil {
			return nil, 0, fmt.Errorf("vhost %s: stored queue %q: %w", v.Name, op.Name, err)
		}
		if cfg.Type == queue.TypeQuorum {
			group, _ := t["quorum_group"].(int64)
			if v.quorum == nil || group == 0 {
				return nil, 0, fmt.Errorf("vhost %s: stored quorum queue %q: no quorum engine or raft group", v.Name, op.Name)
			}
			q, err := v.newQuorum(op.Name, op.Args, v.queueConfigLocked(op.Name, op.Args, cfg), uint64(group))
			if err != nil {
				return nil, 0, fmt.Errorf("vhost %s: %w", v.Name, err)
			}
			messages += q.Stats().Ready
			v.queues[op.Name] = q
			continue
		}
		key := str(t, "storage_key")
		if key == "" {
			key = v.key(op.Name) // stored before queues had keys of their own
		}
		q := v.newQueue(op, 0, v.queueConfigLocked(op.Name, op.Args, cfg), key)
		n, err := q.Recover()
		if err != nil {
			return nil, 0, fmt.Errorf("vhost %s: queue %q: %w", v.Name, op.Name, err)
		}
		messages += n
		keys = append(keys, key)
		v.queues[op.Name] = q
	}
	bindings := make([]map[string]any, 0, len(records[2]))
	for _, rec := range records[2] {
		t, err := decode(rec)
		if err != nil {
			return nil, 0, err
		}
		bindings = append(bindings, t)
	}
	// A consistent-hash exchange's buckets follow binding order; RabbitMQ
	// rebuilds them at start from its bindings sorted as Erlang terms (key,
	// then destination kind, exchange before queue, then name), so Warren
	// binds in that order too and keys land where they would there.
	slices.SortStableFunc(bindings, func(a, b map[string]any) int {
		return cmp.Or(
			strings.Compare(str(a, "routing_key"), str(b, "routing_key")),
			strings.Compare(str(a, "destination_type"), str(b, "destination_type")),
			strings.Compare(str(a, "destination"), str(b, "destination")),
		)
	})
	for _, t := range bindings {
		src := v.exchanges[str(t, "source")]
		if src == nil {
			continue
		}
		dest := exchange.Destination{Name: str(t, "destination"), Exchange: str(t, "destination_type") == "exchange"}
		_, _ = src.Bind(dest, str(t, "routing_key"), args(t))
	}
	return keys, messages, nil
}
