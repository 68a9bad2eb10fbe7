package configs

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/warrenmq/warren/plugins"
)

// RabbitMQ's configuration files (rabbitmq.conf and conf.d/*.conf) are in
// its "sysctl" format: key = value lines, # comments. Each key people use
// with a Warren equivalent is translated to that Warren key; the rest are
// accepted with a warning, since a config written for RabbitMQ should start
// Warren, not stop it.

// isRabbitConf says whether a --config file is a rabbitmq.conf: by its
// extension, else by its first line that is not blank or a comment
// (key = value, where YAML would have key: value).
func isRabbitConf(path string, data []byte) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".conf":
		return true
	case ".yaml", ".yml":
		return false
	}
	for l := range strings.Lines(string(data)) {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, _, ok := strings.Cut(l, "=")
		return ok && !strings.Contains(k, ":") && strings.TrimSpace(k) != ""
	}
	return false
}

// readRabbitFile reads RabbitMQ's main file. As RabbitMQ did before 3.7,
// RABBITMQ_CONFIG_FILE may leave out the .conf extension.
func readRabbitFile(path string) (string, []byte, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) && filepath.Ext(path) == "" {
		if d, err2 := os.ReadFile(path + ".conf"); err2 == nil {
			return path + ".conf", d, nil
		}
	}
	return path, data, err
}

// confDFiles lists the *.conf files of a conf.d directory (or matching a
// glob, as RABBITMQ_CONFIG_FILES may be) in the order RabbitMQ reads them:
// alphabetical.
func confDFiles(dir string) ([]string, error) {
	pattern := dir
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		pattern = filepath.Join(dir, "*.conf")
	}
	files, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("RABBITMQ_CONFIG_FILES %s: %w", dir, err)
	}
	slices.Sort(files)
	return files, nil
}

// rabbitValue is one key = value line.
type rabbitValue struct {
	val  string
	file string
	line int
}

func (v rabbitValue) at() string { return fmt.Sprintf("in %s line %d", v.file, v.line) }

// rabbitConf gathers RabbitMQ's files and variables, later ones overriding
// earlier ones key by key, and translates them once all are read (the
// default user or a listener list is made of several keys).
type rabbitConf struct {
	// keys holds every key = value read, by key.
	keys map[string]rabbitValue
	// order is the keys in the order first read, for listener order.
	order []string
	// read is the main file that was read, if any.
	read     string
	warnings []string
}

func newRabbitConf() *rabbitConf {
	return &rabbitConf{keys: map[string]rabbitValue{}}
}

// parse reads one file in the sysctl format.
func (rc *rabbitConf) parse(file string, data []byte) error {
	if rc.read == "" {
		rc.read = file
	}
	n := 0
	for l := range bytes.Lines(data) {
		n++
		s := strings.TrimSpace(string(l))
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return &Error{Key: firstWord(s), Msg: "expected key = value", From: fmt.Sprintf("in %s line %d", file, n)}
		}
		// As cuttlefish: a # starts a comment anywhere, unless the value is
		// quoted.
		v = strings.TrimSpace(v)
		if q, ok := unquote(v); ok {
			v = q
		} else if i := strings.Index(v, "#"); i >= 0 {
			v = strings.TrimSpace(v[:i])
		}
		if _, seen := rc.keys[k]; !seen {
			rc.order = append(rc.order, k)
		}
		rc.keys[k] = rabbitValue{val: v, file: file, line: n}
	}
	return nil
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return s
}

// unquote reads a value in single or double quotes, as cuttlefish allows
// for values with # or leading spaces.
func unquote(v string) (string, bool) {
	if len(v) >= 2 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1], true
	}
	return "", false
}

// env adds RabbitMQ's variables for the default user, which override its
// files, as in RabbitMQ.
func (rc *rabbitConf) env(lookup func(string) string) {
	for _, e := range []struct{ name, key string }{
		{"RABBITMQ_DEFAULT_USER", "default_user"},
		{"RABBITMQ_DEFAULT_PASS", "default_pass"},
		{"RABBITMQ_DEFAULT_VHOST", "default_vhost"},
	} {
		if v := lookup(e.name); v != "" {
			if _, seen := rc.keys[e.key]; !seen {
				rc.order = append(rc.order, e.key)
			}
			rc.keys[e.key] = rabbitValue{val: v, file: e.name}
		}
	}
}

