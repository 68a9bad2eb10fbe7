package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/amqp/amqptest"
	"github.com/warrenmq/warren/configs"
	"github.com/warrenmq/warren/management"
	"github.com/warrenmq/warren/storage"
)

// env is a fake environment for loadConfig.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// writeFile writes a config file into a fresh temp dir and returns its path.
func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "warren.yaml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	return p
}

func TestDefaultsMatchAMQPDefaultConfig(t *testing.T) {
	c, err := loadConfig(nil, env{}.lookup)
	cfg, level := c.Broker, c.Level
	require.NoError(t, err)
	// No differences allowed: amqp.DefaultConfig documents itself as this file.
	assert.Equal(t, amqp.DefaultConfig(), cfg)
	assert.Equal(t, "INFO", level.String())
}

func TestEmbeddedFileHasEveryKey(t *testing.T) {
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(configs.Default, &doc))
	for _, s := range settings {
		parts := strings.Split(s.key, ".")
		m := doc
		for _, section := range parts[:len(parts)-1] {
			var ok bool
			m, ok = m[section].(map[string]any)
			require.True(t, ok, section)
		}
		assert.Contains(t, m, parts[len(parts)-1], s.key)
	}
	assert.Contains(t, doc, "vhosts")
	assert.Contains(t, doc, "users")
}

func TestLayers(t *testing.T) {
	file := writeFile(t, `
amqp:
  listen: "127.0.0.1:6000"
limits:
  frame_max: 65536
  heartbeat: 10        # bare seconds, as RabbitMQ writes it
log:
  level: debug
vhosts: ["/", "Prod"]
users:
  - name: Admin
    password_hash: "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"
    tags: [administrator, monitoring]
    permissions:
      "Prod": {configure: "^amq\\.", write: ".*", read: ""}
`)
	tests := []struct {
		name  string
		args  []string
		env   env
		check func(t *testing.T, cfg amqp.Config)
	}{
		{"file over defaults", []string{"--config", file}, nil, func(t *testing.T, cfg amqp.Config) {
			assert.Equal(t, "127.0.0.1:6000", cfg.Listen)
			assert.Equal(t, uint32(65536), cfg.FrameMax)
			assert.Equal(t, 10*time.Second, cfg.Heartbeat)
			// Keys the file does not set keep their defaults.
			assert.Equal(t, "./data", cfg.DataDir)
			assert.Equal(t, uint16(2047), cfg.ChannelMax)
			// Lists replace the defaults, and keep their case (viper would lowercase "Prod").
			assert.Equal(t, []string{"/", "Prod"}, cfg.Vhosts)
			assert.Equal(t, []amqp.User{{
				Name:         "Admin",
				PasswordHash: "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR",
				Tags:         []string{"administrator", "monitoring"},
				Permissions:  map[string]amqp.Permission{"Prod": {Configure: `^amq\.`, Write: ".*", Read: ""}},
			}}, cfg.Users)
		}},
		{"env over defaults", nil, env{"WARREN_AMQP_LISTEN": ":7000", "WARREN_STORAGE_DIR": "/var/lib/warren",
			"WARREN_LIMITS_CHANNEL_MAX": "10", "WARREN_LIMITS_MAX_MESSAGE_SIZE": "1024"}, func(t *testing.T, cfg amqp.Config) {
			assert.Equal(t, ":7000", cfg.Listen)
			assert.Equal(t, "/var/lib/warren", cfg.DataDir)
			assert.Equal(t, uint16(10), cfg.ChannelMax)
			assert.Equal(t, uint64(1024), cfg.MaxMessageSize)
		}},
		{"empty env is unset", nil, env{"WARREN_AMQP_LISTEN": ""}, func(t *testing.T, cfg amqp.Config) {
			assert.Equal(t, ":5672", cfg.Listen)
		}},
		{"env over file", []string{"--config", file}, env{"WARREN_AMQP_LISTEN": ":7000"}, func(t *testing.T, cfg amqp.Config) {
			assert.Equal(t, ":7000", cfg.Listen)
			assert.Equal(t, uint32(65536), cfg.FrameMax)
		}},
		{"flag over env over file", []string{"--config", file, "--amqp.listen", "127.0.0.1:5673", "--limits.heartbeat", "30s"},
			env{"WARREN_AMQP_LISTEN": ":7000", "WARREN_LIMITS_FRAME_MAX": "8192"}, func(t *testing.T, cfg amqp.Config) {
				assert.Equal(t, "127.0.0.1:5673", cfg.Listen)
				assert.Equal(t, 30*time.Second, cfg.Heartbeat)
				assert.Equal(t, uint32(8192), cfg.FrameMax)
			}},
		{"flags alone", []string{"--storage.dir=/tmp/x", "--limits.frame_max", "1048576", "--limits.heartbeat", "0"}, nil,
			func(t *testing.T, cfg amqp.Config) {
				assert.Equal(t, "/tmp/x", cfg.DataDir)
				assert.Equal(t, uint32(1<<20), cfg.FrameMax)
				assert.Zero(t, cfg.Heartbeat)
			}},
		{"empty file", []string{"--config", writeFile(t, "")}, nil, func(t *testing.T, cfg amqp.Config) {
			assert.Equal(t, amqp.DefaultConfig(), cfg)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig(tt.args, tt.env.lookup)
			cfg := c.Broker
			require.NoError(t, err)
			tt.check(t, cfg)
		})
	}
}

