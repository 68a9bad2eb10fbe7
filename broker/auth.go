package broker

import (
	"crypto/md5" //nolint:gosec // RabbitMQ's pre-3.6 password hashing, for imported users
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"maps"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
)

// Account is a user, ready for logins and permission checks. One account
// lives as long as its user: PutUser swaps its credentials and
// SetPermissions its permissions in place, atomically, so a connection that
// holds the account sees the change at its next check; DeleteUser drops it
// from the registry (and a user made again under the same name is a new
// account).
type Account struct {
	name  string // never changes
	creds atomic.Pointer[credentials]
	perms atomic.Pointer[permissionSet] // never nil; replaced whole, never changed
	lim   accountLimits
	// topics are the topic permissions (topicperms.go); nil when none, so
	// that a publish checks them with one load.
	topics atomic.Pointer[topicPermissions]
}

// Name is the user's name.
func (a *Account) Name() string { return a.name }

// newAccount is a user with no permissions yet.
func newAccount(name string, cr *credentials) *Account {
	a := &Account{name: name}
	a.creds.Store(cr)
	a.perms.Store(&permissionSet{})
	return a
}

// setPermissions replaces the account's permissions on vhost vh with p, or
// removes them when p is nil, copying the set (it is never changed in
// place, since permission checks read it with no lock). Only ops call it,
// under Broker.opMu.
func (a *Account) setPermissions(vh string, p *permissions) {
	cur := *a.perms.Load()
	next := make(permissionSet, len(cur)+1)
	maps.Copy(next, cur)
	if p == nil {
		delete(next, vh)
	} else {
		next[vh] = p
	}
	a.perms.Store(&next)
}

// credentials are a user's password hash and tags; replaced whole.
type credentials struct {
	// hash is RabbitMQ's base64 salt ++ digest, as stored and exported; ""
	// is a user without a password, who cannot log in with one.
	hash string
	// raw is hash decoded: 4 bytes of salt, then the digest.
	raw       []byte
	algorithm string           // RabbitMQ's hashing module name
	newHash   func() hash.Hash // algorithm's hash, looked up once, not per login
	tags      []string
}

// permissionSet is a user's permissions by vhost name.
type permissionSet map[string]*permissions

// permissions are a user's patterns on one vhost, as given and compiled.
type permissions struct {
	Permission
	// re holds the compiled patterns, indexed by access (configure, write,
	// read); nil for "", which matches nothing.
	re [3]*regexp.Regexp
}

// RabbitMQ's password hashing modules; sha256 is its default since 3.6.
const (
	hashingSHA256 = "rabbit_password_hashing_sha256"
	hashingSHA512 = "rabbit_password_hashing_sha512"
	hashingMD5    = "rabbit_password_hashing_md5"
)

var hashings = map[string]func() hash.Hash{
	hashingSHA256: sha256.New,
	hashingSHA512: sha512.New,
	hashingMD5:    md5.New,
}

// newCredentials checks a password hash as RabbitMQ stores it (base64 of a
// 4-byte salt and the digest of salt ++ password) for the named algorithm
// ("" is SHA-256).
func newCredentials(passwordHash, algorithm string, tags []string) (*credentials, error) {
	if algorithm == "" {
		algorithm = hashingSHA256
	}
	h, ok := hashings[algorithm]
	if !ok {
		return nil, fmt.Errorf("unsupported hashing_algorithm '%s'", algorithm)
	}
	cr := &credentials{hash: passwordHash, algorithm: algorithm, newHash: h, tags: slices.Clone(tags)}
	if passwordHash == "" {
		return cr, nil
	}
	raw, err := base64.StdEncoding.DecodeString(passwordHash)
	if err != nil || len(raw) != 4+h().Size() {
		return nil, fmt.Errorf("password_hash is not a base64 salted %s hash", strings.TrimPrefix(algorithm, "rabbit_password_hashing_"))
	}
	cr.raw = raw
	return cr, nil
}

