package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/configs"
)

// setting is a scalar key that a file, an environment variable and a flag can
// all set. Lists (vhosts, users) are file-only: they do not fit in one flag.
type setting struct {
	key   string // viper key; the flag has the same name
	typ   string // what --help shows after the flag name
	usage string
}

// settings is in the order of configs/warren.yaml, which is also the order of
// --help and of validation, so the first bad key reported is the first listed.
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
	{"limits.memory_high_watermark", "number", "block publishers above this resident memory: a fraction of RAM (<= 1) or bytes; 0 disables"},
	{"limits.disk_free_limit", "bytes", "block publishers when less disk is free under storage.dir; 0 disables"},
	{"log.level", "string", "lowest log level written: debug, info, warn or error"},
}

// Limits enforced on the settings.
const (
	// frameMinSize is FRAME-MIN-SIZE in RabbitMQ's amqp-rabbitmq-0.9.1.json,
	// raised from the 0-9-1 document's 4096 in 2025 (rabbitmq-server#13541).
	frameMinSize = 8192
	frameMaxSize = 1 << 20
	// maxMessageSize is RabbitMQ's hard cap on max_message_size.
	maxMessageSize = 512 << 20
	// maxHeartbeat is what connection.tune's 16-bit heartbeat field can carry.
	maxHeartbeat = 65535 * time.Second
	// rabbitHashLen is a rabbit_password_hashing_sha256 hash once base64
	// decoded: a 4-byte salt followed by a SHA-256 digest.
	rabbitHashLen = 4 + 32
)

// errVersion asks for the version line; like pflag.ErrHelp it is a request,
// not a failure.
var errVersion = errors.New("version requested")

// rawValue is a flag that keeps its text unparsed, so that a bad value gets the
// same check and the same message naming the key whether it came from a file,
// the environment or a flag. typ must not be one that viper converts itself
// ("int", "bool", ...): viper's cast turns "abc" into 0 without an error.
type rawValue struct{ s, typ string }

func (r *rawValue) String() string     { return r.s }
func (r *rawValue) Set(s string) error { r.s = s; return nil }
func (r *rawValue) Type() string       { return r.typ }

// envName is the environment variable for key: limits.frame_max is
// WARREN_LIMITS_FRAME_MAX.
func envName(key string) string {
	return "WARREN_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// configError is a bad setting. The key comes first because it is what the
// user has to find; from names the layer that set it, since a stale
// environment variable is otherwise hard to spot.
type configError struct {
	key, msg, from string
}

func (e *configError) Error() string {
	s := "config: " + e.key + ": " + e.msg
	if e.from != "" {
		s += "; " + e.from
	}
	return s
}

// newFlagSet defines the command's flags with defaults taken from the embedded
// configuration, so that --help shows the values that really apply.
func newFlagSet(defaults *viper.Viper) *pflag.FlagSet {
	fs := pflag.NewFlagSet("warren", pflag.ContinueOnError)
	fs.SortFlags = false
	// Errors and usage are printed by run, once, in its own format.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.String("config", "", "YAML `file` merged over the built-in defaults")
	for _, s := range settings {
		def := defaults.GetString(s.key)
		fs.Var(&rawValue{s: def, typ: s.typ}, s.key, s.usage)
		fs.Lookup(s.key).DefValue = def
	}
	fs.Bool("version", false, "print the version and exit")
	fs.BoolP("help", "h", false, "print this help and exit")
	return fs
}

// usage writes the --help text.
func usage(w io.Writer) {
	v, err := defaultViper()
	if err != nil {
		// The embedded file is checked by the tests; keep going without defaults.
		v = viper.New()
	}
	fmt.Fprint(w, `Usage: warren [flags]

Warren is an AMQP 0-9-1 message broker compatible with RabbitMQ.

Settings are layered, lowest to highest: the built-in defaults
(configs/warren.yaml), the --config file, WARREN_* environment variables (the
key upper-cased with dots as underscores: limits.frame_max is
WARREN_LIMITS_FRAME_MAX), then these flags. Virtual hosts and users can only
be set in the --config file.

Flags:
`)
	fmt.Fprint(w, newFlagSet(v).FlagUsagesWrapped(0))
}

// defaultViper holds the embedded defaults.
func defaultViper() (*viper.Viper, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(configs.Default)); err != nil {
		return nil, fmt.Errorf("config: built-in defaults: %w", err)
	}
	return v, nil
}

