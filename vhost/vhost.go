// Package vhost composes exchanges and queues into a virtual host: it applies
// definition ops (declare, bind, delete) in one place and routes publishes
// from exchanges to queues. It knows nothing of frames.
package vhost

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/event"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/storage"
)

// predeclared lists the exchanges every virtual host has, as in RabbitMQ.
var predeclared = []struct {
	name     string
	kind     exchange.Kind
	internal bool
}{
	{"", exchange.Direct, false},
	{"amq.direct", exchange.Direct, false},
	{"amq.fanout", exchange.Fanout, false},
	{"amq.topic", exchange.Topic, false},
	{"amq.headers", exchange.Headers, false},
	{"amq.match", exchange.Headers, false},
	{TraceExchange, exchange.Topic, true}, // the firehose (trace.go)
}

// VHost is one virtual host.
type VHost struct {
	// Name never changes.
	Name string

	// mu guards exchanges, queues, policies, opPolicies and deleted. It is held while
	// calling a queue's Touch, Stats, New and Recover (which take only the
	// queue's own lock) and exchanges' Bind and Unbind, never while a queue
	// pushes, delivers or is deleted, nor across a storage commit (see
	// docs/locks.md).
	mu        sync.RWMutex
	exchanges map[string]*exchange.Exchange
	queues    map[string]queue.Interface
	policies  map[string]*policy
	// opPolicies are the operator policies (operator.go), by name.
	opPolicies map[string]*policy
	deleted    bool // set by Delete: nothing may be created any more

	replyMu sync.RWMutex // guards replyTo
	replyTo map[string]ReplyTarget

	// delayKeys names each durable delayed exchange's entries in storage;
	// guarded by mu.
	delayKeys map[string]string
	delays    delays // delayed messages (delayed.go)
	dedup     dedupCaches

	store  *storage.Store
	budget *queue.Budget
	group  queue.Group
	quorum *queue.QuorumNode // nil: quorum queues are refused
	log    *slog.Logger
	limits atomic.Pointer[Limits] // replaced whole by SetLimits
	// conns counts open connections, for Limits.MaxConnections.
	conns atomic.Int64
	// tracing turns the firehose on (trace.go): the one load publishing
	// and delivering pay when it is off.
	tracing atomic.Bool
	// events receives the vhost's definition events (event.go).
	events event.Emitter
}

// Limits are RabbitMQ's per-vhost limits (rabbitmqctl set_vhost_limits):
// a negative value is unlimited, zero allows none, as in RabbitMQ.
type Limits struct {
	MaxConnections int64
	MaxQueues      int64
}

// Unlimited is a virtual host's limits when none is set.
var Unlimited = Limits{MaxConnections: -1, MaxQueues: -1}

// Options are a virtual host's collaborators.
type Options struct {
	// Store keeps durable definitions and persistent messages; nil keeps
	// everything in memory.
	Store *storage.Store
	// Budget bounds the memory of durable queues' backlogs, shared by every
	// virtual host of a server; nil keeps every backlog in memory.
	Budget *queue.Budget
	// Group runs the queues' background goroutines (see queue.Options).
	Group queue.Group
	// Quorum is the broker's quorum engine; nil refuses quorum queues.
	Quorum *queue.QuorumNode
	Log    *slog.Logger
	// Events receives the definition events (rabbitmq_event_exchange);
	// nil emits none.
	Events event.Emitter
}

// New makes a virtual host with RabbitMQ's predeclared exchanges.
func New(name string, o Options) *VHost {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Events == nil {
		o.Events = event.Nop{}
	}
	v := &VHost{
		Name:       name,
		events:     o.Events,
		store:      o.Store,
		budget:     o.Budget,
		group:      o.Group,
		quorum:     o.Quorum,
		log:        o.Log,
		exchanges:  make(map[string]*exchange.Exchange),
		policies:   make(map[string]*policy),
		opPolicies: make(map[string]*policy),
		queues:     make(map[string]queue.Interface),
		replyTo:    make(map[string]ReplyTarget),
		delayKeys:  make(map[string]string),
	}
	v.limits.Store(&Unlimited)
	for _, p := range predeclared {
		v.exchanges[p.name] = exchange.New(p.name, p.kind, true, false, p.internal, nil)
	}
	return v
}