// fromOf says where a RabbitMQ key was set, naming the key, since errors
// name the Warren setting it became.
func (rc *rabbitConf) fromOf(key string) string {
	v := rc.keys[key]
	if v.line == 0 {
		return "set by " + v.file
	}
	return "set by " + key + " " + v.at()
}

// simple maps RabbitMQ keys onto Warren keys whose syntax accepts
// RabbitMQ's value as it is, or after conv.
var simple = []struct {
	rabbit, warren string
	conv           func(string) (string, error)
}{
	{"ssl_options.certfile", "amqp.tls.cert_file", nil},
	{"ssl_options.keyfile", "amqp.tls.key_file", nil},
	{"ssl_options.cacertfile", "amqp.tls.ca_file", nil},
	{"ssl_options.verify", "amqp.tls.verify_peer", convVerify},
	{"ssl_options.fail_if_no_peer_cert", "amqp.tls.fail_if_no_peer_cert", convBool},
	{"load_definitions", "definitions.import_file", nil},
	{"management.load_definitions", "definitions.import_file", nil},
	{"definitions.local.path", "definitions.import_file", nil},
	{"frame_max", "limits.frame_max", nil},
	{"channel_max", "limits.channel_max", convChannelMax},
	{"heartbeat", "limits.heartbeat", convInt},
	{"max_message_size", "limits.max_message_size", nil},
	{"consumer_timeout", "limits.consumer_timeout", convMillis},
	{"handshake_timeout", "limits.handshake_timeout", convMillis},
	{"connection_max", "limits.max_connections", convInfinity},
	{"log.console.level", "log.level", convLogLevel},
	{"log.default.level", "log.level", convLogLevel},
}

// ignored are keys Warren knows and accepts without acting on them: they
// describe what Warren does anyway, or tune Erlang internals it has not. A
// key ending in a dot covers every key under it. The value, when not "",
// is the one value accepted silently; any other gets a warning (log.file =
// /path: Warren logs to stderr only).
var ignored = map[string]string{
	"log.console": "true",
	"log.file":    "false",
	"log.file.":   "",
	"management_agent.disable_metrics_collector": "",
	"ssl_options.depth":                          "",
	"ssl_options.versions.":                      "",
	"ssl_options.honor_cipher_order":             "",
	"ssl_options.honor_ecc_order":                "",
	"ssl_options.ciphers.":                       "",
	"cluster_name":                               "",
	"vm_memory_high_watermark_paging_ratio":      "",
	"vm_memory_calculation_strategy":             "",
	"num_acceptors.tcp":                          "",
	"num_acceptors.ssl":                          "",
	"tcp_listen_options.":                        "",
	"collect_statistics_interval":                "",
	"management.rates_mode":                      "",
}

func convInt(s string) (string, error) {
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return "", fmt.Errorf("must be an integer (got %q)", s)
	}
	return s, nil
}

func convBool(s string) (string, error) {
	if s != "true" && s != "false" {
		return "", fmt.Errorf("must be true or false (got %q)", s)
	}
	return s, nil
}

func convVerify(s string) (string, error) {
	switch s {
	case "verify_peer":
		return "true", nil
	case "verify_none":
		return "false", nil
	}
	return "", fmt.Errorf("must be verify_peer or verify_none (got %q)", s)
}

// convChannelMax: RabbitMQ's 0 means no limit, the most the protocol allows.
func convChannelMax(s string) (string, error) {
	if s == "0" {
		return "65535", nil
	}
	return convInt(s)
}

// convMillis turns RabbitMQ's milliseconds into a duration.
func convMillis(s string) (string, error) {
	if _, err := convInt(s); err != nil {
		return "", err
	}
	return s + "ms", nil
}

func convInfinity(s string) (string, error) {
	if s == "infinity" {
		return "0", nil
	}
	return convInt(s)
}

