package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warrenmq/warren/plugins"
)

// diagnosticsCommands are rabbitmq-diagnostics' commands.
func (t *rabbitTool) diagnosticsCommands() map[string]func() error {
	return map[string]func() error{
		"ping":                    t.ping,
		"check_running":           t.checkRunning,
		"check_port_connectivity": t.checkPortConnectivity,
		"check_local_alarms":      t.checkLocalAlarms,
		"check_virtual_hosts":     t.checkVirtualHosts,
		"status":                  t.status,
		"listeners":               t.listeners,
		"server_version":          t.serverVersion,
	}
}

// ping checks that the node answers and accepts the CLI's credentials.
func (t *rabbitTool) ping() error {
	if err := t.need(0, 0); err != nil {
		return err
	}
	_, err := t.connect()
	t.banner("Will ping %s. This only checks if the OS process is running and registered with epmd. Timeout: %d ms.", t.node, t.timeout.Milliseconds())
	if err != nil {
		return fail(exitUnavailable, "Failed to connect and authenticate to %s in %d ms", t.node, t.timeout.Milliseconds())
	}
	if t.json {
		fmt.Fprintln(t.out, `{"result":"ok"}`)
		return nil
	}
	t.say("Ping succeeded")
	return nil
}

func (t *rabbitTool) checkRunning() error {
	if err := t.need(0, 0); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	t.banner("Checking if RabbitMQ is running on node %s ...", t.node)
	// The management API answers once the broker has recovered its
	// definitions and messages and listens: that is "fully booted".
	t.say("RabbitMQ on node %s is fully booted and running", t.node)
	return nil
}

// listener is one entry of /api/overview's listeners.
type listener struct {
	Protocol  string `json:"protocol"`
	IPAddress string `json:"ip_address"`
	Port      int    `json:"port"`
}

// purposes are rabbitmq-diagnostics' labels for listener protocols.
var purposes = map[string]string{
	"amqp": "AMQP 0-9-1 and AMQP 1.0", "amqp/ssl": "AMQP 0-9-1 and AMQP 1.0 over TLS",
	"http": "HTTP API", "https": "HTTP API over TLS (HTTPS)",
	"http/prometheus": "Prometheus exporter API over HTTP", "https/prometheus": "Prometheus exporter API over TLS (HTTPS)",
	"clustering": "inter-node and CLI tool communication",
}

func (l listener) interfaceName() string {
	if strings.Contains(l.IPAddress, ":") {
		return "[" + l.IPAddress + "]"
	}
	return l.IPAddress
}

func (l listener) line() string {
	p := purposes[l.Protocol]
	if p == "" {
		p = l.Protocol
	}
	return fmt.Sprintf("Interface: %s, port: %d, protocol: %s, purpose: %s", l.interfaceName(), l.Port, l.Protocol, p)
}

func (l listener) jsonMap(node string) map[string]any {
	p := purposes[l.Protocol]
	if p == "" {
		p = l.Protocol
	}
	return map[string]any{"node": node, "protocol": l.Protocol, "interface": l.interfaceName(), "port": l.Port, "purpose": p}
}

// nodeListeners asks the node for its listeners.
func (t *rabbitTool) nodeListeners() ([]listener, error) {
	ov, err := t.connect()
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(ov["listeners"])
	var ls []listener
	_ = json.Unmarshal(b, &ls)
	return ls, nil
}

func (t *rabbitTool) listeners() error {
	if err := t.need(0, 0); err != nil {
		return err
	}
	ls, err := t.nodeListeners()
	if err != nil {
		return err
	}
	t.banner("Asking node %s to report its protocol listeners ...", t.node)
	if t.json {
		out := make([]map[string]any, len(ls))
		for i, l := range ls {
			out[i] = l.jsonMap(t.node)
		}
		b, _ := json.Marshal(map[string]any{"listeners": out, "node": t.node, "result": "ok"})
		fmt.Fprintln(t.out, string(b))
		return nil
	}
	for _, l := range ls {
		t.say("%s", l.line())
	}
	return nil
}