// Connect counts a connection opening on the virtual host, refusing it
// past the connection limit with RabbitMQ's words.
func (v *VHost) Connect(user string) error {
	n := v.conns.Add(1)
	if limit := v.limits.Load().MaxConnections; limit >= 0 && n > limit {
		v.conns.Add(-1)
		return errorf(NotAllowed, "access to vhost '%s' refused for user '%s': connection limit (%d) is reached", v.Name, user, limit)
	}
	return nil
}

// SetLimits replaces the virtual host's limits; open connections and
// existing queues stay, as in RabbitMQ.
func (v *VHost) SetLimits(l Limits) { v.limits.Store(&l) }

// Limits returns the limits in force.
func (v *VHost) Limits() Limits { return *v.limits.Load() }

// Disconnect counts a connection closing.
func (v *VHost) Disconnect() { v.conns.Add(-1) }

// Apply carries out one definition op. A change to durable definitions is
// on disk when Apply returns.
//
// Memory and disk change together or not at all: an op changes memory and
// collects its records in t, and records how to take each change back. If
// the commit fails, the changes are undone (under v.mu) and the op fails
// with InternalError; what must not be undone (dropping a deleted queue's
// messages, applying a policy to queues) runs only after the commit.
func (v *VHost) Apply(op Op) (Result, error) { return v.ApplyAs(op, event.Internal) }

// ApplyAs is Apply on behalf of a user, whom the op's events name as
// user_who_performed_action (see event).
func (v *VHost) ApplyAs(op Op, actor string) (Result, error) {
	t := txn{actor: actor}
	res, err := op.apply(v, &t)
	if err != nil {
		return res, err
	}
	if v.store != nil && t.b.Len() > 0 {
		if err := v.store.Commit(&t.b); err != nil {
			v.mu.Lock()
			for i := len(t.undo) - 1; i >= 0; i-- {
				t.undo[i]()
			}
			v.mu.Unlock()
			for _, f := range t.failed {
				f()
			}
			v.log.Error("storing definitions failed", "vhost", v.Name, "err", err)
			return Result{}, errorf(InternalError, "cannot store definitions: %v", err)
		}
	}
	for _, f := range t.after {
		f(&res)
	}
	return res, nil
}

// txn is one op's changes: the records to commit, how to undo its memory
// changes if the commit fails, and what may happen only once it succeeded.
type txn struct {
	b storage.Batch
	// actor is who asked for the op, for its events.
	actor string
	// undo runs under v.mu, newest first, when the commit fails.
	undo []func()
	// failed runs without v.mu after undo.
	failed []func()
	// after runs without v.mu once the commit succeeded.
	after []func(*Result)
}

func (t *txn) onUndo(f func())           { t.undo = append(t.undo, f) }
func (t *txn) onFailure(f func())        { t.failed = append(t.failed, f) }
func (t *txn) onSuccess(f func(*Result)) { t.after = append(t.after, f) }

// Exchange returns the named exchange, or a NotFound error.
func (v *VHost) Exchange(name string) (*exchange.Exchange, error) {
	v.mu.RLock()
	e := v.exchanges[name]
	v.mu.RUnlock()
	if e == nil {
		return nil, v.noExchange(name)
	}
	return e, nil
}

// Queue returns the named queue for the connection owner: NotFound if it does
// not exist, ResourceLocked if it is another connection's exclusive queue.
func (v *VHost) Queue(name string, owner uint64) (queue.Interface, error) {
	v.mu.RLock()
	q := v.queues[name]
	v.mu.RUnlock()
	if q == nil {
		return nil, v.noQueue(name)
	}
	if q.Declared().Exclusive && q.Declared().Owner != owner {
		return nil, v.locked(name)
	}
	return q, nil
}

// Queues returns a snapshot of every queue.
func (v *VHost) Queues() []queue.Interface {
	v.mu.RLock()
	defer v.mu.RUnlock()
	qs := make([]queue.Interface, 0, len(v.queues))
	for _, q := range v.queues {
		qs = append(qs, q)
	}
	return qs
}

// Exchanges returns a snapshot of every exchange.
func (v *VHost) Exchanges() []*exchange.Exchange {
	v.mu.RLock()
	defer v.mu.RUnlock()
	es := make([]*exchange.Exchange, 0, len(v.exchanges))
	for _, e := range v.exchanges {
		es = append(es, e)
	}
	return es
}

