// Command warrenctl drives Warren (or RabbitMQ) through the management HTTP
// API. It is also RabbitMQ's command-line tools: installed (or linked) as
// rabbitmqctl, rabbitmq-diagnostics or rabbitmq-plugins it behaves as they
// do (rabbit.go), so health checks, CI scripts and testcontainers that call
// them work against Warren.
//
//	warrenctl [--url http://127.0.0.1:15672] [--user guest] [--password guest] [--vhost /] COMMAND
//
// The URL, user and password may also come from WARREN_URL, WARREN_USER and
// WARREN_PASSWORD. Commands: list queues|exchanges|bindings|connections|
// users|vhosts|permissions, purge QUEUE, delete queue|exchange NAME, declare
// queue NAME [--durable], publish EXCHANGE KEY BODY, get QUEUE [--count N],
// export FILE, import FILE, dlq inspect QUEUE, dlq replay QUEUE [--to
// original|EXCHANGE] [--limit N], and, named as rabbitmqctl's: add_user NAME
// PASSWORD [--tags T1,T2], delete_user NAME, change_password NAME PASSWORD,
// set_user_tags NAME [TAG...], add_vhost NAME [--description D],
// delete_vhost NAME, set_permissions USER CONFIGURE WRITE READ,
// clear_permissions USER (on --vhost), set_parameter shovel NAME JSON,
// clear_parameter shovel NAME, list_parameters, shovel_status,
// delete_shovel NAME, restart_shovel NAME, trace_on, trace_off.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	os.Exit(run(filepath.Base(os.Args[0]), os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// run is the whole command, as the program named prog; it returns the exit
// status.
func run(prog string, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	switch prog {
	case "rabbitmqctl", "rabbitmq-diagnostics", "rabbitmq-plugins":
		return runRabbit(prog, args, env, stdout, stderr)
	}
	return runWarrenctl(args, env, stdout, stderr)
}

// Connection defaults, overridden by the node's RabbitMQ configuration
// (rabbitconf.go), WARREN_HTTP_LISTEN, then WARREN_URL, WARREN_USER,
// WARREN_PASSWORD, then by flags.
const (
	defaultURL      = "http://127.0.0.1:15672"
	defaultUser     = "guest"
	defaultPassword = "guest"
)

// newClient is a client with the defaults and the environment applied.
func newClient(env func(string) (string, bool)) *client {
	c := &client{base: defaultURL, user: defaultUser, password: defaultPassword, vhost: "/",
		http: &http.Client{Timeout: 60 * time.Second}}
	if user, pass, port := rabbitDefaults(env); user != "" || pass != "" || port != "" {
		if user != "" {
			c.user = user
		}
		if pass != "" {
			c.password = pass
		}
		if port != "" {
			c.base = "http://127.0.0.1:" + port
		}
	}
	if v, ok := env("WARREN_HTTP_LISTEN"); ok && v != "" {
		// The broker's own setting, in the broker's environment.
		if _, port, err := net.SplitHostPort(v); err == nil && port != "" && port != "0" {
			c.base = "http://127.0.0.1:" + port
		}
	}
	if v, ok := env("WARREN_URL"); ok && v != "" {
		c.base = v
	}
	if v, ok := env("WARREN_USER"); ok && v != "" {
		c.user = v
	}
	if v, ok := env("WARREN_PASSWORD"); ok {
		c.password = v
	}
	return c
}

const usage = `usage: warrenctl [--url URL] [--user U] [--password P] [--vhost V] COMMAND
  (URL, user and password also from WARREN_URL, WARREN_USER, WARREN_PASSWORD;
   named rabbitmqctl, rabbitmq-diagnostics or rabbitmq-plugins, it is those)
  list queues|exchanges|bindings|connections|users|vhosts|permissions
  purge QUEUE
  delete queue|exchange NAME
  declare queue NAME [--durable]
  publish EXCHANGE KEY BODY
  get QUEUE [--count N]
  export FILE
  import FILE
  dlq inspect QUEUE
  dlq replay QUEUE [--to original|EXCHANGE] [--limit N]
  add_user NAME PASSWORD [--tags T1,T2]
  delete_user NAME
  change_password NAME PASSWORD
  set_user_tags NAME [TAG...]
  add_vhost NAME [--description D]
  delete_vhost NAME
  set_permissions USER CONFIGURE WRITE READ   (on --vhost)
  clear_permissions USER                      (on --vhost)
  set_parameter shovel NAME JSON              (on --vhost)
  clear_parameter shovel NAME                 (on --vhost)
  list_parameters                             (on --vhost)
  shovel_status
  delete_shovel NAME                          (on --vhost)
  restart_shovel NAME                         (on --vhost)
  trace_on | trace_off                        (on --vhost)
`

