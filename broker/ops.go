package broker

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/event"
	"github.com/warrenmq/warren/storage"
	"github.com/warrenmq/warren/vhost"
)

// Op is one change to the broker's state: a user, a virtual host, a
// permission, or (VhostOp) a virtual host's definitions. Every such change is
// a value of one of these types handed to Broker.Apply, the only place they
// change, so that a later cluster can replicate them as log entries. An op
// carries all its inputs (a password arrives already hashed, with its salt;
// a server-named queue's name is chosen before the op is made), so applying
// it is deterministic.
type Op interface {
	// applyTo changes memory and storage together, or neither; actor is
	// who asked, for the events.
	applyTo(b *Broker, actor string) (vhost.Result, error)
}

// VhostOp applies a definition op (declare, delete, bind, unbind, policy)
// to the named virtual host.
type VhostOp struct {
	Vhost string
	Op    vhost.Op
}

// PutUser creates a user, or replaces an existing user's password hash and
// tags (its permissions stay).
type PutUser struct {
	Name string
	// PasswordHash is RabbitMQ's base64 password_hash (NewPasswordHash makes
	// one from a clear-text password, which is never stored). "" makes a user
	// that cannot log in with a password, as RabbitMQ's clear_password does.
	PasswordHash string
	// HashingAlgorithm is RabbitMQ's hashing module for PasswordHash:
	// rabbit_password_hashing_sha256 (also when ""), _sha512 or _md5.
	HashingAlgorithm string
	// Tags are RabbitMQ user tags such as "administrator".
	Tags []string
}

// DeleteUser removes a user and its permissions, and closes its connections
// with 320 CONNECTION_FORCED, as RabbitMQ does.
type DeleteUser struct{ Name string }

// PutVhost creates a virtual host, or replaces an existing one's description
// and tags.
type PutVhost struct {
	Name        string
	Description string
	Tags        []string
}

// DeleteVhost closes the virtual host's connections with 320
// CONNECTION_FORCED, deletes its queues (and their messages), exchanges,
// bindings and policies, the permissions on it, and the virtual host, as
// RabbitMQ does.
type DeleteVhost struct{ Name string }

// SetPermissions sets a user's configure, write and read patterns on a
// virtual host, replacing any it had there. Open connections see the new
// patterns at their next check.
type SetPermissions struct {
	User      string
	Vhost     string
	Configure string
	Write     string
	Read      string
}

// ClearPermissions removes a user's permissions on a virtual host; removing
// permissions the user does not have is not an error.
type ClearPermissions struct {
	User  string
	Vhost string
}

// Apply carries out one op: memory and the stored records change together,
// or, when the op fails (storage included), neither does. Ops on users,
// vhosts and permissions are applied one at a time; a vhost's definition ops
// are serialized by that vhost. Every failure is a *vhost.Error, whose Kind
// the protocol layer maps to a reply code and the management API to an
// HTTP status: NotFound for a missing user, vhost or object, CommandInvalid
// for a bad value, PreconditionFailed, AccessRefused and ResourceLocked as
// AMQP has them, InternalError when storage failed.
func (b *Broker) Apply(op Op) (vhost.Result, error) {
	return op.applyTo(b, event.Internal)
}

// ApplyAs is Apply on behalf of a user (a client's, or the management API's
// caller), whom the op's events name as user_who_performed_action.
func (b *Broker) ApplyAs(op Op, actor string) (vhost.Result, error) {
	return op.applyTo(b, actor)
}

func (op VhostOp) applyTo(b *Broker, actor string) (vhost.Result, error) {
	v := b.VHost(op.Vhost)
	if v == nil {
		return vhost.Result{}, noVhost(op.Vhost)
	}
	return v.ApplyAs(op.Op, actor)
}

// serial runs a change to users, vhosts or permissions under opMu, one at
// a time.
func (b *Broker) serial(apply func(*Broker, string) error, actor string) (vhost.Result, error) {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	return vhost.Result{}, apply(b, actor)
}

func (op PutUser) applyTo(b *Broker, actor string) (vhost.Result, error) {
	return b.serial(op.apply, actor)
}

func (op PutUser) apply(b *Broker, actor string) error {
	if err := checkName("user", op.Name); err != nil {
		return err
	}
	cr, err := newCredentials(op.PasswordHash, op.HashingAlgorithm, op.Tags)
	if err != nil {
		return invalid("%v", err)
	}
	old := b.Account(op.Name)
	var limits Limits // a user's limits stay, as RabbitMQ's do
	if old != nil {
		limits = old.Limits()
	}
	var batch storage.Batch
	batch.PutDefinition(storage.KindUser, op.Name, encodeRecord(userRecord{
		Name: op.Name, PasswordHash: cr.hash, HashingAlgorithm: cr.algorithm, Tags: cr.tags, Limits: limits,
	}))
	if err := b.commit(&batch); err != nil {
		return err
	}
	if a := old; a != nil {
		prev := a.creds.Load()
		a.creds.Store(cr)
		if prev.hash != cr.hash {
			b.emit("user.password.changed", func() wire.Table { return event.User(op.Name, actor) })
		}
		b.emit("user.tags.set", func() wire.Table { return event.UserTags(op.Name, cr.tags, actor) })
		return nil
	}
	b.updateRegistry(func(r *registry) { r.accounts[op.Name] = newAccount(op.Name, cr) })
	b.emit("user.created", func() wire.Table { return event.User(op.Name, actor) })
	b.emit("user.tags.set", func() wire.Table { return event.UserTags(op.Name, cr.tags, actor) })
	return nil
}