// loadConfig resolves the command line, the environment (through lookupEnv,
// so tests need not touch the process's) and the files into a checked
// amqp.Config and log level. It returns pflag.ErrHelp or errVersion when
// those were asked for, and otherwise one error naming the bad key.
//
// viper layers the scalar settings. It lowercases every map key it reads, and
// vhost names are case-sensitive, so the lists (vhosts, users) are read from
// the YAML nodes of the file that set them instead.
// config is what the command runs with: the broker's configuration and the
// command's own settings.
type config struct {
	Broker amqp.Config
	Level  slog.Level
	// HTTPListen and PrometheusListen are the management API's and the
	// metrics' addresses; empty turns them off.
	HTTPListen, PrometheusListen string
	// PprofListen serves net/http/pprof; empty (the default) turns it off,
	// since profiles expose the process's internals.
	PprofListen string
	// DefinitionsFile is imported at start, as RabbitMQ's
	// load_definitions does.
	DefinitionsFile string
}

func loadConfig(args []string, lookupEnv func(string) (string, bool)) (config, error) {
	v, err := defaultViper()
	if err != nil {
		return config{}, err
	}
	fs := newFlagSet(v)
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if help, _ := fs.GetBool("help"); help {
		return config{}, pflag.ErrHelp
	}
	if ver, _ := fs.GetBool("version"); ver {
		return config{}, errVersion
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	lists, err := readYAML(configs.Default, "built-in defaults", nil)
	if err != nil {
		return config{}, err
	}
	// from records which layer set each key, for error messages.
	from := map[string]string{}

	if path, _ := fs.GetString("config"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return config{}, fmt.Errorf("config: %w", err)
		}
		file, err := readYAML(data, path, from)
		if err != nil {
			return config{}, err
		}
		// A list in the file replaces the default one, as viper does.
		if file.vhosts != nil {
			lists.vhosts, lists.vhostsFrom = file.vhosts, file.vhostsFrom
		}
		if file.users != nil {
			lists.users, lists.usersFrom = file.users, file.usersFrom
		}
		if err := v.MergeConfig(bytes.NewReader(data)); err != nil {
			return config{}, fmt.Errorf("config: %s: %w", path, err)
		}
	}

	// Environment variables are merged as one more config layer rather than
	// with AutomaticEnv, which reads the process environment directly.
	env := map[string]any{}
	for _, s := range settings {
		name := envName(s.key)
		// Empty counts as unset, like viper's AutomaticEnv by default.
		if val, ok := lookupEnv(name); ok && val != "" {
			parts := strings.Split(s.key, ".")
			m := env
			for _, p := range parts[:len(parts)-1] {
				sub, _ := m[p].(map[string]any)
				if sub == nil {
					sub = map[string]any{}
					m[p] = sub
				}
				m = sub
			}
			m[parts[len(parts)-1]] = val
			from[s.key] = "set by " + name
		}
	}
	if err := v.MergeConfigMap(env); err != nil {
		return config{}, fmt.Errorf("config: environment: %w", err)
	}

	for _, s := range settings {
		if err := v.BindPFlag(s.key, fs.Lookup(s.key)); err != nil {
			return config{}, fmt.Errorf("config: %s: %w", s.key, err)
		}
		if fs.Changed(s.key) {
			from[s.key] = "set by --" + s.key
		}
	}
	return decode(v, lists, from)
}