// DeleteOwnedQueues deletes the exclusive queues of a closing connection.
func (v *VHost) DeleteOwnedQueues(owner uint64) {
	v.mu.RLock()
	var names []string
	for name, q := range v.queues {
		if q.Declared().Exclusive && q.Declared().Owner == owner {
			names = append(names, name)
		}
	}
	v.mu.RUnlock()
	for _, name := range names {
		_, _ = v.Apply(DeleteQueue{Name: name, Owner: owner})
	}
}

// ConsumerGone is called when a consumer left q; an auto-delete queue that
// lost its last consumer is deleted, as in RabbitMQ.
func (v *VHost) ConsumerGone(q queue.Interface, c queue.Consumer) {
	if q.RemoveConsumer(c) {
		_, _ = v.Apply(DeleteQueue{Name: q.Declared().Name, Owner: q.Declared().Owner})
	}
}

func (v *VHost) declareExchange(op DeclareExchange, t *txn) error {
	kind, ok := exchange.ParseKind(op.Kind)
	if !ok {
		return errorf(CommandInvalid, "unknown exchange type '%s'", op.Kind)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.deleted {
		return v.gone()
	}
	if e := v.exchanges[op.Name]; e != nil {
		return v.exchangeEquivalent(e, kind, op)
	}
	// As RabbitMQ, a plugin type checks its arguments only when the
	// exchange is made.
	if err := exchange.CheckArgs(kind, op.Args); err != nil {
		var de *exchange.DeclareError
		if errors.As(err, &de) && de.CommandInvalid {
			return errorf(CommandInvalid, "%s", de.Text)
		}
		return errorf(PreconditionFailed, "%s", err.Error())
	}
	e := exchange.New(op.Name, kind, op.Durable, op.AutoDelete, op.Internal, op.Args)
	v.exchanges[op.Name] = e
	t.onUndo(func() { v.forgetExchangeLocked(e) })
	if kind == exchange.Delayed {
		// Every delayed exchange may page its messages out; a durable
		// one also keeps its persistent messages there.
		if key := v.newStoreKey(op.Name); key != "" {
			v.delayKeys[op.Name] = key
			t.onUndo(func() { delete(v.delayKeys, op.Name) })
		}
	}
	v.storeExchange(&t.b, e)
	v.emitExchangeCreated(t, e, t.actor)
	return nil
}

// exchangeEquivalent applies RabbitMQ's redeclare check, naming the first
// property that differs as RabbitMQ does.
func (v *VHost) exchangeEquivalent(e *exchange.Exchange, kind exchange.Kind, op DeclareExchange) error {
	what := fmt.Sprintf("exchange '%s' in vhost '%s'", e.Name, v.Name)
	switch {
	case e.Kind != kind:
		return errorf(PreconditionFailed, "inequivalent arg 'type' for %s: received '%s' but current is '%s'", what, kind, e.Kind)
	case e.Durable != op.Durable:
		return errorf(PreconditionFailed, "inequivalent arg 'durable' for %s: received '%t' but current is '%t'", what, op.Durable, e.Durable)
	case e.AutoDelete != op.AutoDelete:
		return errorf(PreconditionFailed, "inequivalent arg 'auto_delete' for %s: received '%t' but current is '%t'", what, op.AutoDelete, e.AutoDelete)
	case e.Internal != op.Internal:
		return errorf(PreconditionFailed, "inequivalent arg 'internal' for %s: received '%t' but current is '%t'", what, op.Internal, e.Internal)
	}
	return argsEquivalent(what, e.Args, op.Args, exchangeCheckedArgs)
}

func (v *VHost) deleteExchange(op DeleteExchange, t *txn) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	e := v.exchanges[op.Name]
	if e == nil {
		// RabbitMQ answers delete-ok for an exchange that does not exist.
		return nil
	}
	if op.IfUnused && e.BindingCount() > 0 {
		return errorf(PreconditionFailed, "exchange '%s' in vhost '%s' in use", op.Name, v.Name)
	}
	v.removeExchangeLocked(e, t, t.actor)
	return nil
}

