package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/warrenmq/warren/storage"
	"github.com/warrenmq/warren/vhost"
)

// registry is the broker's users and virtual hosts. It is an immutable
// snapshot behind Broker.reg, replaced whole by the ops that add or remove
// a user or a virtual host (copy on write), so that logins and lookups read
// it with one atomic load and no lock. Accounts change their credentials
// and permissions in place (see account), which needs no new snapshot.
type registry struct {
	vhosts   map[string]*vhostEntry
	accounts map[string]*Account
}

// vhostEntry is a virtual host and its metadata; replaced whole.
type vhostEntry struct {
	v           *vhost.VHost
	description string
	tags        []string
	limits      Limits // its own (set_vhost_limits); never changed in place
}

func newRegistry() *registry {
	return &registry{vhosts: make(map[string]*vhostEntry), accounts: make(map[string]*Account)}
}

// clone copies the maps (not the entries), for an op to change and store.
func (r *registry) clone() *registry {
	return &registry{vhosts: maps.Clone(r.vhosts), accounts: maps.Clone(r.accounts)}
}

// The stored records: JSON under storage.KindUser (key: the user name),
// KindVhost (the vhost name) and KindPermission (vhost NUL user, so a
// vhost's permissions share a prefix, as its other definitions do).
type userRecord struct {
	Name             string   `json:"name"`
	PasswordHash     string   `json:"password_hash"`
	HashingAlgorithm string   `json:"hashing_algorithm"`
	Tags             []string `json:"tags"`
	Limits           Limits   `json:"limits,omitempty"`
}

type vhostRecord struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Tags        []string `json:"tags"`
	Limits      Limits   `json:"limits,omitempty"`
}

type permissionRecord struct {
	User      string `json:"user"`
	Vhost     string `json:"vhost"`
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

func encodeRecord(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain strings and string slices always encode
	}
	return b
}

func permissionKey(vhostName, user string) string { return vhostName + "\x00" + user }

// newVHost makes an empty virtual host wired to the broker's storage.
// own are the vhost's own limits, over the config's.
func (b *Broker) newVHost(name string, own Limits) *vhost.VHost {
	v := vhost.New(name, vhost.Options{Store: b.store, Budget: b.budget, Group: b, Quorum: b.quorum, Log: b.log.With("vhost", name), Events: b.events})
	v.SetLimits(b.vhostLimits(own))
	return v
}

// Account returns the named user's account, or nil. A protocol server
// keeps the account of a connection's user and checks permissions on it.
func (b *Broker) Account(name string) *Account { return b.reg.Load().accounts[name] }

// restoreDefinitions loads the stored virtual hosts, users and permissions
// at start, before the virtual hosts recover their queues. A record that
// does not decode means a damaged store: the server refuses to start.
func (b *Broker) restoreDefinitions() error {
	reg := newRegistry()
	corrupt := func(kind, key string, err error) error {
		if err == nil {
			err = errors.New("the record does not match its key")
		}
		return fmt.Errorf("%w: %s: stored %s %q: %v", storage.ErrCorrupt, b.store.Path(), kind, key, err)
	}
	err := b.store.Definitions(storage.KindVhost, func(key string, value []byte) error {
		var r vhostRecord
		if err := json.Unmarshal(value, &r); err != nil || r.Name != key {
			return corrupt("vhost", key, err)
		}
		reg.vhosts[r.Name] = &vhostEntry{v: b.newVHost(r.Name, r.Limits), description: r.Description, tags: r.Tags, limits: r.Limits}
		return nil
	})
	if err != nil {
		return err
	}
	err = b.store.Definitions(storage.KindUser, func(key string, value []byte) error {
		var r userRecord
		if err := json.Unmarshal(value, &r); err != nil || r.Name != key {
			return corrupt("user", key, err)
		}
		cr, err := newCredentials(r.PasswordHash, r.HashingAlgorithm, r.Tags)
		if err != nil {
			return corrupt("user", key, err)
		}
		a := newAccount(r.Name, cr)
		a.setLimits(r.Limits)
		reg.accounts[r.Name] = a
		return nil
	})
	if err != nil {
		return err
	}
	err = b.store.Definitions(storage.KindPermission, func(key string, value []byte) error {
		var r permissionRecord
		if err := json.Unmarshal(value, &r); err != nil || permissionKey(r.Vhost, r.User) != key {
			return corrupt("permission", key, err)
		}
		a := reg.accounts[r.User]
		if a == nil || reg.vhosts[r.Vhost] == nil {
			// Deleting a user or a vhost deletes its permissions in the
			// same batch, so this is not expected; it is harmless.
			b.log.Warn("stored permissions name a missing user or vhost; ignored", "user", r.User, "vhost", r.Vhost)
			return nil
		}
		p, err := compilePermissions(Permission{Configure: r.Configure, Write: r.Write, Read: r.Read})
		if err != nil {
			return corrupt("permission", key, err)
		}
		(*a.perms.Load())[r.Vhost] = p // not shared yet
		return nil
	})
	if err != nil {
		return err
	}
	b.reg.Store(reg)
	return nil
}

// applyBaseline makes sure the configured virtual hosts, users and
// permissions exist, through ops, so they are stored like any other. Each
// one that is missing is created; one that is stored keeps its stored value
// (what the management API set last), and a difference from the config is
// logged. So the config is a baseline: deleting a configured user, vhost or
// permission lasts until the next start.
func (b *Broker) applyBaseline() error {
	for _, name := range b.cfg.Vhosts {
		if b.VHost(name) == nil {
			if _, err := b.Apply(PutVhost{Name: name}); err != nil {
				return fmt.Errorf("vhost %q: %w", name, err)
			}
		}
	}
	for _, u := range b.cfg.Users {
		a := b.Account(u.Name)
		if a == nil {
			h := u.PasswordHash
			if h == "" {
				h = NewPasswordHash(u.Password)
			}
			if _, err := b.Apply(PutUser{Name: u.Name, PasswordHash: h, Tags: u.Tags}); err != nil {
				return fmt.Errorf("user %q: %w", u.Name, err)
			}
		} else {
			cr := a.creds.Load()
			samePassword := cr.hash == u.PasswordHash
			if u.PasswordHash == "" {
				samePassword = a.Check(u.Password)
			}
			if !samePassword || !sameSet(cr.tags, u.Tags) {
				b.log.Warn("configured user differs from the stored one, which is kept (change it over the management API)",
					"user", u.Name, "password_differs", !samePassword, "stored_tags", cr.tags, "configured_tags", u.Tags)
			}
		}
		vhs := slices.Sorted(maps.Keys(u.Permissions))
		for _, vh := range vhs {
			p := u.Permissions[vh]
			have := (*b.Account(u.Name).perms.Load())[vh]
			if have == nil {
				op := SetPermissions{User: u.Name, Vhost: vh, Configure: p.Configure, Write: p.Write, Read: p.Read}
				if _, err := b.Apply(op); err != nil {
					return fmt.Errorf("user %q: permissions on vhost %q: %w", u.Name, vh, err)
				}
			} else if have.Permission != p {
				b.log.Warn("configured permissions differ from the stored ones, which are kept (change them over the management API)",
					"user", u.Name, "vhost", vh)
			}
		}
	}
	return nil
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	sort.Strings(x)
	sort.Strings(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}
