package amqp

import (
	"bytes"
	"crypto/md5" //nolint:gosec // RabbitMQ's pre-3.6 password hashing, for imported users
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/warrenmq/warren/amqp/wire"
)

// account is a user, ready for logins and permission checks. One account
// lives as long as its user: PutUser swaps its credentials and
// SetPermissions its permissions in place, atomically, so a connection that
// holds the account sees the change at its next check; DeleteUser drops it
// from the registry (and a user made again under the same name is a new
// account).
type account struct {
	name  string
	creds atomic.Pointer[credentials]
	perms atomic.Pointer[permissionSet] // never nil; replaced whole, never changed
}

// newAccount is a user with no permissions yet.
func newAccount(name string, cr *credentials) *account {
	a := &account{name: name}
	a.creds.Store(cr)
	a.perms.Store(&permissionSet{})
	return a
}

// setPermissions replaces the account's permissions on vhost vh with p, or
// removes them when p is nil, copying the set (it is never changed in
// place, since permission checks read it with no lock). Only ops call it,
// under Server.opMu.
func (a *account) setPermissions(vh string, p *permissions) {
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

// check reports whether password is the account's password.
func (a *account) check(password string) bool {
	cr := a.creds.Load()
	if cr.raw == nil {
		return false
	}
	d := cr.newHash()
	d.Write(cr.raw[:4])
	d.Write([]byte(password))
	return subtle.ConstantTimeCompare(d.Sum(nil), cr.raw[4:]) == 1
}

// tags returns the account's tags; the caller must not change them.
func (a *account) tags() []string { return a.creds.Load().tags }

// compilePermissions compiles RabbitMQ's three patterns. RabbitMQ matches
// the whole name against a pattern as given, which is an unanchored search;
// "" matches nothing.
func compilePermissions(p Permission) (*permissions, error) {
	ps := &permissions{Permission: p}
	for i, src := range [...]string{configureAccess: p.Configure, writeAccess: p.Write, readAccess: p.Read} {
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

// parseCredentials reads the start-ok response for PLAIN or AMQPLAIN.
func parseCredentials(mechanism, response string) (user, password string, ok bool) {
	switch mechanism {
	case "PLAIN":
		// authzid NUL authcid NUL password
		parts := bytes.Split([]byte(response), []byte{0})
		if len(parts) != 3 {
			return "", "", false
		}
		return string(parts[1]), string(parts[2]), true
	case "AMQPLAIN":
		// A field table without its length prefix.
		b := binary.BigEndian.AppendUint32(nil, uint32(len(response)))
		t, _, err := wire.DecodeTable(append(b, response...))
		if err != nil {
			return "", "", false
		}
		u, ok1 := t["LOGIN"].(string)
		p, ok2 := t["PASSWORD"].(string)
		return u, p, ok1 && ok2
	}
	return "", "", false
}

// access is what an operation needs on a resource.
type access uint8

const (
	configureAccess access = iota
	writeAccess
	readAccess
)

func (a access) String() string {
	return [...]string{"configure", "write", "read"}[a]
}

// allowed reports whether the user may do what on the named resource in
// vhost, by the permissions the user has now: every check reads them afresh
// (RabbitMQ's channels cache their last 12 successful checks instead).
func (a *account) allowed(vh string, what access, name string) bool {
	p := (*a.perms.Load())[vh]
	if p == nil {
		return false
	}
	re := p.re[what]
	return re != nil && re.MatchString(name)
}