// checkPortConnectivity opens a TCP connection to every listener, at the
// host the CLI reaches the node by when the listener is on every address.
func (t *rabbitTool) checkPortConnectivity() error {
	if err := t.need(0, 0); err != nil {
		return err
	}
	ls, err := t.nodeListeners()
	if err != nil {
		return err
	}
	t.banner("Testing TCP connections to all active listeners on node %s ...", t.node)
	host := "127.0.0.1"
	if u, err := url.Parse(t.c.base); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	var ok []int
	var failed []listener
	for _, l := range ls {
		h := l.IPAddress
		if ip := net.ParseIP(h); ip == nil || ip.IsUnspecified() {
			h = host
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort(h, fmt.Sprint(l.Port)), min(t.timeout, 10*time.Second))
		if err != nil {
			failed = append(failed, l)
			continue
		}
		c.Close()
		ok = append(ok, l.Port)
	}
	if len(failed) > 0 {
		if t.json {
			fs := make([]map[string]any, len(failed))
			for i, l := range failed {
				fs[i] = l.jsonMap(t.node)
			}
			b, _ := json.Marshal(map[string]any{"result": "error", "node": t.node, "failures": fs})
			return &cliError{code: exitUnavailable, text: string(b), plain: true}
		}
		lines := []string{fmt.Sprintf("Connection to ports of the following listeners on node %s failed: ", t.node)}
		for _, l := range failed {
			lines = append(lines, l.line())
		}
		return fail(exitUnavailable, "%s", strings.Join(lines, "\n"))
	}
	slices.Sort(ok)
	ports := make([]string, len(ok))
	for i, p := range ok {
		ports[i] = fmt.Sprint(p)
	}
	if t.json {
		out := make([]map[string]any, len(ls))
		for i, l := range ls {
			out[i] = l.jsonMap(t.node)
		}
		b, _ := json.Marshal(map[string]any{"result": "ok", "node": t.node, "listeners": out})
		fmt.Fprintln(t.out, string(b))
		return nil
	}
	t.say("Successfully connected to ports %s on node %s.", strings.Join(ports, ", "), t.node)
	return nil
}

func (t *rabbitTool) checkLocalAlarms() error {
	if err := t.need(0, 0); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	t.banner("Asking node %s to report any local resource alarms ...", t.node)
	var res struct {
		Alarms []struct {
			Node     string `json:"node"`
			Resource string `json:"resource"`
		} `json:"alarms"`
	}
	err := t.get("/api/health/checks/local-alarms", &res)
	if err != nil && !isStatus(err, 503) {
		return apiFailure(err)
	}
	if len(res.Alarms) == 0 {
		if t.json {
			fmt.Fprintln(t.out, `{"result":"ok"}`)
			return nil
		}
		t.say("Node %s reported no local alarms", t.node)
		return nil
	}
	var lines []string
	for _, a := range res.Alarms {
		switch a.Resource {
		case "memory":
			lines = append(lines, "Memory alarm on node "+a.Node)
		case "disk space":
			lines = append(lines, "Free disk space alarm on node "+a.Node)
		default:
			lines = append(lines, "File descriptor limit alarm on node "+a.Node)
		}
	}
	if t.json {
		b, _ := json.Marshal(map[string]any{"result": "error", "local": lines, "message": "Node " + t.node + " reported local alarms"})
		return &cliError{code: exitUnavailable, text: string(b), plain: true}
	}
	if t.silent {
		return &cliError{code: exitUnavailable, plain: true}
	}
	return fail(exitUnavailable, "%s", strings.Join(lines, "\n"))
}

func (t *rabbitTool) checkVirtualHosts() error {
	if err := t.need(0, 0); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	t.banner("Checking if all vhosts are running on node %s ...", t.node)
	var res struct {
		VHosts []string `json:"virtual-hosts"`
	}
	err := t.get("/api/health/checks/virtual-hosts", &res)
	if err != nil && !isStatus(err, 503) {
		return apiFailure(err)
	}
	if err == nil {
		if t.json {
			fmt.Fprintln(t.out, `{"result":"ok"}`)
			return nil
		}
		t.say("Node %s reported all vhosts as running", t.node)
		return nil
	}
	if t.json {
		b, _ := json.Marshal(map[string]any{"result": "error", "down_vhosts": res.VHosts})
		return &cliError{code: exitUnavailable, text: string(b), plain: true}
	}
	return fail(exitUnavailable, "Some virtual hosts on node %s are down:\n%s", t.node, strings.Join(res.VHosts, "\n"))
}

func (t *rabbitTool) serverVersion() error {
	if err := t.need(0, 0); err != nil {
		return err
	}
	ov, err := t.connect()
	if err != nil {
		return err
	}
	t.banner("Asking node %s for its RabbitMQ version...", t.node)
	v, _ := ov["rabbitmq_version"].(string)
	if t.json {
		b, _ := json.Marshal(v)
		fmt.Fprintln(t.out, string(b))
		return nil
	}
	t.say("%s", v)
	return nil
}

