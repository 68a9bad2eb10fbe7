package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// RabbitMQ's command-line tools over the management API: rabbitmqctl,
// rabbitmq-diagnostics and rabbitmq-plugins, with their banners, table and
// JSON output, error texts and exit codes (RabbitMQ 3.10's
// RabbitMQ.CLI.Core.ExitCodes).
const (
	exitOK          = 0
	exitUsage       = 64
	exitDataErr     = 65
	exitNoUser      = 67
	exitUnavailable = 69
	exitSoftware    = 70
)

// rabbitTool is one run of a RabbitMQ tool.
type rabbitTool struct {
	prog      string
	c         *client
	out, errw io.Writer

	node    string // -n as given, or the default; the API's name once known
	known   bool   // node is the API's answer
	vhost   string
	quiet   bool
	silent  bool
	json    bool
	headers bool
	timeout time.Duration
	opts    map[string]string // command options with values (--priority 1)
	flags   map[string]bool   // command options without (--if-empty)
	cmd     string            // the command's name
	args    []string          // the command's positional arguments
}

// cliError is a failed command: RabbitMQ prints "Error:" and the text on
// stderr (bare when plain is set) and exits with code.
type cliError struct {
	code  int
	text  string
	plain bool
}

func (e *cliError) Error() string { return e.text }

func fail(code int, format string, args ...any) error {
	return &cliError{code: code, text: fmt.Sprintf(format, args...)}
}

// usageFailure is RabbitMQ's argument validation error.
type usageFailure struct {
	text string
	code int // exitUsage unless said otherwise
}

func (e *usageFailure) Error() string { return e.text }

// nodeDown is the node not answering, or refusing the CLI's credentials.
type nodeDown struct{ err error }

func (e *nodeDown) Error() string { return e.err.Error() }

// valued are the options that take a value, by every name they go by.
var valued = map[string]string{
	"-n": "node", "--node": "node", "-p": "vhost", "--vhost": "vhost",
	"--formatter": "formatter", "-t": "timeout", "--timeout": "timeout",
	// --user is a command's option (list_user_limits), as in rabbitmqctl,
	// whose login is no option at all; Warren's API login is --api-user.
	"--url": "url", "--user": "user", "--api-user": "api-user", "--password": "password",
	"--priority": "priority", "--apply-to": "apply-to", "--description": "description",
	"--tags": "tags", "--default-queue-type": "default-queue-type", "--format": "format",
	"--erlang-cookie": "erlang-cookie", "--pattern": "pattern",
}

// boolean are the short option letters that take no value.
var boolean = map[string]string{
	"-q": "quiet", "-s": "silent", "-l": "longnames", "-e": "if-empty", "-u": "if-unused",
	"-E": "enabled", "-m": "minimal", "-v": "verbose",
}

func runRabbit(prog string, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	t := &rabbitTool{prog: prog, c: newClient(env), out: stdout, errw: stderr, vhost: "/", headers: true,
		timeout: 60 * time.Second, opts: map[string]string{}, flags: map[string]bool{}}
	urlSet := false
	if _, ok := env("WARREN_URL"); ok {
		urlSet = true
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			t.args = append(t.args, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			t.args = append(t.args, a)
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		if key, ok := valued[name]; ok {
			if !hasVal {
				if i+1 >= len(args) {
					return t.finish(&usageFailure{text: "option " + name + " needs a value"})
				}
				i++
				val = args[i]
			}
			t.opts[key] = val
			continue
		}
		if key, ok := boolean[name]; ok {
			t.flags[key] = true
			continue
		}
		t.flags[strings.TrimLeft(name, "-")] = true
	}
	for key, val := range t.opts {
		switch key {
		case "node":
			t.node = val
			if !urlSet {
				t.c.base = nodeURL(val, t.c.base)
			}
		case "vhost":
			t.vhost = val
		case "formatter":
			t.json = val == "json"
		case "timeout":
			n, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return t.finish(&usageFailure{text: "invalid timeout " + val})
			}
			t.timeout = time.Duration(n * float64(time.Second))
		case "url":
			t.c.base = val
		case "api-user":
			t.c.user = val
		case "password":
			t.c.password = val
		}
	}
	t.c.http.Timeout = t.timeout
	t.quiet = t.flags["quiet"] || t.flags["silent"] || t.json
	t.silent = t.flags["silent"]
	t.headers = !t.flags["no-table-headers"] && !t.silent
	if t.node == "" {
		t.node = defaultNodeName()
	}
	if len(t.args) == 0 {
		fmt.Fprintf(stderr, "\nUsage\n\n%s\n", rabbitUsage(prog))
		return exitUsage
	}
	cmd := t.args[0]
	t.cmd, t.args = cmd, t.args[1:]
	var table map[string]func() error
	switch prog {
	case "rabbitmqctl":
		table = t.ctlCommands()
	case "rabbitmq-diagnostics":
		table = t.diagnosticsCommands()
	default:
		table = t.pluginCommands()
	}
	run, ok := table[cmd]
	if !ok {
		fmt.Fprintf(stderr, "\nCommand '%s' not found. \n\nUsage\n\n%s\n", cmd, rabbitUsage(prog))
		return exitUsage
	}
	return t.finish(run())
}