// convLogLevel maps RabbitMQ's levels onto Warren's four.
func convLogLevel(s string) (string, error) {
	switch s {
	case "debug", "info", "error":
		return s, nil
	case "notice":
		return "info", nil
	case "warning":
		return "warn", nil
	case "critical", "alert", "emergency", "none":
		return "error", nil
	}
	return "", fmt.Errorf("must be debug, info, notice, warning, error, critical or none (got %q)", s)
}

// layer translates what was read into Warren's keys. A bad value is an
// error naming the RabbitMQ key and its line; an unknown key a warning.
func (rc *rabbitConf) layer() (layer, error) {
	l := layer{}
	bad := func(key, format string, args ...any) error {
		v := rc.keys[key]
		from := "set by " + v.file
		if v.line > 0 {
			from = v.at()
		}
		return &Error{Key: key, Msg: fmt.Sprintf(format, args...), From: from}
	}
	done := map[string]bool{}
	for _, m := range simple {
		v, ok := rc.keys[m.rabbit]
		if !ok {
			continue
		}
		done[m.rabbit] = true
		val := v.val
		if m.conv != nil {
			var err error
			if val, err = m.conv(val); err != nil {
				return nil, bad(m.rabbit, "%v", err)
			}
		}
		l[m.warren] = entry{text: val, from: rc.fromOf(m.rabbit)}
	}

	// Listeners: listeners.tcp.NAME = PORT or IP:PORT, several allowed;
	// listeners.tcp = none turns them off.
	for _, proto := range []struct{ prefix, warren string }{{"listeners.tcp", "amqp.listen"}, {"listeners.ssl", "amqp.tls.listen"}} {
		var list []string
		set, from := false, ""
		for _, k := range rc.order {
			name, ok := strings.CutPrefix(k, proto.prefix+".")
			if !ok || name == "" {
				continue
			}
			done[k] = true
			addr, err := rabbitListener(rc.keys[k].val)
			if err != nil {
				return nil, bad(k, "%v", err)
			}
			list, set = append(list, addr), true
			if from == "" {
				from = rc.fromOf(k)
			}
		}
		if v, ok := rc.keys[proto.prefix]; ok {
			done[proto.prefix] = true
			if v.val != "none" {
				return nil, bad(proto.prefix, "must be none, or set listeners as %s.NAME = PORT (got %q)", proto.prefix, v.val)
			}
			list, set, from = nil, true, rc.fromOf(proto.prefix)
		}
		if set {
			l[proto.warren] = entry{list: list, isList: true, from: from}
		}
	}

	// HTTP listeners: port and ip in separate keys.
	for _, h := range []struct {
		prefixes []string
		warren   string
		port     string
	}{
		{[]string{"management.tcp", "management.listener"}, "http.listen", "15672"},
		{[]string{"prometheus.tcp"}, "prometheus.listen", "15692"},
	} {
		ip, port, from := "", h.port, ""
		for _, p := range h.prefixes {
			if v, ok := rc.keys[p+".port"]; ok {
				done[p+".port"] = true
				n, err := strconv.ParseUint(v.val, 10, 16)
				if err != nil {
					return nil, bad(p+".port", "must be a port number 0..65535 (got %q)", v.val)
				}
				port, from = strconv.FormatUint(n, 10), rc.fromOf(p+".port")
			}
			if v, ok := rc.keys[p+".ip"]; ok {
				done[p+".ip"] = true
				if net.ParseIP(v.val) == nil {
					return nil, bad(p+".ip", "must be an IP address (got %q)", v.val)
				}
				ip = v.val
				if from == "" {
					from = rc.fromOf(p + ".ip")
				}
			}
		}
		if from != "" {
			l[h.warren] = entry{text: net.JoinHostPort(ip, port), from: from}
		}
	}

	// Resource limits: relative or absolute, absolute winning when both
	// are set, as in RabbitMQ.
	for _, r := range []struct{ prefix, warren string }{
		{"vm_memory_high_watermark", "limits.memory_high_watermark"},
		{"disk_free_limit", "limits.disk_free_limit"},
	} {
		if v, ok := rc.keys[r.prefix+".relative"]; ok {
			done[r.prefix+".relative"] = true
			if f, err := strconv.ParseFloat(v.val, 64); err != nil || f < 0 {
				return nil, bad(r.prefix+".relative", "must be a non-negative number (got %q)", v.val)
			}
			l[r.warren] = entry{text: v.val, kind: amountRelative, from: rc.fromOf(r.prefix + ".relative")}
		}
		if v, ok := rc.keys[r.prefix+".absolute"]; ok {
			done[r.prefix+".absolute"] = true
			n, msg := parseBytes(v.val, 0, 1<<62)
			if msg != "" {
				return nil, bad(r.prefix+".absolute", "must be bytes, with an optional unit such as 1GB or 512MiB (got %q)", v.val)
			}
			l[r.warren] = entry{text: strconv.FormatInt(n, 10), kind: amountAbsolute, from: rc.fromOf(r.prefix + ".absolute")}
		}
	}

	// loopback_users.NAME = true|false; loopback_users = none. Once any is
	// set, the list is the names set to true, as in RabbitMQ.
	{
		var names []string
		set, from := false, ""
		for _, k := range rc.order {
			name, ok := strings.CutPrefix(k, "loopback_users.")
			if !ok || name == "" {
				continue
			}
			done[k] = true
			b, err := convBool(rc.keys[k].val)
			if err != nil {
				return nil, bad(k, "%v", err)
			}
			if b == "true" {
				names = append(names, name)
			}
			set = true
			if from == "" {
				from = rc.fromOf(k)
			}
		}
		if v, ok := rc.keys["loopback_users"]; ok {
			done["loopback_users"] = true
			if v.val != "none" {
				return nil, bad("loopback_users", "must be none, or set loopback_users.NAME = true|false (got %q)", v.val)
			}
			names, set, from = nil, true, rc.fromOf("loopback_users")
		}
		if set {
			l["loopback_users"] = entry{list: append([]string{}, names...), isList: true, from: from}
		}
	}

	if err := rc.defaultUser(l, done, bad); err != nil {
		return nil, err
	}

	for _, k := range rc.order {
		if done[k] {
			continue
		}
		v := rc.keys[k]
		switch {
		case strings.HasPrefix(k, "cluster_formation."):
			rc.warnings = append(rc.warnings, fmt.Sprintf("%s (%s): clustering does not exist in Warren yet; running as a single node", k, v.at()))
		default:
			switch known, silent := isIgnored(k, v.val); {
			case silent:
			case known:
				rc.warnings = append(rc.warnings, fmt.Sprintf("%s = %s (%s): not supported by Warren, ignored", k, v.val, v.at()))
			default:
				rc.warnings = append(rc.warnings, fmt.Sprintf("%s (%s): unknown setting, ignored", k, v.at()))
			}
		}
	}
	return l, nil
}