// runWarrenctl is warrenctl's own command line.
func runWarrenctl(args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("warrenctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := newClient(env)
	fs.StringVar(&c.base, "url", c.base, "management API URL (WARREN_URL)")
	fs.StringVar(&c.user, "user", c.user, "user name (WARREN_USER)")
	fs.StringVar(&c.password, "password", c.password, "password (WARREN_PASSWORD)")
	fs.StringVar(&c.vhost, "vhost", "/", "virtual host")
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return 2
	}
	if err := c.do(rest, stdout); err != nil {
		fmt.Fprintf(stderr, "warrenctl: %v\n", err)
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprint(stderr, usage)
			return 2
		}
		return 1
	}
	if w := doneWord(rest, c.vhost); w != "" {
		fmt.Fprintln(stdout, w)
	}
	return 0
}

// doneWord is what a command that prints nothing else says when it worked.
func doneWord(args []string, vhost string) string {
	arg := func(i int) string {
		// Flags may sit between the arguments (declare queue --durable q).
		n := 0
		for _, a := range args[1:] {
			if strings.HasPrefix(a, "--") {
				continue
			}
			if n == i {
				return fmt.Sprintf("%q", a)
			}
			n++
		}
		return ""
	}
	switch args[0] {
	case "purge":
		return "purged queue " + arg(0) + " in vhost " + fmt.Sprintf("%q", vhost)
	case "delete":
		return "deleted " + strings.Trim(arg(0), `"`) + " " + arg(1) + " in vhost " + fmt.Sprintf("%q", vhost)
	case "declare":
		return "declared queue " + arg(1) + " in vhost " + fmt.Sprintf("%q", vhost)
	case "export":
		return "exported definitions to " + arg(0)
	case "import":
		return "imported definitions from " + arg(0)
	case "add_user":
		return "added user " + arg(0)
	case "delete_user":
		return "deleted user " + arg(0)
	case "change_password":
		return "changed the password of user " + arg(0)
	case "set_user_tags":
		return "set the tags of user " + arg(0)
	case "add_vhost":
		return "added vhost " + arg(0)
	case "delete_vhost":
		return "deleted vhost " + arg(0)
	case "set_permissions":
		return "set permissions of user " + fmt.Sprintf("%q", args[1]) + " in vhost " + fmt.Sprintf("%q", vhost)
	case "clear_permissions":
		return "cleared permissions of user " + arg(0) + " in vhost " + fmt.Sprintf("%q", vhost)
	}
	return ""
}

type usageError string

func (e usageError) Error() string { return string(e) }

// sub parses a subcommand's own flags, which may follow its arguments.
func sub(args []string, setup func(*flag.FlagSet)) ([]string, error) {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	setup(fs)
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, usageError(err.Error())
		}
		args = fs.Args()
		if len(args) > 0 {
			pos = append(pos, args[0])
			args = args[1:]
		}
	}
	return pos, nil
}

func (c *client) do(args []string, out io.Writer) error {
	vh := url.PathEscape(c.vhost)
	switch args[0] {
	case "list":
		if len(args) != 2 {
			return usageError("list what?")
		}
		return c.list(args[1], out)
	case "purge":
		if len(args) != 2 {
			return usageError("purge QUEUE")
		}
		return c.call("DELETE", "/api/queues/"+vh+"/"+url.PathEscape(args[1])+"/contents", nil, nil)
	case "delete":
		if len(args) != 3 || (args[1] != "queue" && args[1] != "exchange") {
			return usageError("delete queue|exchange NAME")
		}
		return c.call("DELETE", "/api/"+args[1]+"s/"+vh+"/"+url.PathEscape(args[2]), nil, nil)
	case "declare":
		var durable bool
		pos, err := sub(args[1:], func(fs *flag.FlagSet) { fs.BoolVar(&durable, "durable", false, "") })
		if err != nil {
			return err
		}
		if len(pos) != 2 || pos[0] != "queue" {
			return usageError("declare queue NAME [--durable]")
		}
		return c.call("PUT", "/api/queues/"+vh+"/"+url.PathEscape(pos[1]), map[string]any{"durable": durable, "auto_delete": false, "arguments": map[string]any{}}, nil)
	case "publish":
		if len(args) != 4 {
			return usageError("publish EXCHANGE KEY BODY")
		}
		ex := args[1]
		if ex == "" {
			ex = "amq.default"
		}
		var res struct {
			Routed bool `json:"routed"`
		}
		err := c.call("POST", "/api/exchanges/"+vh+"/"+url.PathEscape(ex)+"/publish", map[string]any{
			"properties": map[string]any{}, "routing_key": args[2], "payload": args[3], "payload_encoding": "string"}, &res)
		if err != nil {
			return err
		}
		if !res.Routed {
			return fmt.Errorf("message published but not routed")
		}
		fmt.Fprintln(out, "routed")
		return nil
	case "get":
		count := 1
		pos, err := sub(args[1:], func(fs *flag.FlagSet) { fs.IntVar(&count, "count", 1, "") })
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usageError("get QUEUE [--count N]")
		}
		var msgs []map[string]any
		err = c.call("POST", "/api/queues/"+vh+"/"+url.PathEscape(pos[0])+"/get", map[string]any{
			"count": count, "ackmode": "ack_requeue_true", "encoding": "auto"}, &msgs)
		if err != nil {
			return err
		}
		return table(out, msgs, []string{"routing_key", "exchange", "message_count", "payload", "payload_encoding", "redelivered"})
	case "export":
		if len(args) != 2 {
			return usageError("export FILE")
		}
		var defs json.RawMessage
		if err := c.call("GET", "/api/definitions", nil, &defs); err != nil {
			return err
		}
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, defs, "", "  ")
		return os.WriteFile(args[1], pretty.Bytes(), 0o644)
	case "import":
		if len(args) != 2 {
			return usageError("import FILE")
		}
		b, err := os.ReadFile(args[1])
		if err != nil {
			return err
		}
		return c.call("POST", "/api/definitions", json.RawMessage(b), nil)
	case "dlq":
		return c.dlq(args[1:], out)
	}
	if handled, err := c.access(args); handled {
		return err
	}
	if handled, err := c.plugins(args, out); handled {
		return err
	}
	return usageError("unknown command " + args[0])
}