// decode checks every setting and builds the typed configuration.
func decode(v *viper.Viper, lists *yamlLists, from map[string]string) (config, error) {
	var cfg amqp.Config
	bad := func(key, format string, args ...any) error {
		return &configError{key: key, msg: fmt.Sprintf(format, args...), from: from[key]}
	}
	get := func(key string) string { return strings.TrimSpace(v.GetString(key)) }

	cfg.Listen = get("amqp.listen")
	if msg := checkListen(cfg.Listen); msg != "" {
		return config{}, bad("amqp.listen", "%s", msg)
	}
	cfg.TLS.Listen = get("amqp.tls.listen")
	cfg.TLS.CertFile = get("amqp.tls.cert_file")
	cfg.TLS.KeyFile = get("amqp.tls.key_file")
	cfg.TLS.CAFile = get("amqp.tls.ca_file")
	for _, b := range []struct {
		key string
		dst *bool
	}{{"amqp.tls.verify_peer", &cfg.TLS.VerifyPeer}, {"amqp.tls.fail_if_no_peer_cert", &cfg.TLS.FailIfNoPeerCert}} {
		val, err := strconv.ParseBool(get(b.key))
		if err != nil {
			return config{}, bad(b.key, "must be true or false (got %q)", get(b.key))
		}
		*b.dst = val
	}
	if cfg.TLS.Listen != "" {
		if msg := checkListen(cfg.TLS.Listen); msg != "" {
			return config{}, bad("amqp.tls.listen", "%s", msg)
		}
		for _, f := range []struct{ key, path string }{{"amqp.tls.cert_file", cfg.TLS.CertFile}, {"amqp.tls.key_file", cfg.TLS.KeyFile}} {
			if f.path == "" {
				return config{}, bad(f.key, "required when amqp.tls.listen is set")
			}
		}
		if cfg.TLS.VerifyPeer && cfg.TLS.CAFile == "" {
			return config{}, bad("amqp.tls.ca_file", "required when amqp.tls.verify_peer is true")
		}
	}
	if cfg.TLS.FailIfNoPeerCert && !cfg.TLS.VerifyPeer {
		return config{}, bad("amqp.tls.fail_if_no_peer_cert", "needs amqp.tls.verify_peer: true")
	}
	cfg.DataDir = get("storage.dir")
	budget, msg := parseInt(get("storage.memory_budget"), 0, 1<<62)
	if msg != "" {
		return config{}, bad("storage.memory_budget", "%s", msg)
	}
	cfg.QueueMemoryBudget = budget
	if cfg.DataDir == "" {
		return config{}, bad("storage.dir", "must not be empty")
	}
	// An empty address turns the management API or the metrics off.
	for _, key := range []string{"http.listen", "prometheus.listen", "pprof.listen"} {
		if addr := get(key); addr != "" {
			if msg := checkListen(addr); msg != "" {
				return config{}, bad(key, "%s", msg)
			}
		}
	}

	n, msg := parseInt(get("limits.frame_max"), frameMinSize, frameMaxSize)
	if msg != "" {
		return config{}, bad("limits.frame_max", "%s", msg)
	}
	cfg.FrameMax = uint32(n)
	n, msg = parseInt(get("limits.channel_max"), 1, 65535)
	if msg != "" {
		return config{}, bad("limits.channel_max", "%s", msg)
	}
	cfg.ChannelMax = uint16(n)
	hb, msg := parseHeartbeat(get("limits.heartbeat"))
	if msg != "" {
		return config{}, bad("limits.heartbeat", "%s", msg)
	}
	cfg.Heartbeat = hb
	n, msg = parseInt(get("limits.max_message_size"), 1, maxMessageSize)
	if msg != "" {
		return config{}, bad("limits.max_message_size", "%s", msg)
	}
	cfg.MaxMessageSize = uint64(n)
	ct, err := time.ParseDuration(get("limits.consumer_timeout"))
	if err != nil || ct < 0 {
		return config{}, bad("limits.consumer_timeout", "invalid duration %q", get("limits.consumer_timeout"))
	}
	cfg.ConsumerTimeout = ct
	n, msg = parseInt(get("limits.max_connections"), 0, 1<<31-1)
	if msg != "" {
		return config{}, bad("limits.max_connections", "%s", msg)
	}
	cfg.MaxConnections = int(n)
	ht, err := time.ParseDuration(get("limits.handshake_timeout"))
	if err != nil || ht <= 0 {
		return config{}, bad("limits.handshake_timeout", "must be a positive duration (got %q)", get("limits.handshake_timeout"))
	}
	cfg.HandshakeTimeout = ht
	n, msg = parseInt(get("limits.vhost_max_connections"), 0, 1<<31-1)
	if msg != "" {
		return config{}, bad("limits.vhost_max_connections", "%s", msg)
	}
	cfg.VHostLimits.MaxConnections = int(n)
	n, msg = parseInt(get("limits.vhost_max_queues"), 0, 1<<31-1)
	if msg != "" {
		return config{}, bad("limits.vhost_max_queues", "%s", msg)
	}
	cfg.VHostLimits.MaxQueues = int(n)
	wm, err := strconv.ParseFloat(get("limits.memory_high_watermark"), 64)
	if err != nil || wm < 0 {
		return config{}, bad("limits.memory_high_watermark", "must be a fraction of RAM or a number of bytes (got %q)", get("limits.memory_high_watermark"))
	}
	if wm <= 1 {
		wm *= float64(amqp.TotalMemory()) // relative, as RabbitMQ's vm_memory_high_watermark.relative
	}
	cfg.MemoryHighWatermark = uint64(wm)
	n, msg = parseInt(get("limits.disk_free_limit"), 0, 1<<62)
	if msg != "" {
		return config{}, bad("limits.disk_free_limit", "%s", msg)
	}
	cfg.DiskFreeLimit = uint64(n)

	level, ok := logLevels[strings.ToLower(get("log.level"))]
	if !ok {
		return config{}, bad("log.level", "must be debug, info, warn or error (got %q)", get("log.level"))
	}

	if cfg.Vhosts, err = decodeVhosts(lists.vhosts, lists.vhostsFrom); err != nil {
		return config{}, err
	}
	if cfg.Users, err = decodeUsers(lists.users, lists.usersFrom, cfg.Vhosts); err != nil {
		return config{}, err
	}
	return config{Broker: cfg, Level: level, HTTPListen: get("http.listen"), PrometheusListen: get("prometheus.listen"),
		PprofListen: get("pprof.listen"), DefinitionsFile: get("definitions.import_file")}, nil
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// checkListen reports what is wrong with a listen address, or "".
func checkListen(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf(`must be host:port, e.g. ":5672" (got %q)`, addr)
	}
	// Numeric only: a service name would depend on the host's /etc/services.
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Sprintf("port must be a number 0..65535 (got %q)", addr)
	}
	return ""
}