// isIgnored says whether key is one Warren knows of without acting on it,
// and whether key = val is accepted silently.
func isIgnored(key, val string) (known, silent bool) {
	for k, want := range ignored {
		if strings.HasSuffix(k, ".") && strings.HasPrefix(key, k) || key == k {
			return true, want == "" || want == val
		}
	}
	return false, false
}

// rabbitListener reads a listener value: a port (every interface) or
// IP:PORT, where the IP may be IPv6 without brackets (::1:5672) as
// cuttlefish writes it, or with them.
func rabbitListener(s string) (string, error) {
	if n, err := strconv.ParseUint(s, 10, 16); err == nil {
		return ":" + strconv.FormatUint(n, 10), nil
	}
	i := strings.LastIndex(s, ":")
	if i <= 0 {
		return "", fmt.Errorf("must be a port or IP:PORT (got %q)", s)
	}
	ip, port := strings.Trim(s[:i], "[]"), s[i+1:]
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || net.ParseIP(ip) == nil {
		return "", fmt.Errorf("must be a port or IP:PORT (got %q)", s)
	}
	return net.JoinHostPort(ip, strconv.FormatUint(n, 10)), nil
}

// defaultUser builds the users and vhosts lists from default_user,
// default_pass, default_vhost, default_user_tags.* and
// default_permissions.*. As in RabbitMQ, the default user replaces guest
// (it is the one user made on a fresh node), is an administrator unless
// default_user_tags says otherwise, and may do everything on the default
// vhost, which replaces "/".
func (rc *rabbitConf) defaultUser(l layer, done map[string]bool, bad func(string, string, ...any) error) error {
	u := userAt{User: User{Name: "guest", Password: "guest", Tags: []string{"administrator"}}, key: "default_user",
		permKey: map[string]string{}, permAt: map[string]string{}}
	vhost := "/"
	perm := Permission{Configure: ".*", Write: ".*", Read: ".*"}
	set, from := false, ""
	mark := func(k string) {
		done[k], set = true, true
		if from == "" {
			from = rc.fromOf(k)
		}
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"default_user", &u.Name}, {"default_pass", &u.Password}, {"default_vhost", &vhost}} {
		if v, ok := rc.keys[f.key]; ok {
			if v.val == "" {
				return bad(f.key, "must not be empty")
			}
			*f.dst = v.val
			mark(f.key)
		}
	}
	var tags []string
	tagsSet := false
	for _, k := range rc.order {
		tag, ok := strings.CutPrefix(k, "default_user_tags.")
		if !ok || tag == "" {
			continue
		}
		b, err := convBool(rc.keys[k].val)
		if err != nil {
			return bad(k, "%v", err)
		}
		if b == "true" {
			tags = append(tags, tag)
		}
		tagsSet = true
		mark(k)
	}
	if tagsSet {
		u.Tags = append([]string{}, tags...)
	}
	for _, p := range []struct {
		key string
		dst *string
	}{{"default_permissions.configure", &perm.Configure}, {"default_permissions.write", &perm.Write}, {"default_permissions.read", &perm.Read}} {
		if v, ok := rc.keys[p.key]; ok {
			if _, err := regexp.Compile(v.val); err != nil {
				return bad(p.key, "invalid regular expression %q: %v", v.val, unwrapRegexp(err))
			}
			*p.dst = v.val
			mark(p.key)
		}
	}
	if !set {
		return nil
	}
	u.Permissions = map[string]Permission{vhost: perm}
	u.permKey[vhost], u.permAt[vhost] = "default_permissions", from
	l["users"] = entry{users: []userAt{u}, isList: true, from: from}
	l["vhosts"] = entry{list: []string{vhost}, isList: true, from: from}
	return nil
}