// status is rabbitmqctl status and rabbitmq-diagnostics status: the
// sections of RabbitMQ's, with what the management API reports.
func (t *rabbitTool) status() error {
	if err := t.need(0, 0); err != nil {
		return err
	}
	ov, err := t.connect()
	if err != nil {
		return err
	}
	var nodes []map[string]any
	if err := t.get("/api/nodes", &nodes); err != nil {
		return apiFailure(err)
	}
	node := map[string]any{}
	if len(nodes) > 0 {
		node = nodes[0]
	}
	// The API gives the pid as a string, as RabbitMQ's does; status shows a number.
	if s, ok := node["os_pid"].(string); ok {
		if pid, err := strconv.Atoi(s); err == nil {
			node["os_pid"] = pid
		}
	}
	var ls []listener
	b, _ := json.Marshal(ov["listeners"])
	_ = json.Unmarshal(b, &ls)
	if t.json {
		b, _ := json.Marshal(map[string]any{
			"pid": node["os_pid"], "os": "Linux", "rabbitmq_version": ov["rabbitmq_version"],
			"product_name": ov["product_name"], "product_version": ov["product_version"],
			"uptime": node["uptime"], "enabled_plugins": node["enabled_plugins"],
			"alarms": alarmNames(node), "listeners": ls,
			"totals": ov["object_totals"],
		})
		fmt.Fprintln(t.out, string(b))
		return nil
	}
	t.banner("Status of node %s ...", t.node)
	w := func(format string, args ...any) { fmt.Fprintf(t.out, format+"\n", args...) }
	w("Runtime\n")
	w("OS PID: %v", node["os_pid"])
	w("OS: Linux")
	w("Uptime (seconds): %d", number(node["uptime"])/1000) // the API counts milliseconds
	w("RabbitMQ version: %v", ov["rabbitmq_version"])
	w("Product name: %v", ov["product_name"])
	w("Product version: %v", ov["product_version"])
	w("Node name: %s", t.node)
	w("\nPlugins\n")
	w("Enabled plugins:\n")
	for _, p := range tagList(node["enabled_plugins"]) {
		w(" * %s", p)
	}
	w("\nAlarms\n")
	if al := alarmNames(node); len(al) == 0 {
		w("(none)")
	} else {
		for _, a := range al {
			w("%s", a)
		}
	}
	w("\nMemory\n")
	w("Total memory used: %s", gb(node["mem_used"]))
	w("\nTotals\n")
	totals, _ := ov["object_totals"].(map[string]any)
	w("Connection count: %v", totals["connections"])
	w("Queue count: %v", totals["queues"])
	w("\nListeners\n")
	for _, l := range ls {
		w("%s", l.line())
	}
	return nil
}

// alarmNames lists a node's alarms as rabbitmqctl status does.
func alarmNames(node map[string]any) []string {
	out := []string{}
	if node["mem_alarm"] == true {
		out = append(out, "Memory alarm")
	}
	if node["disk_free_alarm"] == true {
		out = append(out, "Free disk space alarm")
	}
	return out
}

// number reads a JSON number as an integer (0 if it is none).
func number(v any) int64 {
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return i
		}
		f, _ := n.Float64()
		return int64(f)
	}
	return 0
}

// gb prints bytes as rabbitmqctl status does (gigabytes, four decimals).
func gb(v any) string {
	var f float64
	switch v := v.(type) {
	case json.Number:
		f, _ = v.Float64()
	case float64:
		f = v
	}
	return fmt.Sprintf("%.4f gb", f/1e9)
}

// ---- rabbitmq-plugins ----

// pluginCommands are rabbitmq-plugins' commands, over the plugins built
// into Warren (package plugins): they are always enabled.
func (t *rabbitTool) pluginCommands() map[string]func() error {
	return map[string]func() error{
		"list":       t.pluginsList,
		"enable":     t.pluginsEnable,
		"disable":    t.pluginsDisable,
		"is_enabled": t.pluginsIsEnabled,
	}
}