// access runs the rabbitmqctl-style commands for users, vhosts and
// permissions; handled is false for any other command.
func (c *client) access(args []string) (handled bool, err error) {
	vh := url.PathEscape(c.vhost)
	user := func(name string) string { return "/api/users/" + url.PathEscape(name) }
	switch args[0] {
	case "add_user":
		var tags string
		pos, err := sub(args[1:], func(fs *flag.FlagSet) { fs.StringVar(&tags, "tags", "", "") })
		if err != nil {
			return true, err
		}
		if len(pos) != 2 {
			return true, usageError("add_user NAME PASSWORD [--tags T1,T2]")
		}
		// The API's PUT replaces a user; rabbitmqctl refuses an existing one.
		switch err := c.call("GET", user(pos[0]), nil, nil); {
		case err == nil:
			return true, fmt.Errorf("user %q already exists", pos[0])
		case !isStatus(err, http.StatusNotFound):
			return true, err
		}
		return true, c.call("PUT", user(pos[0]), map[string]any{"password": pos[1], "tags": tags}, nil)
	case "delete_user":
		if len(args) != 2 {
			return true, usageError("delete_user NAME")
		}
		return true, c.call("DELETE", user(args[1]), nil, nil)
	case "change_password":
		if len(args) != 3 {
			return true, usageError("change_password NAME PASSWORD")
		}
		var u struct {
			Tags []string `json:"tags"`
		}
		if err := c.call("GET", user(args[1]), nil, &u); err != nil {
			return true, err
		}
		return true, c.call("PUT", user(args[1]), map[string]any{"password": args[2], "tags": nonNil(u.Tags)}, nil)
	case "set_user_tags":
		if len(args) < 2 {
			return true, usageError("set_user_tags NAME [TAG...]")
		}
		var u struct {
			PasswordHash     string `json:"password_hash"`
			HashingAlgorithm string `json:"hashing_algorithm"`
		}
		if err := c.call("GET", user(args[1]), nil, &u); err != nil {
			return true, err
		}
		body := map[string]any{"tags": nonNil(args[2:])}
		if u.PasswordHash != "" {
			body["password_hash"], body["hashing_algorithm"] = u.PasswordHash, u.HashingAlgorithm
		}
		return true, c.call("PUT", user(args[1]), body, nil)
	case "add_vhost":
		var desc string
		pos, err := sub(args[1:], func(fs *flag.FlagSet) { fs.StringVar(&desc, "description", "", "") })
		if err != nil {
			return true, err
		}
		if len(pos) != 1 {
			return true, usageError("add_vhost NAME [--description D]")
		}
		return true, c.call("PUT", "/api/vhosts/"+url.PathEscape(pos[0]), map[string]any{"description": desc}, nil)
	case "delete_vhost":
		if len(args) != 2 {
			return true, usageError("delete_vhost NAME")
		}
		return true, c.call("DELETE", "/api/vhosts/"+url.PathEscape(args[1]), nil, nil)
	case "set_permissions":
		// Positional only: a pattern may well start with "-" or be "".
		if len(args) != 5 {
			return true, usageError("set_permissions USER CONFIGURE WRITE READ")
		}
		return true, c.call("PUT", "/api/permissions/"+vh+"/"+url.PathEscape(args[1]),
			map[string]any{"configure": args[2], "write": args[3], "read": args[4]}, nil)
	case "clear_permissions":
		if len(args) != 2 {
			return true, usageError("clear_permissions USER")
		}
		return true, c.call("DELETE", "/api/permissions/"+vh+"/"+url.PathEscape(args[1]), nil, nil)
	}
	return false, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (c *client) dlq(args []string, out io.Writer) error {
	vh := url.PathEscape(c.vhost)
	if len(args) < 2 {
		return usageError("dlq inspect|replay QUEUE")
	}
	switch args[0] {
	case "inspect":
		var msgs []struct {
			Payload    string `json:"payload"`
			RoutingKey string `json:"routing_key"`
			XDeath     []struct {
				Queue       string   `json:"queue"`
				Reason      string   `json:"reason"`
				Count       int64    `json:"count"`
				Exchange    string   `json:"exchange"`
				RoutingKeys []string `json:"routing-keys"`
				Time        int64    `json:"time"`
			} `json:"x_death"`
		}
		if err := c.call("GET", "/api/queues/"+vh+"/"+url.PathEscape(args[1])+"/dead-letters", nil, &msgs); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "#\tpayload\tdied in\treason\tcount\texchange\trouting keys\ttime")
		for i, m := range msgs {
			if len(m.XDeath) == 0 {
				fmt.Fprintf(tw, "%d\t%s\t-\t-\t-\t-\t%s\t-\n", i+1, clip(m.Payload), m.RoutingKey)
			}
			for j, d := range m.XDeath {
				n, p := fmt.Sprint(i+1), clip(m.Payload)
				if j > 0 {
					n, p = "", ""
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", n, p, d.Queue, d.Reason, d.Count, d.Exchange,
					strings.Join(d.RoutingKeys, ","), time.Unix(d.Time, 0).UTC().Format(time.RFC3339))
			}
		}
		return tw.Flush()
	case "replay":
		to, limit := "original", -1
		pos, err := sub(args[1:], func(fs *flag.FlagSet) {
			fs.StringVar(&to, "to", "original", "")
			fs.IntVar(&limit, "limit", -1, "")
		})
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return usageError("dlq replay QUEUE [--to original|EXCHANGE] [--limit N]")
		}
		body := map[string]any{"to": to}
		if limit >= 0 {
			body["limit"] = limit
		}
		var res struct {
			Replayed  int    `json:"replayed"`
			Skipped   int    `json:"skipped"`
			Remaining int    `json:"remaining"`
			Error     string `json:"error"`
		}
		err = c.call("POST", "/api/queues/"+vh+"/"+url.PathEscape(pos[0])+"/dead-letters/replay", body, &res)
		fmt.Fprintf(out, "replayed %d, skipped %d, %d left in %s\n", res.Replayed, res.Skipped, res.Remaining, pos[0])
		return err
	}
	return usageError("dlq inspect|replay QUEUE")
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

