package broker_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/storage"
	"github.com/warrenmq/warren/vhost"
)

// startOn opens a broker on dir with cfg's users and vhosts, and closes it
// when the test ends.
func startOn(t *testing.T, dir string, adjust func(*broker.Config)) (*broker.Broker, error) {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.DataDir = dir
	if adjust != nil {
		adjust(&cfg)
	}
	b, err := broker.Open(cfg, broker.Options{})
	if err == nil {
		t.Cleanup(func() { _ = b.Close() })
	}
	return b, err
}

func stop(t *testing.T, b *broker.Broker) {
	t.Helper()
	require.NoError(t, b.Close())
}

func kindOf(err error) vhost.Kind {
	var ve *vhost.Error
	if errors.As(err, &ve) {
		return ve.Kind
	}
	return 0
}

func withConfigUser(c *broker.Config) {
	c.Vhosts = []string{"/", "configured"}
	c.Users = append(c.Users, broker.User{Name: "cfg", Password: "from-config", Tags: []string{"monitoring"},
		Permissions: map[string]broker.Permission{"configured": {Read: ".*"}}})
}

// TestServerOpsErrors: each op checks what it names, with the error kinds
// the management API maps to RabbitMQ's statuses.
func TestServerOpsErrors(t *testing.T) {
	srv, err := startOn(t, t.TempDir(), nil)
	require.NoError(t, err)
	require.NoError(t, apply(srv, broker.PutUser{Name: "u", PasswordHash: broker.NewPasswordHash("p")}))
	for _, tc := range []struct {
		name string
		op   broker.Op
		kind vhost.Kind // 0: succeeds
	}{
		{"empty user name", broker.PutUser{Name: ""}, vhost.CommandInvalid},
		{"NUL in a user name", broker.PutUser{Name: "a\x00b"}, vhost.CommandInvalid},
		{"bad hash", broker.PutUser{Name: "x", PasswordHash: "!!"}, vhost.CommandInvalid},
		{"short hash", broker.PutUser{Name: "x", PasswordHash: "AAAA"}, vhost.CommandInvalid},
		{"unknown hashing", broker.PutUser{Name: "x", PasswordHash: broker.NewPasswordHash("p"), HashingAlgorithm: "bcrypt"}, vhost.CommandInvalid},
		{"no password", broker.PutUser{Name: "nopw"}, 0},
		{"delete a missing user", broker.DeleteUser{Name: "ghost"}, vhost.NotFound},
		{"non-UTF-8 user name", broker.PutUser{Name: "\xff"}, vhost.CommandInvalid},
		{"odd characters in a user name", broker.PutUser{Name: "a b/c#%é"}, 0},
		{"empty vhost name", broker.PutVhost{Name: ""}, vhost.CommandInvalid},
		{"non-UTF-8 vhost name", broker.PutVhost{Name: "v\xc3"}, vhost.CommandInvalid},
		{"delete a missing vhost", broker.DeleteVhost{Name: "ghost"}, vhost.NotFound},
		{"permissions of a missing user", broker.SetPermissions{User: "ghost", Vhost: "/"}, vhost.NotFound},
		{"permissions on a missing vhost", broker.SetPermissions{User: "u", Vhost: "ghost"}, vhost.NotFound},
		{"a bad pattern", broker.SetPermissions{User: "u", Vhost: "/", Configure: "("}, vhost.CommandInvalid},
		{"clear permissions the user lacks", broker.ClearPermissions{User: "u", Vhost: "/"}, 0},
		{"clear on a missing vhost", broker.ClearPermissions{User: "u", Vhost: "ghost"}, vhost.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := srv.Apply(tc.op)
			if tc.kind == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tc.kind, kindOf(err), "%v", err)
		})
	}
	_, ok := srv.Authenticate("nopw", "", nil)
	assert.False(t, ok, "a user without a password cannot log in with one")
}