func (t *rabbitTool) pluginsList() error {
	if err := t.need(0, 1); err != nil {
		return err
	}
	pattern := ".*"
	if len(t.args) == 1 {
		pattern = t.args[0]
	}
	ov, err := t.connect()
	running := err == nil
	version, _ := ov["rabbitmq_version"].(string)
	var list []plugins.Plugin
	for _, p := range plugins.Builtin {
		if match(pattern, p.Name) {
			list = append(list, p)
		}
	}
	if t.json {
		out := make([]map[string]any, len(list))
		for i, p := range list {
			en := "enabled"
			if p.Implicit {
				en = "implicit"
			}
			out[i] = map[string]any{"name": p.Name, "enabled": en, "running": running, "version": version, "running_version": version}
		}
		status := "running"
		if !running {
			status = "node_down"
		}
		b, _ := json.Marshal(map[string]any{"status": status, "format": "normal", "plugins": out})
		fmt.Fprintln(t.out, string(b))
		return nil
	}
	t.banner("Listing plugins with pattern %q ...", pattern)
	if !t.quiet && !t.flags["minimal"] {
		w := func(s string) { fmt.Fprintln(t.out, s) }
		w(" Configured: E = explicitly enabled; e = implicitly enabled")
		if running {
			w(" | Status: * = running on " + t.node)
		} else {
			w(" | Status: [failed to contact " + t.node + " - status not shown]")
		}
		w(" |/")
	}
	width := 0
	for _, p := range list {
		width = max(width, len(p.Name))
	}
	for _, p := range list {
		if t.flags["minimal"] {
			t.say("%s", p.Name)
			continue
		}
		e, r := "E", " "
		if p.Implicit {
			e = "e"
		}
		if running {
			r = "*"
		}
		t.say("[%s%s] %-*s %s", e, r, width, p.Name, version)
	}
	return nil
}

// match is rabbitmq-plugins list's pattern: a regular expression, or a
// plain substring when it does not compile.
func match(pattern, name string) bool {
	if pattern == ".*" {
		return true
	}
	re, err := compileRegexp(pattern)
	if err != nil {
		return strings.Contains(name, pattern)
	}
	return re.MatchString(name)
}

func (t *rabbitTool) pluginsEnable() error {
	if err := t.need(1, -1); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	t.banner("Enabling plugins on node %s:", t.node)
	for _, p := range t.args {
		t.banner("%s", p)
	}
	var missing []string
	for _, p := range t.args {
		if _, ok := plugins.Lookup(p); !ok {
			missing = append(missing, ":"+p)
		}
	}
	if len(missing) > 0 {
		return fail(exitSoftware, "{:plugins_not_found, [%s]}", strings.Join(missing, ", "))
	}
	for _, p := range t.args {
		t.say("Plugin %s is built into Warren and always enabled.", p)
	}
	t.say("Plugin configuration unchanged.")
	return nil
}

func (t *rabbitTool) pluginsDisable() error {
	if err := t.need(1, -1); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	t.banner("Disabling plugins on node %s:", t.node)
	for _, p := range t.args {
		t.banner("%s", p)
	}
	var builtin []string
	for _, p := range t.args {
		if _, ok := plugins.Lookup(p); ok {
			builtin = append(builtin, p)
		}
	}
	if len(builtin) > 0 {
		return fail(exitSoftware, "Plugin(s) %s are built into Warren and always enabled: they cannot be disabled", strings.Join(builtin, ", "))
	}
	// Not enabled, so nothing to disable: RabbitMQ says the same.
	t.say("Plugin configuration unchanged.")
	return nil
}

func (t *rabbitTool) pluginsIsEnabled() error {
	if err := t.need(1, -1); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	names := strings.Join(t.args, ", ")
	which := "plugin " + names + " is"
	if len(t.args) > 1 {
		which = "plugins " + names + " are"
	}
	t.banner("Asking node %s if %s enabled...", t.node, which)
	var missing []string
	for _, p := range t.args {
		if _, ok := plugins.Lookup(p); !ok {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		msg := capitalize(which + " enabled on node " + t.node)
		if t.json {
			b, _ := json.Marshal(map[string]any{"result": "ok", "message": msg})
			fmt.Fprintln(t.out, string(b))
			return nil
		}
		t.say("%s", msg)
		return nil
	}
	which = "plugin " + strings.Join(missing, ", ") + " is"
	if len(missing) > 1 {
		which = "plugins " + strings.Join(missing, ", ") + " are"
	}
	msg := capitalize(which+" not enabled on node "+t.node+". ") + "Enabled plugins and dependencies: " + strings.Join(plugins.Names(), ", ")
	if t.json {
		b, _ := json.Marshal(map[string]any{"result": "error", "message": msg})
		return &cliError{code: exitUnavailable, text: string(b), plain: true}
	}
	return fail(exitUnavailable, "%s", msg)
}

func compileRegexp(p string) (*regexp.Regexp, error) { return regexp.Compile(p) }
