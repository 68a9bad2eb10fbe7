package broker

import (
	"maps"
	"net"
	"slices"
)

// This file is the read-only view of users and virtual hosts that the
// management API needs. Snapshots are plain values.

// UserInfo is a user as the management API shows it.
type UserInfo struct {
	Name string
	Tags []string
	// PasswordHash is RabbitMQ's base64 salted hash, as stored ("" for a
	// user without a password), and HashingAlgorithm its hashing module.
	PasswordHash     string
	HashingAlgorithm string
	// Permissions maps a vhost name to the user's patterns there.
	Permissions map[string]Permission
	// Limits are the user's limits (SetUserLimit); nil when none.
	Limits Limits
}

// VHostInfo is a virtual host's metadata.
type VHostInfo struct {
	Name        string
	Description string
	Tags        []string
}

// Authenticate checks a user's password (as connection.start-ok would) and
// returns the user's tags. A loopback user (guest by default) is refused
// unless remote is a loopback address, as RabbitMQ's loopback_users does for
// the management API too.
func (b *Broker) Authenticate(user, password string, remote net.Addr) (tags []string, ok bool) {
	a := b.Account(user)
	if a == nil || !a.Check(password) || !b.RemoteAllowed(user, remote) {
		return nil, false
	}
	return slices.Clone(a.Tags()), true
}

// Users returns the users, sorted by name.
func (b *Broker) Users() []UserInfo {
	reg := b.reg.Load()
	out := make([]UserInfo, 0, len(reg.accounts))
	for _, name := range slices.Sorted(maps.Keys(reg.accounts)) {
		out = append(out, reg.accounts[name].info())
	}
	return out
}

// User returns the named user.
func (b *Broker) User(name string) (UserInfo, bool) {
	a := b.Account(name)
	if a == nil {
		return UserInfo{}, false
	}
	return a.info(), true
}

func (a *Account) info() UserInfo {
	cr := a.creds.Load()
	perms := *a.perms.Load()
	u := UserInfo{Name: a.name, Tags: slices.Clone(cr.tags), PasswordHash: cr.hash, HashingAlgorithm: cr.algorithm,
		Permissions: make(map[string]Permission, len(perms)), Limits: a.Limits()}
	for vh, p := range perms {
		u.Permissions[vh] = p.Permission
	}
	return u
}

// Permitted reports whether user may do what ("configure", "write" or
// "read") on the named resource in vhost, by the user's permission patterns.
func (b *Broker) Permitted(user, vhostName, what, name string) bool {
	a := b.Account(user)
	if a == nil {
		return false
	}
	var acc Access
	switch what {
	case "configure":
		acc = Configure
	case "write":
		acc = Write
	case "read":
		acc = Read
	default:
		return false
	}
	return a.Allowed(vhostName, acc, name)
}

// HasVHostAccess reports whether user has any permissions on vhost.
func (b *Broker) HasVHostAccess(user, vhostName string) bool {
	a := b.Account(user)
	return a != nil && a.HasVHost(vhostName)
}

// VHostNames returns the virtual hosts' names, sorted.
func (b *Broker) VHostNames() []string {
	return slices.Sorted(maps.Keys(b.reg.Load().vhosts))
}

// VHostInfo returns a virtual host's metadata.
func (b *Broker) VHostInfo(name string) (VHostInfo, bool) {
	e := b.reg.Load().vhosts[name]
	if e == nil {
		return VHostInfo{}, false
	}
	return VHostInfo{Name: name, Description: e.description, Tags: slices.Clone(e.tags)}, true
}