func (op DeleteUser) applyTo(b *Broker, actor string) (vhost.Result, error) {
	return b.serial(op.apply, actor)
}

func (op DeleteUser) apply(b *Broker, actor string) error {
	reg := b.reg.Load()
	a := reg.accounts[op.Name]
	if a == nil {
		return noUser(op.Name)
	}
	var batch storage.Batch
	batch.DeleteDefinition(storage.KindUser, op.Name)
	for vh := range *a.perms.Load() {
		batch.DeleteDefinition(storage.KindPermission, permissionKey(vh, op.Name))
	}
	dropTopics := a.deleteTopicsOf(&batch, "")
	if err := b.commit(&batch); err != nil {
		return err
	}
	dropTopics()
	b.updateRegistry(func(r *registry) { delete(r.accounts, op.Name) })
	a.perms.Store(&permissionSet{})
	// After the registry no longer has the account: a connection opening
	// now either is listed here or finds the account gone (handshake).
	b.closeConnections(func(user, _ string) bool { return user == op.Name }, "user '"+op.Name+"' is deleted")
	b.emit("user.deleted", func() wire.Table { return event.User(op.Name, actor) })
	return nil
}

func (op PutVhost) applyTo(b *Broker, actor string) (vhost.Result, error) {
	return b.serial(op.apply, actor)
}

func (op PutVhost) apply(b *Broker, actor string) error {
	if err := checkName("vhost", op.Name); err != nil {
		return err
	}
	old := b.reg.Load().vhosts[op.Name]
	var limits Limits // a vhost's limits stay, as RabbitMQ's do
	if old != nil {
		limits = old.limits
	}
	var batch storage.Batch
	batch.PutDefinition(storage.KindVhost, op.Name, encodeRecord(vhostRecord{
		Name: op.Name, Description: op.Description, Tags: op.Tags, Limits: limits,
	}))
	if err := b.commit(&batch); err != nil {
		return err
	}
	e := &vhostEntry{description: op.Description, tags: slices.Clone(op.Tags), limits: limits}
	if old != nil {
		e.v = old.v
	} else {
		e.v = b.newVHost(op.Name, nil)
	}
	b.updateRegistry(func(r *registry) { r.vhosts[op.Name] = e })
	if old == nil {
		e.v.AnnounceCreated(actor)
		b.emit("vhost.created", func() wire.Table {
			return event.VhostCreated(op.Name, op.Description, op.Tags, event.Node(), e.v.Tracing(), actor)
		})
		if op.Name == event.DefaultVhost {
			b.declareEventExchange()
		}
	}
	return nil
}

func (op DeleteVhost) applyTo(b *Broker, actor string) (vhost.Result, error) {
	return b.serial(op.apply, actor)
}

func (op DeleteVhost) apply(b *Broker, actor string) error {
	reg := b.reg.Load()
	e := reg.vhosts[op.Name]
	if e == nil {
		return noVhost(op.Name)
	}
	// Out of the registry first, so that no connection opens on it any more
	// (one opening right now finds it gone after open, see handshake), then
	// close the open ones, then empty it.
	b.updateRegistry(func(r *registry) { delete(r.vhosts, op.Name) })
	if op.Name == event.DefaultVhost {
		b.events.x.Store(nil)
	}
	b.closeConnections(func(_, vh string) bool { return vh == op.Name }, "vhost '"+op.Name+"' is deleted")
	if err := e.v.DeleteAs(actor); err != nil {
		// Keep the vhost's record, so that what could not be deleted comes
		// back at the next start, where the deletion can be retried.
		b.log.Error("deleting vhost failed", "vhost", op.Name, "err", err)
		return &vhost.Error{Kind: vhost.InternalError, Text: "cannot delete vhost '" + op.Name + "': " + err.Error()}
	}
	// The vhost's own record goes last: a crash before this commit brings
	// the vhost back at start, empty or not, rather than leaving its stored
	// queues without a vhost.
	var batch storage.Batch
	batch.DeleteDefinition(storage.KindVhost, op.Name)
	var had []*Account
	var dropTopics []func()
	for _, a := range reg.accounts {
		if _, ok := (*a.perms.Load())[op.Name]; ok {
			batch.DeleteDefinition(storage.KindPermission, permissionKey(op.Name, a.name))
			had = append(had, a)
		}
		dropTopics = append(dropTopics, a.deleteTopicsOf(&batch, op.Name))
	}
	if err := b.commit(&batch); err != nil {
		return err
	}
	for _, drop := range dropTopics {
		drop()
	}
	for _, a := range had {
		a.setPermissions(op.Name, nil)
		b.emit("permission.deleted", func() wire.Table { return event.PermissionDeleted(op.Name, a.name, actor) })
	}
	b.emit("vhost.deleted", func() wire.Table { return event.VhostDeleted(op.Name, actor) })
	b.emit("vhost.down", func() wire.Table { return event.VhostDown(op.Name, event.Node()) })
	return nil
}

