package broker

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/warrenmq/warren/storage"
	"github.com/warrenmq/warren/vhost"
)

// The limits RabbitMQ knows (rabbitmqctl set_vhost_limits, set_user_limits).
const (
	LimitMaxConnections = "max-connections"
	LimitMaxQueues      = "max-queues"
	LimitMaxChannels    = "max-channels"
)

// Limits are a vhost's or a user's own limits by name; a negative value is
// unlimited and zero allows none, as in RabbitMQ. A name that is absent
// falls back to the default (the config's, for a vhost; none, for a user).
type Limits map[string]int64

// SetVhostLimit sets one of a vhost's limits (max-connections, max-queues).
// Open connections and existing queues stay; the limit applies to the next
// connection or declaration, as RabbitMQ's does.
type SetVhostLimit struct {
	Vhost string
	Name  string
	Value int64
}

// ClearVhostLimit removes one of a vhost's own limits, so the config's
// default applies again; clearing one it does not have is not an error.
type ClearVhostLimit struct{ Vhost, Name string }

// SetUserLimit sets one of a user's limits (max-connections, max-channels).
type SetUserLimit struct {
	User  string
	Name  string
	Value int64
}

// ClearUserLimit removes one of a user's limits.
type ClearUserLimit struct{ User, Name string }

func (op SetVhostLimit) applyTo(b *Broker, actor string) (vhost.Result, error) {
	return b.serial(func(b *Broker, _ string) error { return b.changeVhostLimit(op.Vhost, op.Name, &op.Value) }, actor)
}

func (op ClearVhostLimit) applyTo(b *Broker, actor string) (vhost.Result, error) {
	return b.serial(func(b *Broker, _ string) error { return b.changeVhostLimit(op.Vhost, op.Name, nil) }, actor)
}

func (op SetUserLimit) applyTo(b *Broker, actor string) (vhost.Result, error) {
	return b.serial(func(b *Broker, _ string) error { return b.changeUserLimit(op.User, op.Name, &op.Value) }, actor)
}

func (op ClearUserLimit) applyTo(b *Broker, actor string) (vhost.Result, error) {
	return b.serial(func(b *Broker, _ string) error { return b.changeUserLimit(op.User, op.Name, nil) }, actor)
}

// changeVhostLimit sets (value != nil) or clears one limit, storing the
// vhost's record with its new limits.
func (b *Broker) changeVhostLimit(name, limit string, value *int64) error {
	e := b.reg.Load().vhosts[name]
	if e == nil {
		return noVhost(name)
	}
	if value != nil && limit != LimitMaxConnections && limit != LimitMaxQueues {
		return invalid("Validation failed\n\nUnrecognised terms [{<<\"%s\">>,%d}] in limits\n", limit, *value)
	}
	next := withLimit(e.limits, limit, value)
	if maps.Equal(next, e.limits) {
		return nil
	}
	var batch storage.Batch
	batch.PutDefinition(storage.KindVhost, name, encodeRecord(vhostRecord{
		Name: name, Description: e.description, Tags: e.tags, Limits: next,
	}))
	if err := b.commit(&batch); err != nil {
		return err
	}
	ne := &vhostEntry{v: e.v, description: e.description, tags: e.tags, limits: next}
	b.updateRegistry(func(r *registry) { r.vhosts[name] = ne })
	e.v.SetLimits(b.vhostLimits(next))
	return nil
}

func (b *Broker) changeUserLimit(user, limit string, value *int64) error {
	a := b.Account(user)
	if a == nil {
		return noUser(user)
	}
	if value != nil && limit != LimitMaxConnections && limit != LimitMaxChannels {
		return invalid("Unrecognised terms [{<<\"%s\">>,%d}] in user-limits", limit, *value)
	}
	cur := a.Limits()
	next := withLimit(cur, limit, value)
	if maps.Equal(next, cur) {
		return nil
	}
	cr := a.creds.Load()
	var batch storage.Batch
	batch.PutDefinition(storage.KindUser, user, encodeRecord(userRecord{
		Name: user, PasswordHash: cr.hash, HashingAlgorithm: cr.algorithm, Tags: cr.tags, Limits: next,
	}))
	if err := b.commit(&batch); err != nil {
		return err
	}
	a.setLimits(next)
	return nil
}

// withLimit is a copy of l with one limit set or, for a nil value, removed;
// nil when none is left.
func withLimit(l Limits, name string, value *int64) Limits {
	next := maps.Clone(l)
	if value == nil {
		delete(next, name)
	} else {
		if next == nil {
			next = Limits{}
		}
		next[name] = *value
	}
	if len(next) == 0 {
		return nil
	}
	return next
}

// vhostLimits are the limits a vhost enforces: its own, else the config's
// (where zero is unlimited).
func (b *Broker) vhostLimits(own Limits) vhost.Limits {
	pick := func(name string, def int64) int64 {
		if v, ok := own[name]; ok {
			return v
		}
		if def <= 0 {
			return -1
		}
		return def
	}
	return vhost.Limits{
		MaxConnections: pick(LimitMaxConnections, b.cfg.VHostLimits.MaxConnections),
		MaxQueues:      pick(LimitMaxQueues, b.cfg.VHostLimits.MaxQueues),
	}
}

// VhostLimits returns the vhosts' own limits (not the config's defaults),
// by vhost name, for those that have any, as /api/vhost-limits lists them.
func (b *Broker) VhostLimits() map[string]Limits {
	out := make(map[string]Limits)
	for name, e := range b.reg.Load().vhosts {
		if len(e.limits) > 0 {
			out[name] = maps.Clone(e.limits)
		}
	}
	return out
}

