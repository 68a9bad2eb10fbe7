package amqp_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/storage"
	"github.com/warrenmq/warren/vhost"
)

// startOn starts a server (without listening) on dir with cfg's users and
// vhosts, and stops it when the test ends.
func startOn(t *testing.T, dir string, adjust func(*amqp.Config)) (*amqp.Server, error) {
	t.Helper()
	cfg := amqp.DefaultConfig()
	cfg.DataDir = dir
	if adjust != nil {
		adjust(&cfg)
	}
	srv, err := amqp.NewServer(cfg, nil)
	if err == nil {
		t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	}
	return srv, err
}

func stop(t *testing.T, srv *amqp.Server) {
	t.Helper()
	require.NoError(t, srv.Shutdown(context.Background()))
}

func kindOf(err error) vhost.Kind {
	var ve *vhost.Error
	if errors.As(err, &ve) {
		return ve.Kind
	}
	return 0
}

func withConfigUser(c *amqp.Config) {
	c.Vhosts = []string{"/", "configured"}
	c.Users = append(c.Users, amqp.User{Name: "cfg", Password: "from-config", Tags: []string{"monitoring"},
		Permissions: map[string]amqp.Permission{"configured": {Read: ".*"}}})
}

// TestServerOpsErrors: each op checks what it names, with the error kinds
// the management API maps to RabbitMQ's statuses.
func TestServerOpsErrors(t *testing.T) {
	srv, err := startOn(t, t.TempDir(), nil)
	require.NoError(t, err)
	require.NoError(t, srv.Apply(amqp.PutUser{Name: "u", PasswordHash: amqp.NewPasswordHash("p")}))
	for _, tc := range []struct {
		name string
		op   amqp.ServerOp
		kind vhost.Kind // 0: succeeds
	}{
		{"empty user name", amqp.PutUser{Name: ""}, vhost.CommandInvalid},
		{"NUL in a user name", amqp.PutUser{Name: "a\x00b"}, vhost.CommandInvalid},
		{"bad hash", amqp.PutUser{Name: "x", PasswordHash: "!!"}, vhost.CommandInvalid},
		{"short hash", amqp.PutUser{Name: "x", PasswordHash: "AAAA"}, vhost.CommandInvalid},
		{"unknown hashing", amqp.PutUser{Name: "x", PasswordHash: amqp.NewPasswordHash("p"), HashingAlgorithm: "bcrypt"}, vhost.CommandInvalid},
		{"no password", amqp.PutUser{Name: "nopw"}, 0},
		{"delete a missing user", amqp.DeleteUser{Name: "ghost"}, vhost.NotFound},
		{"non-UTF-8 user name", amqp.PutUser{Name: "\xff"}, vhost.CommandInvalid},
		{"odd characters in a user name", amqp.PutUser{Name: "a b/c#%é"}, 0},
		{"empty vhost name", amqp.PutVhost{Name: ""}, vhost.CommandInvalid},
		{"non-UTF-8 vhost name", amqp.PutVhost{Name: "v\xc3"}, vhost.CommandInvalid},
		{"delete a missing vhost", amqp.DeleteVhost{Name: "ghost"}, vhost.NotFound},
		{"permissions of a missing user", amqp.SetPermissions{User: "ghost", Vhost: "/"}, vhost.NotFound},
		{"permissions on a missing vhost", amqp.SetPermissions{User: "u", Vhost: "ghost"}, vhost.NotFound},
		{"a bad pattern", amqp.SetPermissions{User: "u", Vhost: "/", Configure: "("}, vhost.CommandInvalid},
		{"clear permissions the user lacks", amqp.ClearPermissions{User: "u", Vhost: "/"}, 0},
		{"clear on a missing vhost", amqp.ClearPermissions{User: "u", Vhost: "ghost"}, vhost.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := srv.Apply(tc.op)
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
	assert.Equal(t, map[string]amqp.Permission{"configured": {Read: ".*"}}, u.Permissions)

	for _, op := range []amqp.ServerOp{
		amqp.PutUser{Name: "cfg", PasswordHash: amqp.NewPasswordHash("changed"), Tags: []string{"administrator"}},
		amqp.SetPermissions{User: "cfg", Vhost: "configured", Configure: ".*", Write: ".*", Read: ".*"},
		amqp.PutVhost{Name: "runtime", Description: "made at run time", Tags: []string{"t"}},
		amqp.PutUser{Name: "md5", PasswordHash: "AQIDBDgk9ci8Lfh6CKE9Y0AUfmU=", HashingAlgorithm: "rabbit_password_hashing_md5"},
		amqp.SetPermissions{User: "md5", Vhost: "runtime", Write: "^w"},
		amqp.DeleteUser{Name: "guest"},
		amqp.DeleteVhost{Name: "/"},
	} {
		require.NoError(t, srv.Apply(op), "%#v", op)
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
	assert.Equal(t, amqp.Permission{Configure: ".*", Write: ".*", Read: ".*"}, u.Permissions["configured"])
	assert.Equal(t, []string{"/", "configured", "runtime"}, srv.VHostNames(), "/ is in the config, so it is made again")
	info, ok := srv.VHostInfo("runtime")
	require.True(t, ok)
	assert.Equal(t, amqp.VHostInfo{Name: "runtime", Description: "made at run time", Tags: []string{"t"}}, info)
	assert.True(t, srv.Permitted("md5", "runtime", "write", "wq"))
	assert.False(t, srv.Permitted("md5", "runtime", "read", "wq"))
	assert.True(t, srv.HasVHostAccess("guest", "/"), "the configured permissions come back with the user")

	// Deleting a vhost deletes the permissions on it, on disk too.
	require.NoError(t, srv.Apply(amqp.DeleteVhost{Name: "runtime"}))
	require.NoError(t, srv.Apply(amqp.PutVhost{Name: "runtime"}))
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