func TestLogLevel(t *testing.T) {
	c, err := loadConfig([]string{"--log.level", "WARN"}, env{}.lookup)
	level := c.Level
	require.NoError(t, err)
	assert.Equal(t, "WARN", level.String())
	c, err = loadConfig(nil, env{"WARREN_LOG_LEVEL": "debug"}.lookup)
	level = c.Level
	require.NoError(t, err)
	assert.Equal(t, "DEBUG", level.String())
}

func TestValidationNamesTheKey(t *testing.T) {
	user := func(body string) string {
		return "users:\n  - name: u\n" + body
	}
	tests := []struct {
		name string
		args []string
		env  env
		file string // written to a temp file and passed with --config
		want string // the whole error must start with "config: " + want
	}{
		{"frame_max too small", []string{"--limits.frame_max", "10"}, nil, "",
			"limits.frame_max: must be between 8192 and 1048576 (got 10); set by --limits.frame_max"},
		{"frame_max too big", nil, env{"WARREN_LIMITS_FRAME_MAX": "2000000"}, "",
			"limits.frame_max: must be between 8192 and 1048576 (got 2000000); set by WARREN_LIMITS_FRAME_MAX"},
		{"frame_max zero", nil, nil, "limits: {frame_max: 0}", "limits.frame_max: must be between 8192"},
		{"frame_max not a number", []string{"--limits.frame_max", "abc"}, nil, "", `limits.frame_max: invalid integer "abc"`},
		{"channel_max zero", []string{"--limits.channel_max", "0"}, nil, "", "limits.channel_max: must be between 1 and 65535"},
		{"channel_max too big", []string{"--limits.channel_max", "65536"}, nil, "", "limits.channel_max: must be between 1 and 65535"},
		{"heartbeat garbage", nil, env{"WARREN_LIMITS_HEARTBEAT": "abc"}, "", `limits.heartbeat: invalid duration "abc"`},
		{"heartbeat negative", []string{"--limits.heartbeat", "-5s"}, nil, "", "limits.heartbeat: must not be negative"},
		{"heartbeat fractional", []string{"--limits.heartbeat", "1500ms"}, nil, "", "limits.heartbeat: must be whole seconds"},
		{"heartbeat too long", []string{"--limits.heartbeat", "24h"}, nil, "", "limits.heartbeat: must be at most 65535s"},
		{"max_message_size zero", []string{"--limits.max_message_size", "0"}, nil, "", "limits.max_message_size: must be between 1 and 536870912"},
		{"max_message_size over cap", []string{"--limits.max_message_size", "536870913"}, nil, "", "limits.max_message_size: must be between 1 and 536870912"},
		{"amqp.listen no port", []string{"--amqp.listen", "localhost"}, nil, "", "amqp.listen: must be host:port"},
		{"amqp.listen bad port", nil, env{"WARREN_AMQP_LISTEN": ":amqp"}, "", "amqp.listen: port must be a number"},
		{"http.listen", []string{"--http.listen", "15672"}, nil, "", "http.listen: must be host:port"},
		{"pprof.listen", []string{"--pprof.listen", "6060"}, nil, "", "pprof.listen: must be host:port"},
		{"storage.dir empty", []string{"--storage.dir", ""}, nil, "", "storage.dir: must not be empty"},
		{"log.level", []string{"--log.level", "verbose"}, nil, "", `log.level: must be debug, info, warn or error (got "verbose")`},
		{"unknown top-level key", nil, nil, "amqp:\n  listen: :1\nstorge:\n  dir: x\n", "storge: unknown key"},
		{"unknown nested key", nil, nil, "limits:\n  frame_maxx: 4096\n", "limits.frame_maxx: unknown key (limits has frame_max, channel_max, heartbeat, max_message_size, consumer_timeout, max_connections, handshake_timeout, vhost_max_connections, vhost_max_queues, memory_high_watermark, disk_free_limit)"},
		{"unknown tls key", nil, nil, "amqp:\n  tls:\n    certfile: x\n", "amqp.tls.certfile: unknown key (amqp.tls has listen, cert_file, key_file, ca_file, verify_peer, fail_if_no_peer_cert)"},
		{"tls without cert", nil, nil, "amqp:\n  tls:\n    listen: \":5671\"\n", "amqp.tls.cert_file: required when amqp.tls.listen is set"},
		{"tls bad bool", nil, nil, "amqp:\n  tls:\n    verify_peer: maybe\n", "amqp.tls.verify_peer: must be true or false"},
		{"bad max_connections", nil, nil, "limits:\n  max_connections: -1\n", "limits.max_connections: must be between 0"},
		{"bad handshake_timeout", nil, nil, "limits:\n  handshake_timeout: 0s\n", "limits.handshake_timeout: must be a positive duration"},
		{"section not a mapping", nil, nil, "limits: 5\n", "limits: must be a mapping of keys"},
		{"null leaf", nil, nil, "amqp:\n  listen:\n", "amqp.listen: must be a single value"},
		{"file value reports its line", nil, nil, "\nlimits:\n  channel_max: 0\n", "limits.channel_max: must be between 1 and 65535 (got 0); in "},
		{"vhosts not a list", nil, nil, "vhosts: /\n", "vhosts: must be a list of names"},
		{"duplicate vhost", nil, nil, "vhosts: [/, a, a]\n", `vhosts[2]: duplicate vhost "a"`},
		{"user without name", nil, nil, "users:\n  - password: x\n", "users[0].name: a user needs a name"},
		{"user without password", nil, nil, user(""), "users[0] (u).password: set password or password_hash"},
		{"user with both", nil, nil, user("    password: a\n    password_hash: b\n"), "users[0] (u).password: set password or password_hash, not both"},
		{"bad hash", nil, nil, user("    password_hash: notbase64!\n"), "users[0] (u).password_hash: must be RabbitMQ's base64 salted SHA-256"},
		{"unknown user key", nil, nil, user("    pasword: x\n"), "users[0].pasword: unknown key"},
		{"duplicate user", nil, nil, "users:\n  - {name: a, password: x}\n  - {name: a, password: y}\n", `users[1].name: duplicate user "a"`},
		{"permission vhost missing", nil, nil, user("    password: x\n    permissions:\n      other: {configure: '', write: '', read: ''}\n"),
			`users[0].permissions["other"]: vhost "other" is not in vhosts`},
		{"bad regexp", nil, nil, user("    password: x\n    permissions:\n      /: {configure: '(', write: '', read: ''}\n"),
			`users[0].permissions["/"].configure: invalid regular expression "("`},
		{"missing pattern", nil, nil, user("    password: x\n    permissions:\n      /: {configure: '', write: ''}\n"),
			`users[0].permissions["/"].read: missing; use "" to grant nothing`},
		{"unknown permission key", nil, nil, user("    password: x\n    permissions:\n      /: {configure: '', write: '', read: '', admin: ''}\n"),
			`users[0].permissions["/"].admin: unknown key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config", writeFile(t, tt.file)}, args...)
			}
			_, err := loadConfig(args, tt.env.lookup)
			require.Error(t, err)
			var ce *configError
			require.True(t, errors.As(err, &ce), "%T %v", err, err)
			assert.True(t, strings.HasPrefix(err.Error(), "config: "+tt.want), "got  %s\nwant config: %s", err, tt.want)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{{"--nope"}, {"serve"}, {"--config", "/does/not/exist.yaml"}} {
		_, err := loadConfig(args, env{}.lookup)
		assert.Error(t, err, args)
	}
	_, err := loadConfig([]string{"--help"}, env{}.lookup)
	assert.ErrorIs(t, err, pflag.ErrHelp)
	// --help wins over a bad setting: asking for help must not fail.
	_, err = loadConfig([]string{"--limits.frame_max", "1", "-h"}, env{}.lookup)
	assert.ErrorIs(t, err, pflag.ErrHelp)
	_, err = loadConfig([]string{"--version"}, env{}.lookup)
	assert.ErrorIs(t, err, errVersion)
}

func TestHelpListsEveryKey(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, exitOK, run([]string{"--help"}, env{}.lookup, &out, &errOut))
	assert.Empty(t, errOut.String())
	help := out.String()
	for _, s := range settings {
		assert.Contains(t, help, "--"+s.key+" ", s.key)
	}
	for _, want := range []string{"--config", "--version", "WARREN_", `(default ":5672")`, "(default 60s)", "(default 131072)"} {
		assert.Contains(t, help, want)
	}
}

// TestBinary checks what only a real process shows: exit codes and stderr.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := filepath.Join(t.TempDir(), "warren")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	runBin := func(env []string, args ...string) (code int, stdout, stderr string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), o.String(), e.String()
		}
		require.NoError(t, err)
		return 0, o.String(), e.String()
	}

	code, stdout, _ := runBin(nil, "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "--limits.frame_max")

	code, stdout, _ = runBin(nil, "--version")
	assert.Equal(t, 0, code)
	assert.Equal(t, "warren "+amqp.Version+"\n", stdout)

	code, _, stderr := runBin(nil, "--limits.frame_max", "10")
	assert.Equal(t, 2, code)
	assert.Equal(t, "warren: config: limits.frame_max: must be between 8192 and 1048576 (got 10); set by --limits.frame_max\n", stderr)

	code, _, stderr = runBin([]string{"WARREN_LIMITS_HEARTBEAT=abc"})
	assert.Equal(t, 2, code)
	assert.Equal(t, "warren: config: limits.heartbeat: invalid duration \"abc\"; set by WARREN_LIMITS_HEARTBEAT\n", stderr)

	code, _, stderr = runBin(nil, "--bogus")
	assert.Equal(t, 2, code)
	assert.Equal(t, "warren: unknown flag: --bogus (see warren --help)\n", stderr)

	// A taken port fails before anything is served, with exit code 1.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	data := filepath.Join(t.TempDir(), "data")
	code, _, stderr = runBin(nil, "--amqp.listen", l.Addr().String(), "--storage.dir", data)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "warren: amqp.listen: ")
	assert.Contains(t, stderr, "address already in use")
	assert.DirExists(t, data, "the data directory is created before listening")

	// A data directory another process holds, or one that is not Warren's,
	// refuses to start with exit code 2: never an empty broker instead.
	held, err := storage.Open(filepath.Join(t.TempDir(), "held"), storage.Options{})
	require.NoError(t, err)
	defer held.Close()
	code, _, stderr = runBin(nil, "--amqp.listen", "127.0.0.1:0", "--http.listen=", "--prometheus.listen=", "--storage.dir", filepath.Dir(held.Path()))
	assert.Equal(t, 2, code, stderr)
	assert.Contains(t, stderr, "in use")
	corrupt := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(corrupt, storage.FileName), bytes.Repeat([]byte("not a database "), 1000), 0o600))
	code, _, stderr = runBin(nil, "--amqp.listen", "127.0.0.1:0", "--http.listen=", "--prometheus.listen=", "--storage.dir", corrupt)
	assert.Equal(t, 2, code, stderr)
}

func TestTLSAndLimitsSettings(t *testing.T) {
	file := writeFile(t, `
amqp:
  tls:
    listen: "127.0.0.1:5671"
    cert_file: /etc/warren/cert.pem
    key_file: /etc/warren/key.pem
limits:
  max_connections: 10
`)
	c, err := loadConfig([]string{"--config", file, "--amqp.tls.verify_peer", "true", "--limits.handshake_timeout", "3s"},
		env{"WARREN_AMQP_TLS_CA_FILE": "/etc/warren/ca.pem", "WARREN_AMQP_TLS_FAIL_IF_NO_PEER_CERT": "true"}.lookup)
	require.NoError(t, err)
	assert.Equal(t, amqp.TLSConfig{
		Listen: "127.0.0.1:5671", CertFile: "/etc/warren/cert.pem", KeyFile: "/etc/warren/key.pem",
		CAFile: "/etc/warren/ca.pem", VerifyPeer: true, FailIfNoPeerCert: true,
	}, c.Broker.TLS)
	assert.Equal(t, 10, c.Broker.MaxConnections)
	assert.Equal(t, 3*time.Second, c.Broker.HandshakeTimeout)
}

// TestImportDefinitionsAtStart: definitions.import_file brings exchanges,
// queues, bindings and policies in before the broker serves, and a broken
// file is a configuration error.
func TestImportDefinitionsAtStart(t *testing.T) {
	srv := amqptest.NewServer(t)
	api := management.New(srv.Server, management.Options{})
	defer api.Close()
	file := writeFile(t, `{
  "policies": [{"vhost": "/", "name": "cap", "pattern": "^orders$", "apply-to": "queues", "priority": 0,
                "definition": {"max-length": 5}}],
  "exchanges": [{"name": "orders.x", "vhost": "/", "type": "fanout", "durable": true, "auto_delete": false, "internal": false, "arguments": {}}],
  "queues": [{"name": "orders", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {"x-max-priority": 5}}],
  "bindings": [{"source": "orders.x", "vhost": "/", "destination": "orders", "destination_type": "queue", "routing_key": "", "arguments": {}}]
}`)
	require.NoError(t, importDefinitions(api, file))
	v := srv.VHost("/")
	q, err := v.Queue("orders", 0)
	require.NoError(t, err)
	assert.Equal(t, int64(5), q.Config().MaxLength, "the policy applies")
	assert.Equal(t, uint8(5), q.Config().MaxPriority, "the argument too")
	x, err := v.Exchange("orders.x")
	require.NoError(t, err)
	assert.Equal(t, 1, x.BindingCount())

	require.Error(t, importDefinitions(api, writeFile(t, `{"queues": [`)))
	require.Error(t, importDefinitions(api, filepath.Join(t.TempDir(), "missing.json")))
}