// removeExchangeLocked drops e, its bindings and every binding that leads
// to it; actor is who deleted it, for the events.
func (v *VHost) removeExchangeLocked(e *exchange.Exchange, t *txn, actor string) {
	delete(v.exchanges, e.Name)
	t.onUndo(func() { v.exchanges[e.Name] = e }) // with its own bindings, which it keeps
	v.forgetExchange(&t.b, e)
	v.emit(t, "exchange.deleted", func() wire.Table { return event.ExchangeDeleted(v.Name, e.Name, actor) })
	switch e.Kind {
	case exchange.Delayed:
		// Its stored messages go in the batch; those in memory once the
		// deletion is on disk.
		if key, ok := v.delayKeys[e.Name]; ok {
			if v.store != nil {
				t.b.DeleteQueue(key)
			}
			delete(v.delayKeys, e.Name)
			t.onUndo(func() { v.delayKeys[e.Name] = key })
		}
		t.onSuccess(func(*Result) { v.forgetDelayed(e) })
	case exchange.Deduplication:
		t.onSuccess(func(*Result) { v.dedup.drop(e) })
	}
	for _, bd := range e.Bindings() {
		v.forgetBinding(&t.b, bd)
		v.emitBinding(t, "binding.deleted", bd, actor)
	}
	v.removeDestinationLocked(exchange.Destination{Name: e.Name, Exchange: true}, t, actor)
}

// removeDestinationLocked removes every binding to dest, and the
// auto-delete exchanges that lose their last binding so; actor is who
// removed the bindings, for the events.
func (v *VHost) removeDestinationLocked(dest exchange.Destination, t *txn, actor string) {
	for _, src := range v.exchanges {
		if removed := src.RemoveDestination(dest); len(removed) > 0 {
			t.onUndo(func() { rebind(src, removed) })
			for _, bd := range removed {
				v.forgetBinding(&t.b, bd)
				v.emitBinding(t, "binding.deleted", bd, actor)
			}
			v.autoDeleteLocked(src, t)
		}
	}
}

// rebind puts back bindings that an op removed before its commit failed.
func rebind(src *exchange.Exchange, bs []exchange.Binding) {
	for _, bd := range bs {
		_, _ = src.Bind(bd.Destination, bd.Key, bd.Args) // they were valid
	}
}

// forgetExchangeLocked undoes a declare: the exchange goes if it is still
// the one declared.
func (v *VHost) forgetExchangeLocked(e *exchange.Exchange) {
	if v.exchanges[e.Name] == e {
		delete(v.exchanges, e.Name)
	}
}

// autoDeleteLocked deletes an auto-delete exchange that lost its last binding.
func (v *VHost) autoDeleteLocked(e *exchange.Exchange, t *txn) {
	if e.AutoDelete && e.BindingCount() == 0 && v.exchanges[e.Name] == e {
		v.removeExchangeLocked(e, t, event.Internal)
	}
}