// finish prints err as RabbitMQ would and returns the exit code.
func (t *rabbitTool) finish(err error) int {
	var ce *cliError
	var ue *usageFailure
	var nd *nodeDown
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ce):
		if ce.plain {
			fmt.Fprintln(t.errw, ce.text)
		} else {
			fmt.Fprintf(t.errw, "Error:\n%s\n", ce.text)
		}
		return ce.code
	case errors.As(err, &ue):
		fmt.Fprintf(t.errw, "Error (argument validation): %s\nArguments given:\n\t%s\n\nUsage\n\n%s\n", ue.text, strings.TrimSpace(t.cmd+" "+strings.Join(t.args, " ")), rabbitUsage(t.prog))
		if ue.code != 0 {
			return ue.code
		}
		return exitUsage
	case errors.As(err, &nd):
		fmt.Fprint(t.errw, t.nodeDownText(nd.err))
		return exitUnavailable
	}
	fmt.Fprintf(t.errw, "Error:\n%v\n", err)
	return exitSoftware
}

func rabbitUsage(prog string) string {
	switch prog {
	case "rabbitmqctl":
		return "rabbitmqctl [--node <node>] [--quiet] [--vhost <vhost>] [--formatter json] <command> [<command options>]\n" +
			"(Warren: --url, --api-user, --password or WARREN_URL, WARREN_USER, WARREN_PASSWORD select the management API)"
	case "rabbitmq-diagnostics":
		return "rabbitmq-diagnostics [--node <node>] [--quiet] [--formatter json] ping|check_running|check_port_connectivity|check_local_alarms|check_virtual_hosts|status|listeners|server_version"
	}
	return "rabbitmq-plugins [--node <node>] [--quiet] list|enable|disable|is_enabled [<plugin> ...]"
}

// nodeDownText is RabbitMQ's "unable to perform an operation" message, with
// Warren's causes: the CLI reaches the node over its management API.
func (t *rabbitTool) nodeDownText(err error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Error: unable to perform an operation on node '%s'. Please see diagnostics information and suggestions below.\n\n", t.node)
	b.WriteString("Most common reasons for this are:\n\n")
	b.WriteString(" * Target node is unreachable (e.g. due to hostname resolution, TCP connection or firewall issues)\n")
	b.WriteString(" * CLI tool fails to authenticate with the server (e.g. due to a wrong user or password: WARREN_USER, WARREN_PASSWORD)\n")
	b.WriteString(" * Target node is not running\n\n")
	b.WriteString("In addition to the diagnostics info below:\n\n")
	b.WriteString(" * The CLI talks to the node's management HTTP API: set its URL with --url or WARREN_URL\n")
	fmt.Fprintf(&b, " * Consult server logs on node %s\n\n", t.node)
	b.WriteString("DIAGNOSTICS\n===========\n\n")
	fmt.Fprintf(&b, "attempted to contact: [%s]\n\n", t.node)
	fmt.Fprintf(&b, "%s:\n  * %v\n\n", t.node, err)
	return b.String()
}

// defaultNodeName is the name shown for a node that has not answered: the
// one a Warren on this host calls itself by default.
func defaultNodeName() string {
	h, _ := os.Hostname()
	if h == "" {
		h = "localhost"
	}
	h, _, _ = strings.Cut(h, ".")
	return "warren@" + h
}

