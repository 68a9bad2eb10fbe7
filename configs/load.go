package configs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
)

// setting is a scalar key that a file, an environment variable and a flag can
// all set. Lists (vhosts, users, loopback_users) are file-only: they do not
// fit in one flag.
type setting struct {
	key   string // the flag has the same name
	typ   string // what --help shows after the flag name
	usage string
}

// settings is in the order of warren.yaml, which is also the order of --help
// and of validation, so the first bad key reported is the first listed.
var settings = []setting{
	{"amqp.listen", "string", "TCP address of the AMQP listener, host:port"},
	{"amqp.tls.listen", "string", "TCP address of the AMQPS (TLS) listener, host:port; empty disables it"},
	{"amqp.tls.cert_file", "file", "PEM certificate chain of the TLS listener"},
	{"amqp.tls.key_file", "file", "PEM private key of the TLS listener"},
	{"amqp.tls.ca_file", "file", "PEM CA certificates that client certificates must chain to"},
	{"amqp.tls.verify_peer", "boolean", "ask TLS clients for a certificate and verify it; enables EXTERNAL"},
	{"amqp.tls.fail_if_no_peer_cert", "boolean", "refuse TLS clients without a valid certificate (needs verify_peer)"},
	{"storage.dir", "string", "directory for durable state, created if missing"},
	{"storage.memory_budget", "bytes", "memory for messages queues keep in memory; beyond it backlogs stay on disk; 0: no limit"},
	{"http.listen", "string", "management HTTP API address; empty disables it"},
	{"prometheus.listen", "string", "Prometheus /metrics address; empty disables it"},
	{"pprof.listen", "string", "Go profiler (/debug/pprof/) address, for profiling; empty disables it"},
	{"definitions.import_file", "file", "definitions (RabbitMQ's JSON export) to import at start; empty: none"},
	{"limits.frame_max", "bytes", "largest frame offered in connection.tune, 8192..1048576"},
	{"limits.channel_max", "number", "highest channel number a connection may open, 1..65535"},
	{"limits.heartbeat", "duration", "heartbeat proposed to clients, whole seconds; 0 disables"},
	{"limits.max_message_size", "bytes", "largest message body, 1..536870912 (512 MiB)"},
	{"limits.consumer_timeout", "duration", "close a channel whose delivery stays unacked this long; 0 disables"},
	{"limits.max_connections", "number", "open connections allowed; more are refused with 530; 0 is unlimited"},
	{"limits.handshake_timeout", "duration", "drop a client that has not opened its connection this long after connecting"},
	{"limits.vhost_max_connections", "number", "connections allowed per virtual host; 0 is unlimited"},
	{"limits.vhost_max_queues", "number", "queues allowed per virtual host; 0 is unlimited"},
	{"limits.memory_high_watermark", "number", "block publishers above this resident memory: a fraction of RAM (<= 1) or bytes (units such as 2GB, 512MiB); 0 disables"},
	{"limits.disk_free_limit", "bytes", "block publishers when less disk is free under storage.dir (units such as 1GB allowed); 0 disables"},
	{"identity.product", "string", "product name sent to clients and shown by /api/overview"},
	{"identity.version", "string", "version sent to clients and shown by /api/overview"},
	{"log.level", "string", "lowest log level written: debug, info, warn or error"},
	{"cluster.node", "string", "this node's name in the cluster; empty: the host name"},
	{"cluster.name", "string", "the cluster's name; nodes of another cluster are refused"},
	{"cluster.listen", "string", "inter-node listener, host:port"},
	{"cluster.peers", "list", "the initial members, NAME=HOST:PORT,... this node included; empty: a single node"},
	{"cluster.secret", "string", "shared secret of the cluster's nodes (like the Erlang cookie)"},
	{"cluster.secret_file", "file", "file holding the shared secret, readable by its owner only"},
	{"cluster.tls.cert_file", "file", "PEM certificate chain for inter-node TLS; empty: plain TCP"},
	{"cluster.tls.key_file", "file", "PEM private key for inter-node TLS"},
	{"cluster.tls.ca_file", "file", "PEM CAs that other nodes' certificates must chain to (required with TLS)"},
}

// listKeys are the top-level keys that hold lists; only files set them.
var listKeys = []string{"vhosts", "users", "loopback_users"}

// ErrVersion is returned by Load when --version was asked for; like
// pflag.ErrHelp (returned for --help) it is a request, not a failure.
var ErrVersion = errors.New("version requested")