func (v *VHost) declareQueue(op DeclareQueue, t *txn) error {
	cfg, err := queue.ParseArgs(op.Args)
	if err != nil {
		return v.invalidArg(op.Name, err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.deleted {
		return v.gone()
	}
	if q := v.queues[op.Name]; q != nil {
		if (q.Declared().Exclusive && q.Declared().Owner != op.Owner) || q.Declared().Exclusive != op.Exclusive {
			return v.locked(op.Name)
		}
		q.Touch()
		what := fmt.Sprintf("queue '%s' in vhost '%s'", q.Declared().Name, v.Name)
		switch {
		case q.Declared().Durable != op.Durable:
			return errorf(PreconditionFailed, "inequivalent arg 'durable' for %s: received '%t' but current is '%t'", what, op.Durable, q.Declared().Durable)
		case q.Declared().AutoDelete != op.AutoDelete:
			return errorf(PreconditionFailed, "inequivalent arg 'auto_delete' for %s: received '%t' but current is '%t'", what, op.AutoDelete, q.Declared().AutoDelete)
		}
		checked := queueCheckedArgs
		if q.Declared().Type == queue.TypeQuorum {
			checked = quorumCheckedArgs
		}
		return argsEquivalent(what, q.Declared().Args, op.Args, checked)
	}
	if cfg.Type == queue.TypeQuorum {
		if err := v.quorumDeclarable(op); err != nil {
			return err
		}
	}
	if limit := v.limits.Load().MaxQueues; limit >= 0 && int64(len(v.queues)) >= limit {
		return errorf(PreconditionFailed, "cannot declare queue '%s': queue limit in vhost '%s' (%d) is reached", op.Name, v.Name, limit)
	}
	if cfg.Type == queue.TypeQuorum {
		return v.declareQuorumLocked(op, cfg, t)
	}
	owner := uint64(0)
	if op.Exclusive {
		owner = op.Owner
	}
	q := v.newQueue(op, owner, v.queueConfigLocked(op.Name, op.Args, cfg), v.newStoreKey(op.Name))
	v.queues[op.Name] = q
	t.onUndo(func() {
		if v.queues[op.Name] == q {
			delete(v.queues, op.Name)
		}
	})
	t.onFailure(func() { q.Delete() }) // empty but for what raced in; stops its timers
	v.storeQueue(&t.b, q)
	v.emit(t, "queue.created", func() wire.Table {
		owner := ""
		if q.Declared().Exclusive {
			owner = event.Pid(q.Declared().Owner)
		}
		return event.QueueCreated(v.Name, q.Declared().Name, q.Declared().Durable, q.Declared().AutoDelete, q.Declared().Exclusive, owner, q.Declared().Args, t.actor)
	})
	// Every queue is bound to the default exchange by its name; that binding
	// is implicit (see route), so nothing is stored for it.
	return nil
}

// newQueue makes a queue wired to this virtual host. Exclusive queues die
// with their connection, so their definitions are never stored.
func (v *VHost) newQueue(op DeclareQueue, owner uint64, cfg queue.Config, storeKey string) *queue.Queue {
	o := queue.Options{
		Durable: op.Durable, Exclusive: op.Exclusive, AutoDelete: op.AutoDelete,
		Args: op.Args, Owner: owner, Config: cfg, Log: v.log,
		Hooks: queue.Hooks{DeadLetter: v.deadLetter, Expired: v.expireQueue, DedupKey: storedDedupKey},
	}
	if v.store != nil {
		// Every queue may page its backlog out; durable ones also keep
		// their persistent messages.
		o.Store, o.StoreKey, o.Budget, o.Group = v.store, storeKey, v.budget, v.group
	}
	return queue.New(op.Name, o)
}

// expireQueue deletes a queue that x-expires found unused, unless it was
// deleted (and perhaps declared anew) meanwhile.
func (v *VHost) expireQueue(q queue.Interface) {
	v.mu.RLock()
	current := v.queues[q.Declared().Name] == q
	v.mu.RUnlock()
	if current {
		_, _ = v.Apply(DeleteQueue{Name: q.Declared().Name, Owner: q.Declared().Owner})
	}
}

// ConsumerPriority reads a basic.consume's x-priority argument (0 when
// absent), refusing a value that is not an integer as RabbitMQ does.
func (v *VHost) ConsumerPriority(queueName string, args map[string]any) (int, error) {
	x, set := args["x-priority"]
	if !set {
		return 0, nil
	}
	priority, ok := queue.IntArg(x)
	if !ok {
		return 0, v.invalidArg(queueName, &queue.ArgError{Key: "x-priority", Problem: queue.NotInteger, Value: x})
	}
	return int(priority), nil
}

// invalidArg renders a queue argument error as RabbitMQ does: the offending
// argument and the Erlang error term.
func (v *VHost) invalidArg(name string, err error) error {
	var ae *queue.ArgError
	if !errors.As(err, &ae) {
		return errorf(PreconditionFailed, "%v", err)
	}
	var term string
	switch ae.Problem {
	case queue.UnacceptableType:
		if ae.Key == "x-dead-letter-exchange" {
			return errorf(PreconditionFailed, "invalid type '%s' for arg '%s' in queue '%s' in vhost '%s'", exchange.TypeName(ae.Value), ae.Key, name, v.Name)
		}
		term = "{unacceptable_type," + exchange.TypeName(ae.Value) + "}"
	case queue.NotInteger:
		term = `"expected integer, got ` + exchange.TypeName(ae.Value) + `"`
	case queue.ValueNegative:
		term = fmt.Sprintf("{value_negative,%v}", ae.Value)
	case queue.ValueZero:
		term = fmt.Sprintf("{value_zero,%v}", ae.Value)
	case queue.ValueTooLarge:
		term = fmt.Sprintf("{value_too_large,%v}", ae.Value)
	case queue.MaxValueExceeded:
		term = fmt.Sprintf("{max_value_exceeded,%v}", ae.Value)
	case queue.InvalidOverflow:
		term = "invalid_overflow"
	case queue.InvalidQueueMode:
		term = fmt.Sprintf(`"unsupported queue mode '%v'"`, ae.Value)
	case queue.InvalidQueueType:
		term = fmt.Sprintf(`"unsupported queue type '%v'"`, ae.Value)
	case queue.RoutingKeyButNoDLX:
		term = "routing_key_but_no_dlx_defined"
	case queue.InvalidDLXStrategy:
		term = "invalid_dlx_strategy"
	case queue.InvalidLocator:
		term = "invalid_queue_locator_arg"
	}
	return errorf(PreconditionFailed, "invalid arg '%s' for queue '%s' in vhost '%s': %s", ae.Key, name, v.Name, term)
}

func (v *VHost) deleteQueue(op DeleteQueue, t *txn) error {
	v.mu.Lock()
	q := v.queues[op.Name]
	if q == nil {
		v.mu.Unlock()
		// RabbitMQ answers delete-ok for a queue that does not exist.
		return nil
	}
	if q.Declared().Exclusive && q.Declared().Owner != op.Owner {
		v.mu.Unlock()
		return v.locked(op.Name)
	}
	if q.Declared().Type == queue.TypeQuorum && (op.IfUnused || op.IfEmpty) {
		v.mu.Unlock()
		flag := "if-unused"
		if !op.IfUnused {
			flag = "if-empty"
		}
		return errorf(NotImplemented, "cannot delete queue '%s' in vhost '%s'. queue.delete operations with %s flag set are not supported by quorum queues", op.Name, v.Name, flag)
	}
	st := q.Stats()
	if op.IfUnused && st.Consumers > 0 {
		v.mu.Unlock()
		return errorf(PreconditionFailed, "queue '%s' in vhost '%s' in use", op.Name, v.Name)
	}
	if op.IfEmpty && st.Ready > 0 {
		v.mu.Unlock()
		return errorf(PreconditionFailed, "queue '%s' in vhost '%s' not empty", op.Name, v.Name)
	}
	delete(v.queues, op.Name)
	t.onUndo(func() { v.queues[op.Name] = q })
	v.forgetQueue(&t.b, q)
	// RabbitMQ names nobody for the bindings that go with a queue.
	v.removeDestinationLocked(exchange.Destination{Name: op.Name}, t, event.Internal)
	v.emit(t, "queue.deleted", func() wire.Table { return event.QueueDeleted(v.Name, q.Declared().Name, t.actor) })
	v.mu.Unlock()
	// Once the deletion is on disk, and outside the vhost lock: Delete
	// drops the messages and calls consumers, which take their channels'
	// locks.
	t.onSuccess(func(r *Result) { r.Messages = q.Delete() })
	return nil
}

func (v *VHost) bind(op Bind, t *txn) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.deleted {
		return v.gone()
	}
	src, dest, err := v.bindingEndsLocked(Bind(op))
	if err != nil {
		return err
	}
	added, err := src.Bind(dest, op.Key, op.Args)
	if err != nil {
		return errorf(PreconditionFailed, "%s", err.Error())
	}
	if added {
		t.onUndo(func() { src.Unbind(dest, op.Key, op.Args) })
		bd := exchange.Binding{Source: src.Name, Destination: dest, Key: op.Key, Args: op.Args}
		v.storeBindingLocked(&t.b, bd)
		v.emitBinding(t, "binding.created", bd, t.actor)
	}
	return nil
}

func (v *VHost) unbind(op Unbind, t *txn) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	src, dest, err := v.bindingEndsLocked(Bind(op))
	if err != nil {
		return err
	}
	if src.Unbind(dest, op.Key, op.Args) {
		bd := exchange.Binding{Source: src.Name, Destination: dest, Key: op.Key, Args: op.Args}
		t.onUndo(func() { rebind(src, []exchange.Binding{bd}) })
		v.forgetBinding(&t.b, bd)
		v.emitBinding(t, "binding.deleted", bd, t.actor)
		v.autoDeleteLocked(src, t)
	}
	return nil
}

