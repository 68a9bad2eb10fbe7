package configs

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// load reads the configuration with a fake environment and no RabbitMQ
// directory, so that the machine's /etc/rabbitmq is never read.
func load(args []string, lookup func(string) (string, bool)) (*Config, error) {
	return Load(Sources{Args: args, LookupEnv: lookup})
}

func TestDefaults(t *testing.T) {
	c, err := load(nil, env{}.lookup)
	require.NoError(t, err)
	host, err := os.Hostname()
	require.NoError(t, err)
	assert.Equal(t, &Config{
		Listen:              []string{":5672"},
		DataDir:             "./data",
		QueueMemoryBudget:   32 << 20,
		HTTPListen:          ":15672",
		PrometheusListen:    ":15692",
		FrameMax:            131072,
		ChannelMax:          2047,
		Heartbeat:           60 * time.Second,
		MaxMessageSize:      128 << 20,
		ConsumerTimeout:     30 * time.Minute,
		HandshakeTimeout:    10 * time.Second,
		MemoryHighWatermark: Amount{OfRAM: 0.4},
		DiskFreeLimit:       Amount{Bytes: 50_000_000},
		Vhosts:              []string{"/"},
		Users: []User{{Name: "guest", Password: "guest", Tags: []string{"administrator"},
			Permissions: map[string]Permission{"/": {Configure: ".*", Write: ".*", Read: ".*"}}}},
		LoopbackUsers: []string{"guest"},
		Identity:      Identity{Product: "RabbitMQ", Version: "3.10.8"},
		LogLevel:      slog.LevelInfo,
		Cluster:       Cluster{Node: host, Name: "warren", Listen: ":25672"},
	}, c)
}

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

func TestEmbeddedFileHasEveryKey(t *testing.T) {
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(Default, &doc))
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
	for _, k := range listKeys {
		assert.Contains(t, doc, k)
	}
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
		check func(t *testing.T, cfg *Config)
	}{
		{"file over defaults", []string{"--config", file}, nil, func(t *testing.T, cfg *Config) {
			assert.Equal(t, []string{"127.0.0.1:6000"}, cfg.Listen)
			assert.Equal(t, uint32(65536), cfg.FrameMax)
			assert.Equal(t, 10*time.Second, cfg.Heartbeat)
			// Keys the file does not set keep their defaults.
			assert.Equal(t, "./data", cfg.DataDir)
			assert.Equal(t, uint16(2047), cfg.ChannelMax)
			// Lists replace the defaults, and keep their case (vhost names are case-sensitive).
			assert.Equal(t, []string{"/", "Prod"}, cfg.Vhosts)
			assert.Equal(t, []User{{
				Name:         "Admin",
				PasswordHash: "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR",
				Tags:         []string{"administrator", "monitoring"},
				Permissions:  map[string]Permission{"Prod": {Configure: `^amq\.`, Write: ".*", Read: ""}},
			}}, cfg.Users)
		}},
		{"env over defaults", nil, env{"WARREN_AMQP_LISTEN": ":7000", "WARREN_STORAGE_DIR": "/var/lib/warren",
			"WARREN_LIMITS_CHANNEL_MAX": "10", "WARREN_LIMITS_MAX_MESSAGE_SIZE": "1024"}, func(t *testing.T, cfg *Config) {
			assert.Equal(t, []string{":7000"}, cfg.Listen)
			assert.Equal(t, "/var/lib/warren", cfg.DataDir)
			assert.Equal(t, uint16(10), cfg.ChannelMax)
			assert.Equal(t, uint64(1024), cfg.MaxMessageSize)
		}},
		{"empty env is unset", nil, env{"WARREN_AMQP_LISTEN": ""}, func(t *testing.T, cfg *Config) {
			assert.Equal(t, []string{":5672"}, cfg.Listen)
		}},
		{"env over file", []string{"--config", file}, env{"WARREN_AMQP_LISTEN": ":7000"}, func(t *testing.T, cfg *Config) {
			assert.Equal(t, []string{":7000"}, cfg.Listen)
			assert.Equal(t, uint32(65536), cfg.FrameMax)
		}},
		{"flag over env over file", []string{"--config", file, "--amqp.listen", "127.0.0.1:5673", "--limits.heartbeat", "30s"},
			env{"WARREN_AMQP_LISTEN": ":7000", "WARREN_LIMITS_FRAME_MAX": "8192"}, func(t *testing.T, cfg *Config) {
				assert.Equal(t, []string{"127.0.0.1:5673"}, cfg.Listen)
				assert.Equal(t, 30*time.Second, cfg.Heartbeat)
				assert.Equal(t, uint32(8192), cfg.FrameMax)
			}},
		{"flags alone", []string{"--storage.dir=/tmp/x", "--limits.frame_max", "1048576", "--limits.heartbeat", "0"}, nil,
			func(t *testing.T, cfg *Config) {
				assert.Equal(t, "/tmp/x", cfg.DataDir)
				assert.Equal(t, uint32(1<<20), cfg.FrameMax)
				assert.Zero(t, cfg.Heartbeat)
			}},
		{"empty file", []string{"--config", writeFile(t, "")}, nil, func(t *testing.T, cfg *Config) {
			def, err := load(nil, nil)
			require.NoError(t, err)
			assert.Equal(t, def, cfg)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := load(tt.args, tt.env.lookup)
			require.NoError(t, err)
			tt.check(t, cfg)
		})
	}
}