// Check reports whether password is the account's password.
func (a *Account) Check(password string) bool {
	cr := a.creds.Load()
	if cr.raw == nil {
		return false
	}
	d := cr.newHash()
	d.Write(cr.raw[:4])
	d.Write([]byte(password))
	return subtle.ConstantTimeCompare(d.Sum(nil), cr.raw[4:]) == 1
}

// Tags returns the account's tags; the caller must not change them.
func (a *Account) Tags() []string { return a.creds.Load().tags }

// compilePermissions compiles RabbitMQ's three patterns. RabbitMQ matches
// the whole name against a pattern as given, which is an unanchored search;
// "" matches nothing.
func compilePermissions(p Permission) (*permissions, error) {
	ps := &permissions{Permission: p}
	for i, src := range [...]string{Configure: p.Configure, Write: p.Write, Read: p.Read} {
		if src == "" {
			continue
		}
		re, err := regexp.Compile(src)
		if err != nil {
			return nil, fmt.Errorf("invalid regular expression '%s': %w", src, err)
		}
		ps.re[i] = re
	}
	return ps, nil
}

// hashPassword is RabbitMQ's rabbit_password_hashing_sha256: salt followed by
// SHA-256(salt ++ password).
func hashPassword(salt []byte, password string) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(password))
	return append(append([]byte{}, salt...), h.Sum(nil)...)
}

// HashPassword returns a RabbitMQ-compatible password_hash (SHA-256) for
// the given salt.
func HashPassword(salt [4]byte, password string) string {
	return base64.StdEncoding.EncodeToString(hashPassword(salt[:], password))
}

// NewPasswordHash hashes a clear-text password as RabbitMQ does, with a
// fresh random salt: what PutUser takes, since clear text is never stored.
func NewPasswordHash(password string) string {
	var salt [4]byte
	_, _ = rand.Read(salt[:])
	return HashPassword(salt, password)
}

// Access is what an operation needs on a resource.
type Access uint8

// The three kinds of access RabbitMQ's permission patterns grant.
const (
	Configure Access = iota
	Write
	Read
)

func (a Access) String() string {
	return [...]string{"configure", "write", "read"}[a]
}

// Allowed reports whether the user may do what on the named resource in
// vhost, by the permissions the user has now: every check reads them afresh
// (RabbitMQ's channels cache their last 12 successful checks instead).
func (a *Account) Allowed(vh string, what Access, name string) bool {
	p := (*a.perms.Load())[vh]
	if p == nil {
		return false
	}
	re := p.re[what]
	return re != nil && re.MatchString(name)
}

// HasVHost reports whether the user has permissions on vhost vh, which
// opening a connection there needs.
func (a *Account) HasVHost(vh string) bool { return (*a.perms.Load())[vh] != nil }

// RemoteAllowed applies RabbitMQ's loopback_users (Config.LoopbackUsers):
// such a user may log in only from a loopback address; remote nil is local.
func (b *Broker) RemoteAllowed(user string, remote net.Addr) bool {
	return !b.loopbackOnly(user) || remote == nil || isLoopback(remote)
}

// loopbackOnly says whether user may connect only from a loopback address.
func (b *Broker) loopbackOnly(user string) bool {
	if b.cfg.LoopbackUsers == nil {
		return user == "guest"
	}
	return slices.Contains(b.cfg.LoopbackUsers, user)
}

// InternalAccount is an account outside the registry with full permissions
// on vhost vh and no password, for in-process connections (shovels) that
// are not a user's.
func InternalAccount(name, vh string) *Account {
	a := newAccount(name, &credentials{tags: []string{"administrator"}})
	p, _ := compilePermissions(Permission{Configure: ".*", Write: ".*", Read: ".*"})
	a.setPermissions(vh, p)
	return a
}

func isLoopback(a net.Addr) bool {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.IsLoopback()
	}
	return true // unix sockets and pipes are local
}