// bindingEndsLocked checks both ends of a binding the way RabbitMQ does: the
// default exchange takes no explicit bindings, and both ends must exist.
func (v *VHost) bindingEndsLocked(op Bind) (*exchange.Exchange, exchange.Destination, error) {
	dest := exchange.Destination{Name: op.Destination, Exchange: op.ToExchange}
	if op.Source == "" || (op.ToExchange && op.Destination == "") {
		return nil, dest, errorf(AccessRefused, "operation not permitted on the default exchange")
	}
	// RabbitMQ reports a missing source first, then a missing destination,
	// and checks exclusive ownership last.
	src := v.exchanges[op.Source]
	if src == nil {
		return nil, dest, v.noExchange(op.Source)
	}
	if op.ToExchange {
		if v.exchanges[op.Destination] == nil {
			return nil, dest, v.noExchange(op.Destination)
		}
		return src, dest, nil
	}
	q := v.queues[op.Destination]
	if q == nil {
		return nil, dest, v.noQueue(op.Destination)
	}
	if q.Declared().Exclusive && q.Declared().Owner != op.Owner {
		return nil, dest, v.locked(op.Destination)
	}
	return src, dest, nil
}

func (v *VHost) noExchange(name string) error {
	return errorf(NotFound, "no exchange '%s' in vhost '%s'", name, v.Name)
}