func TestLogLevel(t *testing.T) {
	c, err := load([]string{"--log.level", "WARN"}, env{}.lookup)
	level := c.LogLevel
	require.NoError(t, err)
	assert.Equal(t, "WARN", level.String())
	c, err = load(nil, env{"WARREN_LOG_LEVEL": "debug"}.lookup)
	level = c.LogLevel
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
			_, err := load(args, tt.env.lookup)
			require.Error(t, err)
			var ce *Error
			require.True(t, errors.As(err, &ce), "%T %v", err, err)
			assert.True(t, strings.HasPrefix(err.Error(), "config: "+tt.want), "got  %s\nwant config: %s", err, tt.want)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{{"--nope"}, {"serve"}, {"--config", "/does/not/exist.yaml"}} {
		_, err := load(args, env{}.lookup)
		assert.Error(t, err, args)
	}
	_, err := load([]string{"--help"}, env{}.lookup)
	assert.ErrorIs(t, err, pflag.ErrHelp)
	// --help wins over a bad setting: asking for help must not fail.
	_, err = load([]string{"--limits.frame_max", "1", "-h"}, env{}.lookup)
	assert.ErrorIs(t, err, pflag.ErrHelp)
	_, err = load([]string{"--version"}, env{}.lookup)
	assert.ErrorIs(t, err, ErrVersion)
}

func TestHelpListsEveryKey(t *testing.T) {
	var out bytes.Buffer
	Usage(&out)
	help := out.String()
	for _, s := range settings {
		assert.Contains(t, help, "--"+s.key+" ", s.key)
	}
	for _, want := range []string{"--config", "--version", "WARREN_", "RABBITMQ_CONFIG_FILE", `(default ":5672")`, "(default 60s)", "(default 131072)"} {
		assert.Contains(t, help, want)
	}
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
	c, err := load([]string{"--config", file, "--amqp.tls.verify_peer", "true", "--limits.handshake_timeout", "3s"},
		env{"WARREN_AMQP_TLS_CA_FILE": "/etc/warren/ca.pem", "WARREN_AMQP_TLS_FAIL_IF_NO_PEER_CERT": "true"}.lookup)
	require.NoError(t, err)
	assert.Equal(t, TLS{
		Listen: []string{"127.0.0.1:5671"}, CertFile: "/etc/warren/cert.pem", KeyFile: "/etc/warren/key.pem",
		CAFile: "/etc/warren/ca.pem", VerifyPeer: true, FailIfNoPeerCert: true,
	}, c.TLS)
	assert.Equal(t, 10, c.MaxConnections)
	assert.Equal(t, 3*time.Second, c.HandshakeTimeout)
}