// Error is a bad setting. The key comes first because it is what the user
// has to find; From names the source that set it (a file and line, an
// environment variable, a flag), since a stale variable is otherwise hard
// to spot.
type Error struct {
	Key, Msg, From string
}

func (e *Error) Error() string {
	s := "config: " + e.Key + ": " + e.Msg
	if e.From != "" {
		s += "; " + e.From
	}
	return s
}

// Sources is where Load reads from.
type Sources struct {
	// Args are the command-line arguments, without the program name.
	Args []string
	// LookupEnv reads the environment (os.LookupEnv in the command), so
	// that tests need not touch the process's.
	LookupEnv func(string) (string, bool)
	// RabbitMQDir is where RabbitMQ's rabbitmq.conf, conf.d/ and
	// enabled_plugins are looked for when RABBITMQ_CONFIG_FILE,
	// RABBITMQ_CONFIG_FILES and RABBITMQ_ENABLED_PLUGINS_FILE do not say:
	// /etc/rabbitmq in the command. Empty: only those variables and a
	// --config file in RabbitMQ's format are read.
	RabbitMQDir string
}

func (s Sources) env(name string) string {
	if s.LookupEnv == nil {
		return ""
	}
	v, _ := s.LookupEnv(name)
	return v
}

// envName is the environment variable for key: limits.frame_max is
// WARREN_LIMITS_FRAME_MAX.
func envName(key string) string {
	return "WARREN_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// rawValue is a flag that keeps its text unparsed, so that a bad value gets
// the same check and the same message naming the key whether it came from a
// file, the environment or a flag.
type rawValue struct{ s, typ string }

func (r *rawValue) String() string     { return r.s }
func (r *rawValue) Set(s string) error { r.s = s; return nil }
func (r *rawValue) Type() string       { return r.typ }

// newFlagSet defines the command's flags with defaults taken from the
// embedded configuration, so that --help shows the values that really apply.
func newFlagSet(defaults layer) *pflag.FlagSet {
	fs := pflag.NewFlagSet("warren", pflag.ContinueOnError)
	fs.SortFlags = false
	// Errors and usage are printed by the command, once, in its own format.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.String("config", "", "`file` merged over the built-in defaults: Warren's YAML, or RabbitMQ's rabbitmq.conf (*.conf)")
	for _, s := range settings {
		def := defaults[s.key].text
		fs.Var(&rawValue{s: def, typ: s.typ}, s.key, s.usage)
		fs.Lookup(s.key).DefValue = def
	}
	fs.Bool("version", false, "print the version and exit")
	fs.BoolP("help", "h", false, "print this help and exit")
	return fs
}

// Usage writes the --help text.
func Usage(w io.Writer) {
	defaults, err := readYAML(Default, "built-in defaults")
	if err != nil {
		// The embedded file is checked by the tests; keep going without defaults.
		defaults = layer{}
	}
	fmt.Fprint(w, `Usage: warren [flags]

Warren is an AMQP 0-9-1 message broker compatible with RabbitMQ.

Settings are layered, lowest to highest:
  1. the built-in defaults (configs/warren.yaml);
  2. RabbitMQ's configuration: rabbitmq.conf and conf.d/*.conf under
     /etc/rabbitmq (WARREN_RABBITMQ_DIR moves it; RABBITMQ_CONFIG_FILE and
     RABBITMQ_CONFIG_FILES name them), then RABBITMQ_DEFAULT_USER,
     RABBITMQ_DEFAULT_PASS and RABBITMQ_DEFAULT_VHOST;
  3. the --config file (one ending in .conf, or written as key = value
     lines, is read as rabbitmq.conf, in layer 2);
  4. WARREN_* environment variables (the key upper-cased with dots as
     underscores: limits.frame_max is WARREN_LIMITS_FRAME_MAX);
  5. these flags.
Virtual hosts, users and loopback_users can only be set in files.

Flags:
`)
	fmt.Fprint(w, newFlagSet(defaults).FlagUsagesWrapped(0))
}

// Load reads every source, layers them and checks the result: the embedded
// defaults, RabbitMQ's files and variables, the --config file, WARREN_*
// variables, flags. It returns pflag.ErrHelp or ErrVersion when those were
// asked for, an *Error naming the bad key, or another error (a bad flag, an
// unreadable file).
func Load(src Sources) (*Config, error) {
	defaults, err := readYAML(Default, "built-in defaults")
	if err != nil {
		return nil, err
	}
	fs := newFlagSet(defaults)
	if err := fs.Parse(src.Args); err != nil {
		return nil, err
	}
	if help, _ := fs.GetBool("help"); help {
		return nil, pflag.ErrHelp
	}
	if ver, _ := fs.GetBool("version"); ver {
		return nil, ErrVersion
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	var notes []string
	merged := layer{}
	merged.merge(defaults)

	// RabbitMQ's layer: its main file (a --config file in its format
	// stands for it), conf.d, then its variables.
	configFile, _ := fs.GetString("config")
	var yamlFile string
	rabbitFile, explicit := src.env("RABBITMQ_CONFIG_FILE"), true
	if configFile != "" {
		data, err := os.ReadFile(configFile)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if isRabbitConf(configFile, data) {
			rabbitFile = configFile
		} else {
			yamlFile = configFile
		}
	}
	if rabbitFile == "" && src.RabbitMQDir != "" {
		rabbitFile, explicit = filepath.Join(src.RabbitMQDir, "rabbitmq.conf"), false
	}
	rc := newRabbitConf()
	if rabbitFile != "" {
		path, data, err := readRabbitFile(rabbitFile)
		switch {
		case err == nil:
			if err := rc.parse(path, data); err != nil {
				return nil, err
			}
		case errors.Is(err, os.ErrNotExist):
			if explicit {
				notes = append(notes, fmt.Sprintf("RabbitMQ config file %s not found", rabbitFile))
			}
		default:
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	confDir := src.env("RABBITMQ_CONFIG_FILES")
	if confDir == "" && src.RabbitMQDir != "" {
		confDir = filepath.Join(src.RabbitMQDir, "conf.d")
	}
	if confDir != "" {
		files, err := confDFiles(confDir)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("config: %w", err)
			}
			if err := rc.parse(f, data); err != nil {
				return nil, err
			}
		}
	}
	rc.env(src.env)
	// enabled_plugins lies beside rabbitmq.conf, as in RabbitMQ.
	pluginsFile := src.env("RABBITMQ_ENABLED_PLUGINS_FILE")
	switch {
	case pluginsFile != "":
	case rc.read != "":
		pluginsFile = filepath.Join(filepath.Dir(rc.read), "enabled_plugins")
	case src.RabbitMQDir != "":
		pluginsFile = filepath.Join(src.RabbitMQDir, "enabled_plugins")
	}
	var plugins []string
	if pluginsFile != "" {
		if data, err := os.ReadFile(pluginsFile); err == nil {
			if plugins, err = parseEnabledPlugins(data); err != nil {
				return nil, &Error{Key: "enabled_plugins", Msg: err.Error(), From: "in " + pluginsFile}
			}
			notes = append(notes, pluginNotes(plugins)...)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	rabbit, err := rc.layer()
	if err != nil {
		return nil, err
	}
	merged.merge(rabbit)
	notes = append(notes, rc.warnings...)

	if yamlFile != "" {
		data, err := os.ReadFile(yamlFile)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		file, err := readYAML(data, yamlFile)
		if err != nil {
			return nil, err
		}
		merged.merge(file)
	}

	env := layer{}
	for _, s := range settings {
		name := envName(s.key)
		// Empty counts as unset.
		if val := src.env(name); val != "" {
			env[s.key] = entry{text: val, from: "set by " + name}
		}
	}
	merged.merge(env)

	flags := layer{}
	for _, s := range settings {
		if fs.Changed(s.key) {
			flags[s.key] = entry{text: fs.Lookup(s.key).Value.String(), from: "set by --" + s.key}
		}
	}
	merged.merge(flags)

	cfg, err := decode(merged)
	if err != nil {
		return nil, err
	}
	cfg.Plugins = plugins
	cfg.Warnings = append(notes, cfg.Warnings...)
	return cfg, nil
}

// layer is one source's settings, by key. A later layer's entry replaces an
// earlier one's whole, lists included.
type layer map[string]entry

// entry is one setting's value and where it was set.
type entry struct {
	text  string   // a scalar's text
	list  []string // amqp listeners from rabbitmq.conf, vhosts, loopback_users
	users []userAt // users
	// isList says list holds the value (it may be empty: listeners.tcp = none).
	isList bool
	// kind marks a resource limit from rabbitmq.conf as relative to RAM or
	// absolute, where Warren's own syntax would guess from the number.
	kind amountKind
	from string // "in FILE line N", "set by WARREN_X", "set by --x"
}

type amountKind int

const (
	amountGuess amountKind = iota
	amountAbsolute
	amountRelative
)

func (l layer) merge(over layer) {
	for k, e := range over {
		l[k] = e
	}
}
