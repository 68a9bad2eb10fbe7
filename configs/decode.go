package configs

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

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
)

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// decode checks every setting of the merged layers and builds the typed
// configuration. Settings are checked in the order of warren.yaml.
func decode(l layer) (*Config, error) {
	cfg := &Config{}
	bad := func(key, format string, args ...any) error {
		return &Error{Key: key, Msg: fmt.Sprintf(format, args...), From: l[key].from}
	}
	get := func(key string) string { return strings.TrimSpace(l[key].text) }
	// addrs reads a listener setting: one address from Warren's sources,
	// any number from rabbitmq.conf; "" (Warren's) turns an optional one off.
	addrs := func(key string, optional bool) ([]string, error) {
		e := l[key]
		list := e.list
		if !e.isList {
			list = []string{strings.TrimSpace(e.text)}
			if optional && list[0] == "" {
				list = nil
			}
		}
		for _, a := range list {
			if msg := checkListen(a); msg != "" {
				return nil, bad(key, "%s", msg)
			}
		}
		return list, nil
	}
	var err error
	if cfg.Listen, err = addrs("amqp.listen", false); err != nil {
		return nil, err
	}
	if cfg.TLS.Listen, err = addrs("amqp.tls.listen", true); err != nil {
		return nil, err
	}
	cfg.TLS.CertFile = get("amqp.tls.cert_file")
	cfg.TLS.KeyFile = get("amqp.tls.key_file")
	cfg.TLS.CAFile = get("amqp.tls.ca_file")
	for _, b := range []struct {
		key string
		dst *bool
	}{{"amqp.tls.verify_peer", &cfg.TLS.VerifyPeer}, {"amqp.tls.fail_if_no_peer_cert", &cfg.TLS.FailIfNoPeerCert}} {
		val, err := strconv.ParseBool(get(b.key))
		if err != nil {
			return nil, bad(b.key, "must be true or false (got %q)", get(b.key))
		}
		*b.dst = val
	}
	if len(cfg.TLS.Listen) > 0 {
		for _, key := range []string{"amqp.tls.cert_file", "amqp.tls.key_file"} {
			if get(key) == "" {
				return nil, bad(key, "required when amqp.tls.listen is set")
			}
		}
		if cfg.TLS.VerifyPeer && cfg.TLS.CAFile == "" {
			return nil, bad("amqp.tls.ca_file", "required when amqp.tls.verify_peer is true")
		}
	}
	if cfg.TLS.FailIfNoPeerCert && !cfg.TLS.VerifyPeer {
		return nil, bad("amqp.tls.fail_if_no_peer_cert", "needs amqp.tls.verify_peer: true")
	}
	cfg.DataDir = get("storage.dir")
	budget, msg := parseBytes(get("storage.memory_budget"), 0, 1<<62)
	if msg != "" {
		return nil, bad("storage.memory_budget", "%s", msg)
	}
	cfg.QueueMemoryBudget = budget
	if cfg.DataDir == "" {
		return nil, bad("storage.dir", "must not be empty")
	}
	// An empty address turns the management API, the metrics or the
	// profiler off.
	for _, h := range []struct {
		key string
		dst *string
	}{{"http.listen", &cfg.HTTPListen}, {"prometheus.listen", &cfg.PrometheusListen}, {"pprof.listen", &cfg.PprofListen}} {
		if *h.dst = get(h.key); *h.dst != "" {
			if msg := checkListen(*h.dst); msg != "" {
				return nil, bad(h.key, "%s", msg)
			}
		}
	}
	cfg.DefinitionsFile = get("definitions.import_file")

	n, msg := parseBytes(get("limits.frame_max"), frameMinSize, frameMaxSize)
	if msg != "" {
		return nil, bad("limits.frame_max", "%s", msg)
	}
	cfg.FrameMax = uint32(n)
	n, msg = parseInt(get("limits.channel_max"), 1, 65535)
	if msg != "" {
		return nil, bad("limits.channel_max", "%s", msg)
	}
	cfg.ChannelMax = uint16(n)
	if cfg.Heartbeat, msg = parseHeartbeat(get("limits.heartbeat")); msg != "" {
		return nil, bad("limits.heartbeat", "%s", msg)
	}
	n, msg = parseBytes(get("limits.max_message_size"), 1, maxMessageSize)
	if msg != "" {
		return nil, bad("limits.max_message_size", "%s", msg)
	}
	cfg.MaxMessageSize = uint64(n)
	ct, err := time.ParseDuration(get("limits.consumer_timeout"))
	if err != nil || ct < 0 {
		return nil, bad("limits.consumer_timeout", "invalid duration %q", get("limits.consumer_timeout"))
	}
	cfg.ConsumerTimeout = ct
	n, msg = parseInt(get("limits.max_connections"), 0, 1<<31-1)
	if msg != "" {
		return nil, bad("limits.max_connections", "%s", msg)
	}
	cfg.MaxConnections = int(n)
	ht, err := time.ParseDuration(get("limits.handshake_timeout"))
	if err != nil || ht <= 0 {
		return nil, bad("limits.handshake_timeout", "must be a positive duration (got %q)", get("limits.handshake_timeout"))
	}
	cfg.HandshakeTimeout = ht
	n, msg = parseInt(get("limits.vhost_max_connections"), 0, 1<<31-1)
	if msg != "" {
		return nil, bad("limits.vhost_max_connections", "%s", msg)
	}
	cfg.VhostMaxConnections = int(n)
	n, msg = parseInt(get("limits.vhost_max_queues"), 0, 1<<31-1)
	if msg != "" {
		return nil, bad("limits.vhost_max_queues", "%s", msg)
	}
	cfg.VhostMaxQueues = int(n)
	for _, a := range []struct {
		key string
		dst *Amount
		// fractionOK: a number up to 1 is a fraction of RAM.
		fractionOK bool
	}{{"limits.memory_high_watermark", &cfg.MemoryHighWatermark, true}, {"limits.disk_free_limit", &cfg.DiskFreeLimit, false}} {
		e := l[a.key]
		s := get(a.key)
		if e.kind == amountRelative || (a.fractionOK && e.kind == amountGuess) {
			if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && (e.kind == amountRelative || f <= 1) {
				*a.dst = Amount{OfRAM: f}
				continue
			}
			if e.kind == amountRelative {
				return nil, bad(a.key, "must be a non-negative number (got %q)", s)
			}
		}
		b, msg := parseBytes(s, 0, 1<<62)
		if msg != "" {
			if a.fractionOK {
				return nil, bad(a.key, "must be a fraction of RAM or a number of bytes (got %q)", s)
			}
			return nil, bad(a.key, "%s", msg)
		}
		*a.dst = Amount{Bytes: uint64(b)}
	}
	cfg.Identity = Identity{Product: get("identity.product"), Version: get("identity.version")}
	if cfg.Identity.Product == "" {
		return nil, bad("identity.product", "must not be empty")
	}
	if cfg.Identity.Version == "" {
		return nil, bad("identity.version", "must not be empty")
	}

	level, ok := logLevels[strings.ToLower(get("log.level"))]
	if !ok {
		return nil, bad("log.level", "must be debug, info, warn or error (got %q)", get("log.level"))
	}
	cfg.LogLevel = level
	if err := decodeCluster(cfg, get, bad); err != nil {
		return nil, err
	}

	cfg.Vhosts = append([]string{}, l["vhosts"].list...)
	cfg.LoopbackUsers = append([]string{}, l["loopback_users"].list...)
	cfg.Users = make([]User, 0, len(l["users"].users))
	for _, u := range l["users"].users {
		for v := range u.Permissions {
			if !contains(cfg.Vhosts, v) {
				return nil, &Error{Key: u.permKey[v], Msg: fmt.Sprintf("vhost %q is not in vhosts", v), From: u.permAt[v]}
			}
		}
		cfg.Users = append(cfg.Users, u.User)
	}
	return cfg, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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

// byteUnits are RabbitMQ's information units (its memory and disk limits):
// k, kiB, M, MiB, G, GiB are powers of 1024; kB, MB, GB powers of 1000.
// KB (cuttlefish's bytesize, as in frame_max) is 1024 too.
var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"kiB", 1 << 10}, {"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"kB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"TB", 1000 * 1000 * 1000 * 1000},
	{"KB", 1 << 10}, {"k", 1 << 10}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
}

// parseBytes parses a number of bytes in [lo, hi], with an optional unit
// such as 512MiB or 2GB, or says what is wrong with it.
func parseBytes(s string, lo, hi int64) (int64, string) {
	num, mult := s, int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok && rest != "" {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Sprintf("invalid integer %q", s)
	}
	if mult != 1 && n > (1<<62)/mult {
		return 0, fmt.Sprintf("too large (got %s)", s)
	}
	n *= mult
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