var listColumns = map[string][]string{
	"queues":      {"vhost", "name", "durable", "messages", "messages_ready", "messages_unacknowledged", "consumers"},
	"exchanges":   {"vhost", "name", "type", "durable", "auto_delete", "internal"},
	"bindings":    {"vhost", "source", "destination", "destination_type", "routing_key"},
	"connections": {"name", "user", "vhost", "channels"},
	"users":       {"name", "tags"},
	"vhosts":      {"name", "description", "messages"},
	"permissions": {"user", "vhost", "configure", "write", "read"},
}

func (c *client) list(what string, out io.Writer) error {
	cols, ok := listColumns[what]
	if !ok {
		return usageError("list queues|exchanges|bindings|connections|users|vhosts|permissions")
	}
	path := "/api/" + what
	switch what {
	case "connections", "users", "vhosts":
	case "permissions":
		path = "/api/vhosts/" + url.PathEscape(c.vhost) + "/permissions"
	default:
		path += "/" + url.PathEscape(c.vhost)
	}
	var rows []map[string]any
	if err := c.call("GET", path, nil, &rows); err != nil {
		return err
	}
	return table(out, rows, cols)
}

// table prints rows as an aligned table of the given columns.
func table(out io.Writer, rows []map[string]any, cols []string) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for _, r := range rows {
		vals := make([]string, len(cols))
		for i, c := range cols {
			switch v := r[c].(type) {
			case nil:
				vals[i] = ""
			case string:
				vals[i] = v
			case []any:
				parts := make([]string, len(v))
				for j, x := range v {
					parts[j] = fmt.Sprint(x)
				}
				vals[i] = strings.Join(parts, ",")
			default:
				vals[i] = fmt.Sprint(v)
			}
		}
		fmt.Fprintln(tw, strings.Join(vals, "\t"))
	}
	return tw.Flush()
}
