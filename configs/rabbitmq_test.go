package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rabbitDir writes files into a fresh directory laid out as /etc/rabbitmq.
func rabbitDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	}
	return dir
}

func TestRabbitMQConf(t *testing.T) {
	admin := func(name, pass, vhost string, tags ...string) []User {
		if tags == nil {
			tags = []string{"administrator"}
		}
		return []User{{Name: name, Password: pass, Tags: tags,
			Permissions: map[string]Permission{vhost: {Configure: ".*", Write: ".*", Read: ".*"}}}}
	}
	tests := []struct {
		name  string
		conf  string
		env   env
		check func(t *testing.T, c *Config)
	}{
		{"listeners", "listeners.tcp.default = 5673\nlisteners.tcp.local = 127.0.0.1:5674\nlisteners.tcp.v6 = ::1:5675\n", nil,
			func(t *testing.T, c *Config) {
				assert.Equal(t, []string{":5673", "127.0.0.1:5674", "[::1]:5675"}, c.Listen)
			}},
		{"no plain listener", "listeners.tcp = none\nlisteners.ssl.default = 5671\nssl_options.cacertfile = /c/ca.pem\n" +
			"ssl_options.certfile = /c/cert.pem\nssl_options.keyfile = /c/key.pem\nssl_options.verify = verify_peer\n" +
			"ssl_options.fail_if_no_peer_cert = true\nssl_options.depth = 2\n", nil,
			func(t *testing.T, c *Config) {
				assert.Empty(t, c.Listen)
				assert.Equal(t, TLS{Listen: []string{":5671"}, CertFile: "/c/cert.pem", KeyFile: "/c/key.pem", CAFile: "/c/ca.pem",
					VerifyPeer: true, FailIfNoPeerCert: true}, c.TLS)
				assert.Empty(t, c.Warnings, "ssl_options.depth is accepted")
			}},
		{"default user replaces guest", "default_user = admin\ndefault_pass = s3cret # a comment\n", nil,
			func(t *testing.T, c *Config) {
				assert.Equal(t, admin("admin", "s3cret", "/"), c.Users)
				assert.Equal(t, []string{"/"}, c.Vhosts)
			}},
		{"default vhost, tags and permissions", "default_vhost = app\ndefault_user_tags.monitoring = true\n" +
			"default_user_tags.administrator = false\ndefault_permissions.configure = ^app\\.\ndefault_permissions.read = .*\n" +
			"default_permissions.write = .*\n", nil,
			func(t *testing.T, c *Config) {
				assert.Equal(t, []User{{Name: "guest", Password: "guest", Tags: []string{"monitoring"},
					Permissions: map[string]Permission{"app": {Configure: `^app\.`, Write: ".*", Read: ".*"}}}}, c.Users)
				assert.Equal(t, []string{"app"}, c.Vhosts)
			}},
		{"env over file", "default_user = fromfile\ndefault_pass = filepass\n",
			env{"RABBITMQ_DEFAULT_USER": "alice", "RABBITMQ_DEFAULT_PASS": "wonder", "RABBITMQ_DEFAULT_VHOST": "wl"},
			func(t *testing.T, c *Config) {
				assert.Equal(t, admin("alice", "wonder", "wl"), c.Users)
				assert.Equal(t, []string{"wl"}, c.Vhosts)
			}},
		{"loopback_users.guest = false", "loopback_users.guest = false\n", nil,
			func(t *testing.T, c *Config) { assert.Empty(t, c.LoopbackUsers) }},
		{"loopback_users = none", "loopback_users = none\n", nil,
			func(t *testing.T, c *Config) { assert.Empty(t, c.LoopbackUsers) }},
		{"loopback_users.bob", "loopback_users.bob = true\n", nil,
			func(t *testing.T, c *Config) { assert.Equal(t, []string{"bob"}, c.LoopbackUsers) }},
		{"management and prometheus", "management.tcp.port = 15673\nmanagement.tcp.ip = 127.0.0.1\nprometheus.tcp.port = 15693\n", nil,
			func(t *testing.T, c *Config) {
				assert.Equal(t, "127.0.0.1:15673", c.HTTPListen)
				assert.Equal(t, ":15693", c.PrometheusListen)
			}},
		{"definitions", "management.load_definitions = /etc/rabbitmq/definitions.json\n", nil,
			func(t *testing.T, c *Config) { assert.Equal(t, "/etc/rabbitmq/definitions.json", c.DefinitionsFile) }},
		{"limits", "vm_memory_high_watermark.absolute = 2GB\ndisk_free_limit.relative = 1.5\nconsumer_timeout = 900000\n" +
			"heartbeat = 30\nframe_max = 65536\nchannel_max = 0\nmax_message_size = 1048576\nconnection_max = infinity\n", nil,
			func(t *testing.T, c *Config) {
				assert.Equal(t, Amount{Bytes: 2_000_000_000}, c.MemoryHighWatermark)
				assert.Equal(t, Amount{OfRAM: 1.5}, c.DiskFreeLimit)
				assert.Equal(t, 15*time.Minute, c.ConsumerTimeout)
				assert.Equal(t, 30*time.Second, c.Heartbeat)
				assert.Equal(t, uint32(65536), c.FrameMax)
				assert.Equal(t, uint16(65535), c.ChannelMax, "0 is no limit")
				assert.Equal(t, uint64(1<<20), c.MaxMessageSize)
				assert.Zero(t, c.MaxConnections)
			}},
		{"relative memory and absolute disk", "vm_memory_high_watermark.relative = 0.6\ndisk_free_limit.absolute = 512MiB\n", nil,
			func(t *testing.T, c *Config) {
				assert.Equal(t, Amount{OfRAM: 0.6}, c.MemoryHighWatermark)
				assert.Equal(t, Amount{Bytes: 512 << 20}, c.DiskFreeLimit)
			}},
		{"absolute wins over relative", "vm_memory_high_watermark.absolute = 1073741824\nvm_memory_high_watermark.relative = 0.5\n", nil,
			func(t *testing.T, c *Config) { assert.Equal(t, Amount{Bytes: 1 << 30}, c.MemoryHighWatermark) }},
		{"log level", "log.console = true\nlog.console.level = warning\nlog.file.level = debug\n", nil,
			func(t *testing.T, c *Config) {
				assert.Equal(t, "WARN", c.LogLevel.String())
				assert.Empty(t, c.Warnings)
			}},
		{"log file", "log.file = /var/log/rabbitmq/rabbit.log\n", nil,
			func(t *testing.T, c *Config) {
				require.Len(t, c.Warnings, 1)
				assert.Contains(t, c.Warnings[0], "log.file = /var/log/rabbitmq/rabbit.log (")
				assert.Contains(t, c.Warnings[0], "not supported by Warren")
			}},
		{"unknown key and clustering warn", "cluster_formation.classic_config.nodes.1 = rabbit@a\nfancy_feature = on\n", nil,
			func(t *testing.T, c *Config) {
				require.Len(t, c.Warnings, 2)
				assert.Contains(t, c.Warnings[0], "cluster_formation.classic_config.nodes.1")
				assert.Contains(t, c.Warnings[0], "clustering does not exist")
				assert.Contains(t, c.Warnings[1], "fancy_feature")
				assert.Contains(t, c.Warnings[1], "line 2")
				assert.Equal(t, []string{":5672"}, c.Listen, "everything else keeps its default")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := rabbitDir(t, map[string]string{"rabbitmq.conf": tt.conf})
			c, err := Load(Sources{LookupEnv: tt.env.lookup, RabbitMQDir: dir})
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestRabbitMQConfErrors(t *testing.T) {
	tests := []struct {
		conf string
		want string // the whole error line
	}{
		{"\nheartbeat = often\n", `config: heartbeat: must be an integer (got "often"); in FILE line 2`},
		{"listeners.tcp.default = localhost\n", `config: listeners.tcp.default: must be a port or IP:PORT (got "localhost"); in FILE line 1`},
		{"listeners.tcp = some\n", `config: listeners.tcp: must be none, or set listeners as listeners.tcp.NAME = PORT (got "some"); in FILE line 1`},
		{"ssl_options.verify = yes\n", `config: ssl_options.verify: must be verify_peer or verify_none (got "yes"); in FILE line 1`},
		{"default_user_tags.administrator = yes\n", `config: default_user_tags.administrator: must be true or false (got "yes"); in FILE line 1`},
		{"vm_memory_high_watermark.absolute = lots\n", `config: vm_memory_high_watermark.absolute: must be bytes, with an optional unit such as 1GB or 512MiB (got "lots"); in FILE line 1`},
		{"management.tcp.port = 99999\n", `config: management.tcp.port: must be a port number 0..65535 (got "99999"); in FILE line 1`},
		{"this is not a setting\n", `config: this: expected key = value; in FILE line 1`},
		// A value that is well formed but out of Warren's range names both keys.
		{"# frames\nframe_max = 100\n", `config: limits.frame_max: must be between 8192 and 1048576 (got 100); set by frame_max in FILE line 2`},
		{"default_permissions.read = (\n", "config: default_permissions.read: invalid regular expression \"(\": missing closing ): `(`; in FILE line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			dir := rabbitDir(t, map[string]string{"rabbitmq.conf": tt.conf})
			_, err := Load(Sources{RabbitMQDir: dir})
			require.Error(t, err)
			assert.Equal(t, strings.ReplaceAll(tt.want, "FILE", filepath.Join(dir, "rabbitmq.conf")), err.Error())
		})
	}
}

func TestRabbitMQSources(t *testing.T) {
	t.Run("conf.d after rabbitmq.conf, in order", func(t *testing.T) {
		dir := rabbitDir(t, map[string]string{
			"rabbitmq.conf":          "heartbeat = 10\nframe_max = 65536\n",
			"conf.d/20-later.conf":   "heartbeat = 30\n",
			"conf.d/10-earlier.conf": "heartbeat = 20\nchannel_max = 100\n",
			"conf.d/ignored.txt":     "heartbeat = 40\n",
		})
		c, err := Load(Sources{RabbitMQDir: dir})
		require.NoError(t, err)
		assert.Equal(t, 30*time.Second, c.Heartbeat)
		assert.Equal(t, uint32(65536), c.FrameMax)
		assert.Equal(t, uint16(100), c.ChannelMax)
	})
	t.Run("RABBITMQ_CONFIG_FILE and RABBITMQ_CONFIG_FILES", func(t *testing.T) {
		dir := rabbitDir(t, map[string]string{"custom.conf": "heartbeat = 11\n", "extra/a.conf": "channel_max = 7\n"})
		c, err := Load(Sources{LookupEnv: env{
			"RABBITMQ_CONFIG_FILE":  filepath.Join(dir, "custom"),          // the extension may be left out
			"RABBITMQ_CONFIG_FILES": filepath.Join(dir, "extra", "*.conf"), // a directory or a pattern
		}.lookup})
		require.NoError(t, err)
		assert.Equal(t, 11*time.Second, c.Heartbeat)
		assert.Equal(t, uint16(7), c.ChannelMax)
	})
	t.Run("--config rabbitmq.conf, YAML and flags over it", func(t *testing.T) {
		dir := rabbitDir(t, map[string]string{
			"my.conf":   "listeners.tcp.default = 5680\nheartbeat = 12\ndefault_user = admin\ndefault_pass = pw\n",
			"warren.cf": "# no extension: detected by its content\nheartbeat = 13\n",
		})
		c, err := load([]string{"--config", filepath.Join(dir, "my.conf"), "--limits.heartbeat", "14s"}, nil)
		require.NoError(t, err)
		assert.Equal(t, []string{":5680"}, c.Listen)
		assert.Equal(t, 14*time.Second, c.Heartbeat, "a flag wins")
		assert.Equal(t, "admin", c.Users[0].Name)
		c, err = load([]string{"--config", filepath.Join(dir, "warren.cf")}, nil)
		require.NoError(t, err)
		assert.Equal(t, 13*time.Second, c.Heartbeat)

		// Warren's YAML is read over RabbitMQ's files.
		yaml := writeFile(t, "limits:\n  heartbeat: 15s\nusers:\n  - {name: yamluser, password: x}\n")
		etc := rabbitDir(t, map[string]string{"rabbitmq.conf": "heartbeat = 16\nchannel_max = 9\n"})
		c, err = Load(Sources{Args: []string{"--config", yaml}, LookupEnv: env{"RABBITMQ_DEFAULT_USER": "envuser"}.lookup, RabbitMQDir: etc})
		require.NoError(t, err)
		assert.Equal(t, 15*time.Second, c.Heartbeat)
		assert.Equal(t, uint16(9), c.ChannelMax)
		assert.Equal(t, "yamluser", c.Users[0].Name, "the YAML's users replace RabbitMQ's default user")
	})
	t.Run("enabled_plugins", func(t *testing.T) {
		dir := rabbitDir(t, map[string]string{
			"rabbitmq.conf":   "",
			"enabled_plugins": "% comment\n[rabbitmq_management,\n 'rabbitmq_prometheus', rabbitmq_federation].\n",
		})
		c, err := Load(Sources{RabbitMQDir: dir})
		require.NoError(t, err)
		assert.Equal(t, []string{"rabbitmq_management", "rabbitmq_prometheus", "rabbitmq_federation"}, c.Plugins)
		require.Len(t, c.Warnings, 1)
		assert.Contains(t, c.Warnings[0], "rabbitmq_federation is not available in Warren")

		bad := rabbitDir(t, map[string]string{"enabled_plugins": "rabbitmq_management\n"})
		_, err = Load(Sources{RabbitMQDir: bad})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "config: enabled_plugins: must be an Erlang list")
	})
	t.Run("nothing there", func(t *testing.T) {
		c, err := Load(Sources{RabbitMQDir: t.TempDir()})
		require.NoError(t, err)
		def, err := load(nil, nil)
		require.NoError(t, err)
		assert.Equal(t, def, c)
	})
}

func TestIsRabbitConf(t *testing.T) {
	for _, tt := range []struct {
		path, text string
		want       bool
	}{
		{"rabbitmq.conf", "", true},
		{"x.yaml", "a = b", false},
		{"config", "# comment\n\nlisteners.tcp.default = 5672\n", true},
		{"config", "amqp:\n  listen: \":5672\"\n", false},
		{"config", "amqp: {listen: \"a=b\"}\n", false},
	} {
		assert.Equal(t, tt.want, isRabbitConf(tt.path, []byte(tt.text)), "%s %q", tt.path, tt.text)
	}
}