// UserLimits returns the users' limits by user name, for those that have
// any.
func (b *Broker) UserLimits() map[string]Limits {
	out := make(map[string]Limits)
	for name, a := range b.reg.Load().accounts {
		if l := a.Limits(); len(l) > 0 {
			out[name] = l
		}
	}
	return out
}

// SortedLimitNames returns the names of l, sorted.
func SortedLimitNames(l Limits) []string { return slices.Sorted(maps.Keys(l)) }

// accountLimits are a user's limits and what counts against them.
type accountLimits struct {
	limits   atomic.Pointer[Limits] // replaced whole; nil: none
	conns    atomic.Int64           // open connections of the user
	channels atomic.Int64           // open channels over all its connections
}

// Limits returns a copy of the user's limits.
func (a *Account) Limits() Limits {
	if l := a.lim.limits.Load(); l != nil {
		return maps.Clone(*l)
	}
	return nil
}

func (a *Account) setLimits(l Limits) {
	if len(l) == 0 {
		a.lim.limits.Store(nil)
		return
	}
	a.lim.limits.Store(&l)
}

func (a *Account) limit(name string) (int64, bool) {
	l := a.lim.limits.Load()
	if l == nil {
		return 0, false
	}
	v, ok := (*l)[name]
	return v, ok && v >= 0
}

// take counts one more in n unless that passes the user's limit name, in
// which case it leaves n as it was and returns the limit and false.
func (a *Account) take(n *atomic.Int64, name string) (int64, bool) {
	count := n.Add(1)
	if limit, ok := a.limit(name); ok && count > limit {
		n.Add(-1)
		return limit, false
	}
	return 0, true
}

// Connect counts a connection of the user opening, refusing it past the
// user's max-connections with RabbitMQ's words (a *vhost.Error of kind
// NotAllowed). Disconnect undoes it.
func (a *Account) Connect() error {
	if limit, ok := a.take(&a.lim.conns, LimitMaxConnections); !ok {
		return &vhost.Error{Kind: vhost.NotAllowed, Text: "connection refused for user '" + a.name + "': user connection limit (" + strconv.FormatInt(limit, 10) + ") is reached"}
	}
	return nil
}

// Disconnect counts a connection of the user closing.
func (a *Account) Disconnect() { a.lim.conns.Add(-1) }

// OpenChannel counts a channel of the user opening, refusing it past the
// user's max-channels with RabbitMQ's words. CloseChannel undoes it.
func (a *Account) OpenChannel() error {
	if limit, ok := a.take(&a.lim.channels, LimitMaxChannels); !ok {
		return &vhost.Error{Kind: vhost.NotAllowed, Text: "number of channels opened for user '" + a.name + "' has reached the maximum allowed user limit of (" + strconv.FormatInt(limit, 10) + ")"}
	}
	return nil
}

// CloseChannel counts a channel of the user closing.
func (a *Account) CloseChannel() { a.lim.channels.Add(-1) }

// vhostLimitsComponent is the runtime-parameter component under which
// RabbitMQ's definitions carry a vhost's limits (name "limits").
const vhostLimitsComponent = "vhost-limits"

func (b *Broker) ownVhostLimits(name string) Limits {
	if e := b.reg.Load().vhosts[name]; e != nil {
		return e.limits
	}
	return nil
}

// exportLimits is l as definitions write it: an object, {} when empty.
func exportLimits(l Limits) map[string]any {
	out := make(map[string]any, len(l))
	for k, v := range l {
		out[k] = v
	}
	return out
}

// importLimits reads a definitions limits object; a value that is not an
// integer is refused with RabbitMQ's validation words.
func importLimits(m map[string]any) (Limits, error) {
	out := Limits{}
	for k, raw := range m {
		var v int64
		switch n := raw.(type) {
		case float64:
			v = int64(n)
			if float64(v) != n {
				return nil, invalid("%s should be a number, actually was %v", k, n)
			}
		case json.Number:
			i, err := n.Int64()
			if err != nil {
				return nil, invalid("%s should be a number, actually was %s", k, n)
			}
			v = i
		default:
			return nil, invalid("%s should be a number, actually was %v", k, raw)
		}
		out[k] = v
	}
	return out, nil
}

// importVhostLimits makes a vhost's limits those of an import, as
// RabbitMQ's import replaces the vhost-limits parameter whole.
func (b *Broker) importVhostLimits(vh string, m map[string]any) error {
	l, err := importLimits(m)
	if err != nil {
		return err
	}
	for _, name := range SortedLimitNames(l) {
		if _, err := b.Apply(SetVhostLimit{Vhost: vh, Name: name, Value: l[name]}); err != nil {
			return err
		}
	}
	for _, name := range []string{LimitMaxConnections, LimitMaxQueues} {
		if _, ok := l[name]; !ok {
			if _, err := b.Apply(ClearVhostLimit{Vhost: vh, Name: name}); err != nil {
				return err
			}
		}
	}
	return nil
}

// importUserLimits sets the limits an import gives a user; a user entry
// without limits leaves the user's as they are.
func (b *Broker) importUserLimits(user string, m map[string]any) error {
	l, err := importLimits(m)
	if err != nil {
		return err
	}
	for _, name := range SortedLimitNames(l) {
		if _, err := b.Apply(SetUserLimit{User: user, Name: name, Value: l[name]}); err != nil {
			return err
		}
	}
	return nil
}