// parseInt parses a whole number in [lo, hi], or says what is wrong with it.
func parseInt(s string, lo, hi int64) (int64, string) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Sprintf("invalid integer %q", s)
	}
	if n < lo || n > hi {
		return 0, fmt.Sprintf("must be between %d and %d (got %d)", lo, hi, n)
	}
	return n, ""
}

// parseHeartbeat accepts a Go duration or, as RabbitMQ's heartbeat setting is
// written, a bare number of seconds.
func parseHeartbeat(s string) (time.Duration, string) {
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, ierr := strconv.ParseInt(s, 10, 64)
		if ierr != nil || secs > int64(maxHeartbeat/time.Second) {
			return 0, fmt.Sprintf("invalid duration %q", s)
		}
		d = time.Duration(secs) * time.Second
	}
	switch {
	case d < 0:
		return 0, fmt.Sprintf("must not be negative (got %s)", s)
	case d%time.Second != 0:
		// connection.tune carries whole seconds.
		return 0, fmt.Sprintf("must be whole seconds (got %s)", s)
	case d > maxHeartbeat:
		return 0, fmt.Sprintf("must be at most 65535s (got %s)", s)
	}
	return d, ""
}

// yamlLists holds the list-valued keys of one file as YAML nodes, which keep
// map keys' case, with where they were set.
type yamlLists struct {
	vhosts, users         *yaml.Node
	vhostsFrom, usersFrom string
}

// readYAML parses a configuration file and rejects keys Warren does not know,
// which viper would silently ignore; a typo would otherwise leave a default in
// force. It records in from where each scalar setting was set.
func readYAML(data []byte, name string, from map[string]string) (*yamlLists, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config: %s: %w", name, err)
	}
	lists := &yamlLists{}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return lists, nil // an empty file changes nothing
	}
	at := func(n *yaml.Node) string { return fmt.Sprintf("in %s line %d", name, n.Line) }
	root := doc.Content[0]
	if isNull(root) {
		return lists, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &configError{key: "(top level)", msg: "must be a mapping of keys", from: at(root)}
	}
	sections := map[string][]string{}
	for _, s := range settings {
		section, leaf, _ := strings.Cut(s.key, ".")
		if sub, _, nested := strings.Cut(leaf, "."); nested {
			leaf = sub // amqp.tls.listen: amqp has tls
		}
		if !slices.Contains(sections[section], leaf) {
			sections[section] = append(sections[section], leaf)
		}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, val := root.Content[i], root.Content[i+1]
		switch key := k.Value; key {
		case "vhosts":
			lists.vhosts, lists.vhostsFrom = val, at(val)
		case "users":
			lists.users, lists.usersFrom = val, at(val)
		default:
			leaves, ok := sections[key]
			if !ok {
				return nil, &configError{key: key, msg: "unknown key (known: " +
					strings.Join(slices.Sorted(mapKeys(sections, "vhosts", "users")), ", ") + ")", from: at(k)}
			}
			if isNull(val) {
				continue // an empty section changes nothing
			}
			if err := readSection(key, leaves, val, at, from); err != nil {
				return nil, err
			}
		}
	}
	return lists, nil
}