// parseEnabledPlugins reads RabbitMQ's enabled_plugins file: an Erlang list
// of atoms, such as [rabbitmq_management,rabbitmq_prometheus].
func parseEnabledPlugins(data []byte) ([]string, error) {
	var b strings.Builder
	// Drop Erlang comments (% to the end of the line).
	for l := range strings.Lines(string(data)) {
		if i := strings.Index(l, "%"); i >= 0 {
			l = l[:i]
		}
		b.WriteString(l)
	}
	s := strings.TrimSpace(b.String())
	s, ok := strings.CutSuffix(s, ".")
	s = strings.TrimSpace(s)
	if !ok || !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		return nil, fmt.Errorf("must be an Erlang list of plugin names ending in a dot, e.g. [rabbitmq_management].")
	}
	s = strings.TrimSpace(s[1 : len(s)-1])
	plugins := []string{}
	if s == "" {
		return plugins, nil
	}
	for _, p := range strings.Split(s, ",") {
		p = strings.Trim(strings.TrimSpace(p), "'")
		if p == "" || strings.ContainsAny(p, " \t\n[]{}\"") {
			return nil, fmt.Errorf("must be an Erlang list of plugin names (got %q)", p)
		}
		plugins = append(plugins, p)
	}
	return plugins, nil
}

// pluginNotes warns of plugins Warren does not have built in.
func pluginNotes(names []string) []string {
	var notes []string
	for _, p := range names {
		if _, ok := plugins.Lookup(p); !ok {
			notes = append(notes, fmt.Sprintf("enabled_plugins: plugin %s is not available in Warren, ignored", p))
		}
	}
	return notes
}