func (v *VHost) noQueue(name string) error {
	return errorf(NotFound, "no queue '%s' in vhost '%s'", name, v.Name)
}

func (v *VHost) locked(name string) error {
	return errorf(ResourceLocked, "cannot obtain exclusive access to locked queue '%s' in vhost '%s'. "+
		"It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.", name, v.Name)
}

// The arguments RabbitMQ compares on redeclare; others may differ freely.
var (
	exchangeCheckedArgs = []string{"alternate-exchange"}
	queueCheckedArgs    = []string{
		"x-expires", "x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key",
		"x-max-length", "x-max-length-bytes", "x-max-priority", "x-overflow",
		"x-queue-mode", "x-queue-type", "x-single-active-consumer", "x-delivery-limit",
	}
	// A quorum queue compares x-queue-type and the arguments its type
	// takes (rabbit_quorum_queue's capabilities), so an argument it
	// refuses, such as x-max-priority, may differ on redeclare.
	quorumCheckedArgs = []string{
		"x-queue-type", "x-dead-letter-exchange", "x-dead-letter-routing-key", "x-dead-letter-strategy",
		"x-expires", "x-max-length", "x-max-length-bytes", "x-max-in-memory-length", "x-max-in-memory-bytes",
		"x-overflow", "x-single-active-consumer", "x-quorum-initial-group-size", "x-delivery-limit",
		"x-message-ttl", "x-queue-leader-locator",
	}
)

func argsEquivalent(what string, current, received map[string]any, keys []string) error {
	for _, k := range keys {
		c, hasC := current[k]
		r, hasR := received[k]
		if k == "x-queue-type" && hasC != hasR {
			// An absent queue type and "classic" are equivalent; any other
			// type against none is compared as given, as RabbitMQ does.
			if v, _ := c.(string); hasC && v == "classic" {
				continue
			}
			if v, _ := r.(string); hasR && v == "classic" {
				continue
			}
		}
		switch {
		case hasC && hasR && exchange.ArgEquivalent(c, r), !hasC && !hasR:
			continue
		case hasC && hasR:
			return errorf(PreconditionFailed, "inequivalent arg '%s' for %s: received '%v' but current is '%v'", k, what, r, c)
		}
		return errorf(PreconditionFailed, "inequivalent arg '%s' for %s: received %s but current is %s", k, what, describeArg(r, hasR), describeArg(c, hasC))
	}
	return nil
}

// describeArg renders a one-sided argument the way RabbitMQ's
// inequivalence message does.
func describeArg(v any, present bool) string {
	if !present {
		return "none"
	}
	return fmt.Sprintf("the value '%v' of type '%s'", v, exchange.TypeName(v))
}

// Reserved reports whether a name is in the amq. namespace, which clients
// may not declare (RabbitMQ answers 403).
func Reserved(name string) bool { return strings.HasPrefix(name, "amq.") }