// readSection checks the keys of one section's mapping, descending into
// nested sections such as amqp.tls.
func readSection(key string, leaves []string, val *yaml.Node, at func(*yaml.Node) string, from map[string]string) error {
	if val.Kind != yaml.MappingNode {
		return &configError{key: key, msg: "must be a mapping of keys", from: at(val)}
	}
	for j := 0; j+1 < len(val.Content); j += 2 {
		lk, lv := val.Content[j], val.Content[j+1]
		full := key + "." + lk.Value
		if !slices.Contains(leaves, lk.Value) {
			return &configError{key: full, msg: "unknown key (" + key + " has " +
				strings.Join(leaves, ", ") + ")", from: at(lk)}
		}
		if sub := subKeys(full); sub != nil {
			if isNull(lv) {
				continue // an empty section changes nothing
			}
			if err := readSection(full, sub, lv, at, from); err != nil {
				return err
			}
			continue
		}
		// viper would treat a null as unset and quietly keep the default.
		if lv.Kind != yaml.ScalarNode || isNull(lv) {
			return &configError{key: full, msg: "must be a single value", from: at(lv)}
		}
		if from != nil {
			from[full] = at(lv)
		}
	}
	return nil
}

// subKeys lists the keys directly under a nested section such as amqp.tls,
// or nil if prefix is a setting rather than a section.
func subKeys(prefix string) []string {
	var leaves []string
	for _, s := range settings {
		rest, ok := strings.CutPrefix(s.key, prefix+".")
		if !ok {
			continue
		}
		leaf, _, _ := strings.Cut(rest, ".")
		if !slices.Contains(leaves, leaf) {
			leaves = append(leaves, leaf)
		}
	}
	return leaves
}

func mapKeys(m map[string][]string, extra ...string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
		for _, k := range extra {
			if !yield(k) {
				return
			}
		}
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// scalar returns a scalar node's text, or false if n is not a single value.
func scalar(n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return "", false
	}
	return n.Value, true
}

func decodeVhosts(n *yaml.Node, from string) ([]string, error) {
	if n == nil || isNull(n) {
		return []string{}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, &configError{key: "vhosts", msg: "must be a list of names", from: from}
	}
	vhosts := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		key := fmt.Sprintf("vhosts[%d]", i)
		name, ok := scalar(item)
		if !ok || name == "" {
			return nil, &configError{key: key, msg: "must be a non-empty name", from: fmt.Sprintf("line %d", item.Line)}
		}
		if slices.Contains(vhosts, name) {
			return nil, &configError{key: key, msg: fmt.Sprintf("duplicate vhost %q", name), from: fmt.Sprintf("line %d", item.Line)}
		}
		vhosts = append(vhosts, name)
	}
	return vhosts, nil
}

var (
	userFields = []string{"name", "password", "password_hash", "tags", "permissions"}
	permFields = []string{"configure", "write", "read"}
)

func decodeUsers(n *yaml.Node, from string, vhosts []string) ([]amqp.User, error) {
	if n == nil || isNull(n) {
		return []amqp.User{}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, &configError{key: "users", msg: "must be a list of users", from: from}
	}
	users := make([]amqp.User, 0, len(n.Content))
	for i, item := range n.Content {
		u, err := decodeUser(fmt.Sprintf("users[%d]", i), item, vhosts)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(users, func(o amqp.User) bool { return o.Name == u.Name }) {
			return nil, &configError{key: fmt.Sprintf("users[%d].name", i), msg: fmt.Sprintf("duplicate user %q", u.Name),
				from: fmt.Sprintf("line %d", item.Line)}
		}
		users = append(users, u)
	}
	return users, nil
}