// TestStoredAccessAndConfigBaseline: ops are stored and come back at start;
// the config is a baseline that creates what is missing at every start,
// while what is stored keeps its stored value.
func TestStoredAccessAndConfigBaseline(t *testing.T) {
	dir := t.TempDir()
	srv, err := startOn(t, dir, withConfigUser)
	require.NoError(t, err)
	_, ok := srv.Authenticate("cfg", "from-config", nil)
	require.True(t, ok, "the configured user is created, with its clear-text password hashed")
	u, _ := srv.User("cfg")
	assert.NotContains(t, u.PasswordHash, "from-config")
	assert.Equal(t, map[string]broker.Permission{"configured": {Read: ".*"}}, u.Permissions)

	for _, op := range []broker.Op{
		broker.PutUser{Name: "cfg", PasswordHash: broker.NewPasswordHash("changed"), Tags: []string{"administrator"}},
		broker.SetPermissions{User: "cfg", Vhost: "configured", Configure: ".*", Write: ".*", Read: ".*"},
		broker.PutVhost{Name: "runtime", Description: "made at run time", Tags: []string{"t"}},
		broker.PutUser{Name: "md5", PasswordHash: "AQIDBDgk9ci8Lfh6CKE9Y0AUfmU=", HashingAlgorithm: "rabbit_password_hashing_md5"},
		broker.SetPermissions{User: "md5", Vhost: "runtime", Write: "^w"},
		broker.DeleteUser{Name: "guest"},
		broker.DeleteVhost{Name: "/"},
	} {
		require.NoError(t, apply(srv, op), "%#v", op)
	}
	stop(t, srv)

	srv, err = startOn(t, dir, withConfigUser)
	require.NoError(t, err)
	for _, tc := range []struct {
		user, password string
		ok             bool
	}{
		{"cfg", "changed", true},      // the stored password wins over the config's
		{"cfg", "from-config", false}, // (a warning is logged)
		{"guest", "guest", true},      // deleted, but in the config: made again
		{"md5", "secret", true},       // RabbitMQ's pre-3.6 MD5 hashes work
		{"md5", "other", false},
	} {
		tags, ok := srv.Authenticate(tc.user, tc.password, nil)
		assert.Equal(t, tc.ok, ok, "%s/%s", tc.user, tc.password)
		if ok && tc.user == "cfg" {
			assert.Equal(t, []string{"administrator"}, tags)
		}
	}
	u, _ = srv.User("cfg")
	assert.Equal(t, broker.Permission{Configure: ".*", Write: ".*", Read: ".*"}, u.Permissions["configured"])
	assert.Equal(t, []string{"/", "configured", "runtime"}, srv.VHostNames(), "/ is in the config, so it is made again")
	info, ok := srv.VHostInfo("runtime")
	require.True(t, ok)
	assert.Equal(t, broker.VHostInfo{Name: "runtime", Description: "made at run time", Tags: []string{"t"}}, info)
	assert.True(t, srv.Permitted("md5", "runtime", "write", "wq"))
	assert.False(t, srv.Permitted("md5", "runtime", "read", "wq"))
	assert.True(t, srv.HasVHostAccess("guest", "/"), "the configured permissions come back with the user")

	// Deleting a vhost deletes the permissions on it, on disk too.
	require.NoError(t, apply(srv, broker.DeleteVhost{Name: "runtime"}))
	require.NoError(t, apply(srv, broker.PutVhost{Name: "runtime"}))
	assert.False(t, srv.HasVHostAccess("md5", "runtime"))
	stop(t, srv)
	srv, err = startOn(t, dir, withConfigUser)
	require.NoError(t, err)
	assert.False(t, srv.HasVHostAccess("md5", "runtime"))
	info, _ = srv.VHostInfo("runtime")
	assert.Equal(t, "", info.Description, "the vhost made again is a new one")
}

// TestCorruptAccessRecordRefusesStart: a stored user that cannot be read
// stops the start, as any damaged store does, rather than starting without it.
func TestCorruptAccessRecordRefusesStart(t *testing.T) {
	dir := t.TempDir()
	st, err := storage.Open(dir, storage.Options{})
	require.NoError(t, err)
	var b storage.Batch
	b.PutDefinition(storage.KindUser, "broken", []byte("{not json"))
	require.NoError(t, st.Commit(&b))
	require.NoError(t, st.Close())

	_, err = startOn(t, dir, nil)
	require.ErrorIs(t, err, storage.ErrCorrupt)
	assert.Contains(t, err.Error(), `stored user "broken"`)
}

func apply(b *broker.Broker, op broker.Op) error {
	_, err := b.Apply(op)
	return err
}
