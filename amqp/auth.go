package amqp

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"regexp"

	"github.com/warrenmq/warren/amqp/wire"
)

// account is a configured user, ready for logins and permission checks.
type account struct {
	name  string
	check func(password string) bool
	tags  []string
	perms map[string]*permissions // by vhost
}

// permissions are a user's compiled patterns on one vhost.
type permissions struct {
	configure, write, read *regexp.Regexp
}

func newAccount(u User) (*account, error) {
	a := &account{name: u.Name, tags: u.Tags, perms: make(map[string]*permissions)}
	if u.PasswordHash != "" {
		raw, err := base64.StdEncoding.DecodeString(u.PasswordHash)
		if err != nil || len(raw) != 4+sha256.Size {
			return nil, fmt.Errorf("user %q: password_hash is not a base64 salted SHA-256 hash", u.Name)
		}
		a.check = func(pw string) bool { return subtle.ConstantTimeCompare(hashPassword(raw[:4], pw), raw) == 1 }
	} else {
		want := []byte(u.Password)
		a.check = func(pw string) bool { return subtle.ConstantTimeCompare([]byte(pw), want) == 1 }
	}
	for vh, p := range u.Permissions {
		var ps permissions
		for _, x := range []struct {
			dst **regexp.Regexp
			src string
		}{{&ps.configure, p.Configure}, {&ps.write, p.Write}, {&ps.read, p.Read}} {
			// RabbitMQ matches the whole name against the pattern as given,
			// which is an unanchored search; "" matches nothing.
			if x.src == "" {
				continue
			}
			re, err := regexp.Compile(x.src)
			if err != nil {
				return nil, fmt.Errorf("user %q: vhost %q: %w", u.Name, vh, err)
			}
			*x.dst = re
		}
		a.perms[vh] = &ps
	}
	return a, nil
}

// hashPassword is RabbitMQ's rabbit_password_hashing_sha256: salt followed by
// SHA-256(salt ++ password).
func hashPassword(salt []byte, password string) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(password))
	return append(append([]byte{}, salt...), h.Sum(nil)...)
}

// HashPassword returns a RabbitMQ-compatible password_hash for the config.
func HashPassword(salt [4]byte, password string) string {
	return base64.StdEncoding.EncodeToString(hashPassword(salt[:], password))
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

// allowed reports whether the user may do a on the named resource in vhost.
func (a *account) allowed(vh string, what access, name string) bool {
	p := a.perms[vh]
	if p == nil {
		return false
	}
	re := [...]*regexp.Regexp{p.configure, p.write, p.read}[what]
	return re != nil && re.MatchString(name)
}