func decodeUser(key string, n *yaml.Node, vhosts []string) (amqp.User, error) {
	var u amqp.User
	bad := func(k string, at *yaml.Node, format string, args ...any) error {
		return &configError{key: k, msg: fmt.Sprintf(format, args...), from: fmt.Sprintf("line %d", at.Line)}
	}
	if n.Kind != yaml.MappingNode {
		return u, bad(key, n, "must be a mapping with name, password or password_hash, tags, permissions")
	}
	seen := map[string]bool{}
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, val := n.Content[j], n.Content[j+1]
		field := key + "." + k.Value
		if !slices.Contains(userFields, k.Value) {
			return u, bad(field, k, "unknown key (a user has %s)", strings.Join(userFields, ", "))
		}
		seen[k.Value] = true
		switch k.Value {
		case "name", "password", "password_hash":
			s, ok := scalar(val)
			if !ok {
				return u, bad(field, val, "must be a single value")
			}
			switch k.Value {
			case "name":
				u.Name = s
			case "password":
				u.Password = s
			case "password_hash":
				u.PasswordHash = s
			}
		case "tags":
			if val.Kind != yaml.SequenceNode {
				return u, bad(field, val, "must be a list")
			}
			u.Tags = []string{}
			for _, t := range val.Content {
				s, ok := scalar(t)
				if !ok || s == "" {
					return u, bad(field, t, "must be a list of non-empty tags")
				}
				u.Tags = append(u.Tags, s)
			}
		case "permissions":
			perms, err := decodePermissions(field, val, vhosts)
			if err != nil {
				return u, err
			}
			u.Permissions = perms
		}
	}
	if u.Name == "" {
		return u, bad(key+".name", n, "a user needs a name")
	}
	// Say which user: the index alone is hard to match to a long file.
	key = fmt.Sprintf("%s (%s)", key, u.Name)
	switch {
	case u.Password != "" && u.PasswordHash != "":
		return u, bad(key+".password", n, "set password or password_hash, not both")
	case u.Password == "" && u.PasswordHash == "":
		return u, bad(key+".password", n, "set password or password_hash")
	case u.PasswordHash != "":
		raw, err := base64.StdEncoding.DecodeString(u.PasswordHash)
		if err != nil || len(raw) != rabbitHashLen {
			return u, bad(key+".password_hash", n,
				"must be RabbitMQ's base64 salted SHA-256 (%d bytes once decoded)", rabbitHashLen)
		}
	}
	if !seen["tags"] {
		u.Tags = []string{}
	}
	if !seen["permissions"] {
		u.Permissions = map[string]amqp.Permission{}
	}
	return u, nil
}

func decodePermissions(key string, n *yaml.Node, vhosts []string) (map[string]amqp.Permission, error) {
	bad := func(k string, at *yaml.Node, format string, args ...any) error {
		return &configError{key: k, msg: fmt.Sprintf(format, args...), from: fmt.Sprintf("line %d", at.Line)}
	}
	if n.Kind != yaml.MappingNode {
		return nil, bad(key, n, `must map vhost names to {configure, write, read}`)
	}
	perms := make(map[string]amqp.Permission, len(n.Content)/2)
	for j := 0; j+1 < len(n.Content); j += 2 {
		vk, pv := n.Content[j], n.Content[j+1]
		vkey := fmt.Sprintf("%s[%q]", key, vk.Value)
		if !slices.Contains(vhosts, vk.Value) {
			return nil, bad(vkey, vk, "vhost %q is not in vhosts", vk.Value)
		}
		if pv.Kind != yaml.MappingNode {
			return nil, bad(vkey, pv, "must be {configure: ..., write: ..., read: ...}")
		}
		got := map[string]string{}
		for i := 0; i+1 < len(pv.Content); i += 2 {
			pk, pat := pv.Content[i], pv.Content[i+1]
			field := vkey + "." + pk.Value
			if !slices.Contains(permFields, pk.Value) {
				return nil, bad(field, pk, "unknown key (a permission has configure, write, read)")
			}
			// A null pattern would be easy to mistake for "everything".
			s, ok := scalar(pat)
			if !ok {
				return nil, bad(field, pat, `must be a regular expression; "" grants nothing`)
			}
			if _, err := regexp.Compile(s); err != nil {
				return nil, bad(field, pat, "invalid regular expression %q: %v", s, unwrapRegexp(err))
			}
			got[pk.Value] = s
		}
		// All three are required, as in rabbitmqctl set_permissions: a missing one
		// silently granting nothing would be a confusing way to lock a user out.
		for _, f := range permFields {
			if _, ok := got[f]; !ok {
				return nil, bad(vkey+"."+f, pv, `missing; use "" to grant nothing`)
			}
		}
		perms[vk.Value] = amqp.Permission{Configure: got["configure"], Write: got["write"], Read: got["read"]}
	}
	return perms, nil
}

// unwrapRegexp drops regexp's "error parsing regexp: " prefix, which repeats
// what the message already says.
func unwrapRegexp(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}