func (op SetPermissions) applyTo(b *Broker, actor string) (vhost.Result, error) {
	return b.serial(op.apply, actor)
}

func (op SetPermissions) apply(b *Broker, actor string) error {
	a, err := b.reg.Load().accountOn(op.User, op.Vhost)
	if err != nil {
		return err
	}
	p := Permission{Configure: op.Configure, Write: op.Write, Read: op.Read}
	ps, err := compilePermissions(p)
	if err != nil {
		return invalid("%v", err)
	}
	var batch storage.Batch
	batch.PutDefinition(storage.KindPermission, permissionKey(op.Vhost, op.User), encodeRecord(permissionRecord{
		User: op.User, Vhost: op.Vhost, Configure: p.Configure, Write: p.Write, Read: p.Read,
	}))
	if err := b.commit(&batch); err != nil {
		return err
	}
	a.setPermissions(op.Vhost, ps)
	b.emit("permission.created", func() wire.Table {
		return event.PermissionCreated(op.Vhost, op.User, p.Configure, p.Write, p.Read, actor)
	})
	return nil
}

func (op ClearPermissions) applyTo(b *Broker, actor string) (vhost.Result, error) {
	return b.serial(op.apply, actor)
}

func (op ClearPermissions) apply(b *Broker, actor string) error {
	a, err := b.reg.Load().accountOn(op.User, op.Vhost)
	if err != nil {
		return err
	}
	if _, ok := (*a.perms.Load())[op.Vhost]; !ok {
		return nil
	}
	var batch storage.Batch
	batch.DeleteDefinition(storage.KindPermission, permissionKey(op.Vhost, op.User))
	if err := b.commit(&batch); err != nil {
		return err
	}
	a.setPermissions(op.Vhost, nil)
	b.emit("permission.deleted", func() wire.Table { return event.PermissionDeleted(op.Vhost, op.User, actor) })
	return nil
}

// updateRegistry replaces the registry with a copy that change has changed
// (copy on write: readers keep the snapshot they loaded). Only ops call it,
// under b.opMu, after their records are committed.
func (b *Broker) updateRegistry(change func(next *registry)) {
	next := b.reg.Load().clone()
	change(next)
	b.reg.Store(next)
}

// commit writes an op's records; a failure changes nothing in memory.
func (b *Broker) commit(batch *storage.Batch) error {
	if batch.Len() == 0 {
		return nil
	}
	if err := b.store.Commit(batch); err != nil {
		if errors.Is(err, storage.ErrInvalid) {
			return invalid("%v", err)
		}
		b.log.Error("storing definitions failed", "err", err)
		return &vhost.Error{Kind: vhost.InternalError, Text: "cannot store definitions: " + err.Error()}
	}
	return nil
}

// checkName refuses names that cannot be stored or used: empty, holding a
// NUL (stored keys join names with one, and PLAIN separates with one), or
// not UTF-8 (the stored JSON record would not give the name back).
func checkName(what, name string) error {
	switch {
	case name == "":
		return invalid("%s name must not be empty", what)
	case strings.ContainsRune(name, 0):
		return invalid("%s name must not contain NUL", what)
	case !utf8.ValidString(name):
		return invalid("%s name must be UTF-8", what)
	}
	return nil
}

func invalid(format string, args ...any) error {
	return &vhost.Error{Kind: vhost.CommandInvalid, Text: fmt.Sprintf(format, args...)}
}

func noUser(name string) error {
	return &vhost.Error{Kind: vhost.NotFound, Text: "no user '" + name + "'"}
}

func noVhost(name string) error {
	return &vhost.Error{Kind: vhost.NotFound, Text: "no vhost '" + name + "'"}
}

// accountOn finds the user a permission op names, and checks the vhost it
// names exists: the not-found errors both permission ops answer with.
func (r *registry) accountOn(user, vhostName string) (*Account, error) {
	a := r.accounts[user]
	if a == nil {
		return nil, noUser(user)
	}
	if r.vhosts[vhostName] == nil {
		return nil, noVhost(vhostName)
	}
	return a, nil
}