// nodeURL maps -n NAME@HOST to the management API on that host, keeping
// the scheme and port of base; the local host keeps base as it is.
func nodeURL(node, base string) string {
	_, host, ok := strings.Cut(node, "@")
	if !ok || host == "" || host == "localhost" {
		return base
	}
	if h, _ := os.Hostname(); h != "" {
		short, _, _ := strings.Cut(h, ".")
		if host == h || host == short {
			return base
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	port := u.Port()
	u.Host = host
	if port != "" {
		u.Host = host + ":" + port
	}
	return u.String()
}

// connect asks the node for its name (and checks it answers, with these
// credentials); every command that talks to the node starts here.
func (t *rabbitTool) connect() (overview map[string]any, err error) {
	err = t.c.call("GET", "/api/overview", nil, &overview)
	if err != nil {
		return nil, t.downOr(err)
	}
	if n, ok := overview["node"].(string); ok && n != "" && !t.known {
		t.node, t.known = n, true
	}
	return overview, nil
}

// downOr turns "no answer" and "credentials refused" into nodeDown.
func (t *rabbitTool) downOr(err error) error {
	var un *unreachable
	if errors.As(err, &un) {
		return &nodeDown{err: fmt.Errorf("unable to connect to the management API at %s: %v", t.c.base, un.err)}
	}
	if isStatus(err, http.StatusUnauthorized) {
		return &nodeDown{err: fmt.Errorf("the management API at %s refused user %q (401 Unauthorized)", t.c.base, t.c.user)}
	}
	return err
}

// banner prints a command's banner unless quiet.
func (t *rabbitTool) banner(format string, args ...any) {
	if !t.quiet {
		fmt.Fprintf(t.out, format+"\n", args...)
	}
}

// say prints a command's result line unless silent.
func (t *rabbitTool) say(format string, args ...any) {
	if !t.silent {
		fmt.Fprintf(t.out, format+"\n", args...)
	}
}

// get is call for GETs, mapping a node that does not answer.
func (t *rabbitTool) get(path string, into any) error {
	return t.downOr(t.c.call("GET", path, nil, into))
}

// do is call for changes, mapping a node that does not answer.
func (t *rabbitTool) do(method, path string, body any) error {
	return t.downOr(t.c.call(method, path, body, nil))
}

// need checks the number of positional arguments.
func (t *rabbitTool) need(min, max int) error {
	switch {
	case len(t.args) < min:
		return &usageFailure{text: "not enough arguments."}
	case max >= 0 && len(t.args) > max:
		return &usageFailure{text: "too many arguments."}
	}
	return nil
}

// ---- output ----

// cell is one value of a listed row.
type cell = any

// erlangArgs marks an arguments table: printed as RabbitMQ prints an AMQP
// table, [{"key",value}], and in JSON as [["key","type",value]].
type erlangArgs map[string]any

// erlangList is printed as [a, b] (user tags).
type erlangList []string

// printRows prints a listing as a table (tab-separated, with a header row
// unless --no-table-headers; nothing at all for no rows) or as JSON.
func (t *rabbitTool) printRows(cols []string, rows [][]cell) {
	if t.json {
		var b bytes.Buffer
		b.WriteString("[\n")
		for i, r := range rows {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('{')
			for j, c := range cols {
				if j > 0 {
					b.WriteByte(',')
				}
				k, _ := json.Marshal(c)
				b.Write(k)
				b.WriteByte(':')
				b.Write(jsonCell(r[j]))
			}
			b.WriteString("}\n")
		}
		b.WriteString("]\n")
		t.out.Write(b.Bytes()) //nolint:errcheck // stdout
		return
	}
	if len(rows) == 0 || t.silent {
		return
	}
	if t.headers {
		fmt.Fprintln(t.out, strings.Join(cols, "\t"))
	}
	for _, r := range rows {
		s := make([]string, len(r))
		for i, c := range r {
			s[i] = textCell(c)
		}
		fmt.Fprintln(t.out, strings.Join(s, "\t"))
	}
}

func jsonCell(c cell) []byte {
	var v any = c
	switch c := c.(type) {
	case erlangArgs:
		list := make([][]any, 0, len(c))
		for _, k := range sortedKeys(c) {
			list = append(list, []any{k, amqpType(c[k]), c[k]})
		}
		v = list
	case erlangList:
		v = []string(c)
		if c == nil {
			v = []string{}
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return []byte("null")
	}
	return b
}

// amqpType names a JSON value's field table type as RabbitMQ's JSON
// formatter does.
func amqpType(v any) string {
	switch v := v.(type) {
	case string:
		return "longstr"
	case bool:
		return "bool"
	case json.Number:
		if strings.ContainsAny(v.String(), ".eE") {
			return "double"
		}
		return "long"
	case []any:
		return "array"
	case map[string]any:
		return "table"
	}
	return "void"
}

func textCell(c cell) string {
	switch c := c.(type) {
	case nil:
		return ""
	case string:
		return c
	case erlangList:
		return "[" + strings.Join(c, ", ") + "]"
	case erlangArgs:
		parts := make([]string, 0, len(c))
		for _, k := range sortedKeys(c) {
			parts = append(parts, "{"+erlangValue(k)+","+erlangValue(c[k])+"}")
		}
		return "[" + strings.Join(parts, ",") + "]"
	case map[string]any, []any:
		b, _ := json.Marshal(c)
		return string(b)
	}
	return fmt.Sprint(c)
}

// erlangValue prints a table value as RabbitMQ's table formatter does.
func erlangValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case map[string]any:
		return textCell(erlangArgs(v))
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = erlangValue(x)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case nil:
		return "undefined"
	}
	return fmt.Sprint(v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// capitalize is Elixir's String.capitalize: the first letter upper case,
// the rest lower case.
func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
}
