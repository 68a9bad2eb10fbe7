package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/amqp/amqptest"
	"github.com/warrenmq/warren/management"
	"github.com/warrenmq/warren/shovel"
)

// node is the name the test broker's API reports.
const node = "warren@test"

// rabbitEnv is an in-process broker with its management API, and the CLI
// pointed at it through WARREN_URL.
type rabbitEnv struct {
	broker *amqptest.Server
	url    string
}

func startRabbitEnv(t *testing.T) *rabbitEnv {
	t.Helper()
	broker := amqptest.NewServer(t)
	shovels, err := shovel.NewManager(shovel.Options{Store: broker.Storage(), Local: broker.DialDirect})
	require.NoError(t, err)
	t.Cleanup(shovels.Close)
	api := management.New(broker.Server, management.Options{Node: node, Shovels: shovels})
	hs := httptest.NewServer(api)
	// Serve registers the AMQP listener on its own goroutine: wait for it,
	// so that the listeners are listed in a known order.
	require.Eventually(t, func() bool { return len(broker.Listeners()) == 1 }, timeout, tick)
	remove := broker.AddListener(amqp.Listener{Protocol: "http", Addr: hs.Listener.Addr()})
	t.Cleanup(func() {
		remove()
		hs.Close()
		api.Close()
	})
	return &rabbitEnv{broker: broker, url: hs.URL}
}

// cli runs the binary as prog with args; it returns stdout, stderr and the
// exit code.
func (e *rabbitEnv) cli(prog string, args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	env := func(k string) (string, bool) {
		if k == "WARREN_URL" {
			return e.url, true
		}
		return noEnv(k)
	}
	code := run(prog, args, env, &out, &errb)
	return out.String(), errb.String(), code
}

// step is one CLI call and what it must print: stdout exactly, stderr
// exactly, and the exit code.
type step struct {
	prog   string
	args   []string
	stdout string
	stderr string
	code   int
}

func (e *rabbitEnv) check(t *testing.T, steps []step) {
	t.Helper()
	for _, s := range steps {
		out, errs, code := e.cli(s.prog, s.args...)
		what := s.prog + " " + strings.Join(s.args, " ")
		require.Equal(t, s.stdout, out, "stdout of %s", what)
		require.Equal(t, s.stderr, errs, "stderr of %s", what)
		require.Equal(t, s.code, code, "exit code of %s", what)
	}
}

func ctl(args ...string) []string { return args }

const (
	timeout = 5 * time.Second
	tick    = 10 * time.Millisecond
)

func timeoutC() <-chan time.Time { return time.After(timeout) }

// TestRabbitmqctl runs rabbitmqctl's commands against a broker and checks
// their output, as RabbitMQ 3.10.8's rabbitmqctl prints it (compared by
// hand against a RabbitMQ node), and their exit codes.
func TestRabbitmqctl(t *testing.T) {
	e := startRabbitEnv(t)
	conn, err := amqp091.Dial(e.broker.URL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare("q1", true, false, false, false, amqp091.Table{"x-max-length": int32(5)})
	require.NoError(t, err)
	require.NoError(t, ch.PublishWithContext(t.Context(), "", "q1", false, false, amqp091.Publishing{Body: []byte("m")}))
	require.NoError(t, ch.ExchangeDeclare("ex1", "topic", true, false, false, false, nil))
	require.NoError(t, ch.QueueBind("q1", "a.#", "ex1", false, amqp091.Table{"x-foo": "bar"}))
	require.Eventually(t, func() bool {
		out, _, _ := e.cli("rabbitmqctl", "list_queues", "-q", "--no-table-headers")
		return out == "q1\t1\n"
	}, timeout, tick)
	defs := filepath.Join(t.TempDir(), "defs.json")

	const c = "rabbitmqctl"
	e.check(t, []step{
		{c, ctl("list_queues"), "Timeout: 60.0 seconds ...\nListing queues for vhost / ...\nname\tmessages\nq1\t1\n", "", 0},
		{c, ctl("list_queues", "-q", "name", "durable", "auto_delete", "arguments", "messages_ready", "consumers", "exclusive"),
			"name\tdurable\tauto_delete\targuments\tmessages_ready\tconsumers\texclusive\nq1\ttrue\tfalse\t[{\"x-max-length\",5}]\t1\t0\tfalse\n", "", 0},
		{c, ctl("list_queues", "--formatter", "json", "name", "messages", "arguments"),
			"[\n{\"name\":\"q1\",\"messages\":1,\"arguments\":[[\"x-max-length\",\"long\",5]]}\n]\n", "", 0},
		{c, ctl("list_queues", "-p", "nowhere"), "Timeout: 60.0 seconds ...\nListing queues for vhost nowhere ...\n", "", 0},
		{c, ctl("list_queues", "nosuchcol"), "",
			"Error (argument validation): Info key(s) nosuchcol are not supported\nArguments given:\n\tlist_queues nosuchcol\n\nUsage\n\n" + rabbitUsage(c) + "\n", 64},
		{c, ctl("list_exchanges", "-q", "--no-table-headers", "name", "type"), listExchanges(t, e), "", 0},
		{c, ctl("list_bindings"), "Listing bindings for vhost /...\nsource_name\tsource_kind\tdestination_name\tdestination_kind\trouting_key\targuments\n" +
			"\texchange\tq1\tqueue\tq1\t[]\nex1\texchange\tq1\tqueue\ta.#\t[{\"x-foo\",\"bar\"}]\n", "", 0},
		{c, ctl("list_consumers"), "Listing consumers in vhost / ...\n", "", 0},
		{c, ctl("list_users"), "Listing users ...\nuser\ttags\nguest\t[administrator]\n", "", 0},
		{c, ctl("list_users", "--formatter", "json"), "[\n{\"user\":\"guest\",\"tags\":[\"administrator\"]}\n]\n", "", 0},
		{c, ctl("list_vhosts"), "Listing vhosts ...\nname\n/\n", "", 0},
		{c, ctl("list_permissions"), "Listing permissions for vhost \"/\" ...\nuser\tconfigure\twrite\tread\nguest\t.*\t.*\t.*\n", "", 0},
		{c, ctl("list_policies"), "Listing policies for vhost \"/\" ...\n\n", "", 0},

		// Users.
		{c, ctl("add_user", "ann", "pw1"), "Adding user \"ann\" ...\nDone. Don't forget to grant the user permissions to some virtual hosts! See 'rabbitmqctl help set_permissions' to learn more.\n", "", 0},
		{c, ctl("add_user", "ann", "pw2"), "Adding user \"ann\" ...\n", "Error:\nUser \"ann\" already exists\n", 70},
		{c, ctl("change_password", "ann", "pw3"), "Changing password for user \"ann\" ...\n", "", 0},
		{c, ctl("change_password", "nobody", "x"), "Changing password for user \"nobody\" ...\n", "Error:\nUser \"nobody\" does not exist\n", 67},
		{c, ctl("set_user_tags", "ann", "management", "monitoring"), "Setting tags for user \"ann\" to [management, monitoring] ...\n", "", 0},
		{c, ctl("set_user_tags", "nobody", "x"), "Setting tags for user \"nobody\" to [x] ...\n", "Error:\nUser \"nobody\" does not exist\n", 67},
		{c, ctl("list_users", "-q"), "user\ttags\nann\t[management, monitoring]\nguest\t[administrator]\n", "", 0},

		// Vhosts and permissions.
		{c, ctl("add_vhost", "shop"), "Adding vhost \"shop\" ...\n", "", 0},
		{c, ctl("set_permissions", "-p", "shop", "ann", "^$", ".*", ".*"), "Setting permissions for user \"ann\" in vhost \"shop\" ...\n", "", 0},
		{c, ctl("set_permissions", "-p", "shop", "nobody", "^$", ".*", ".*"), "Setting permissions for user \"nobody\" in vhost \"shop\" ...\n", "Error:\nUser nobody does not exist\n", 67},
		{c, ctl("set_permissions", "-p", "nowhere", "ann", "^$", ".*", ".*"), "Setting permissions for user \"ann\" in vhost \"nowhere\" ...\n", "Error:\nVirtual host nowhere does not exist\n", 69},
		{c, ctl("list_permissions", "-p", "shop", "-q"), "user\tconfigure\twrite\tread\nann\t^$\t.*\t.*\nguest\t.*\t.*\t.*\n", "", 0},
		{c, ctl("clear_permissions", "-p", "shop", "ann"), "Clearing permissions for user \"ann\" in vhost \"shop\" ...\n", "", 0},
		{c, ctl("clear_permissions", "-p", "shop", "nobody"), "Clearing permissions for user \"nobody\" in vhost \"shop\" ...\n", "Error:\nUser nobody does not exist\n", 67},
		{c, ctl("delete_vhost", "shop"), "Deleting vhost \"shop\" ...\n", "", 0},
		{c, ctl("delete_vhost", "shop"), "Deleting vhost \"shop\" ...\n", "Virtual host 'shop' does not exist\n", 65},
		{c, ctl("delete_user", "ann"), "Deleting user \"ann\" ...\n", "", 0},
		{c, ctl("delete_user", "ann"), "Deleting user \"ann\" ...\n", "Error:\nUser \"ann\" does not exist\n", 67},

		// Policies.
		{c, ctl("set_policy", "ttl", "^q", `{"message-ttl":60000}`, "--priority", "1", "--apply-to", "queues"),
			"Setting policy \"ttl\" for pattern \"^q\" to \"{\"message-ttl\":60000}\" with priority \"1\" for vhost \"/\" ...\n", "", 0},
		{c, ctl("list_policies", "-q"), "vhost\tname\tpattern\tapply-to\tdefinition\tpriority\n/\tttl\t^q\tqueues\t{\"message-ttl\":60000}\t1\n", "", 0},
		{c, ctl("set_policy", "bad", "^q", "notjson"), "Setting policy \"bad\" for pattern \"^q\" to \"notjson\" with priority \"0\" for vhost \"/\" ...\n",
			"Error:\nJSON decoding error. Reason: badarg\n", 69},
		{c, ctl("clear_policy", "ttl"), "Clearing policy \"ttl\" on vhost \"/\" ...\n", "", 0},
		{c, ctl("clear_policy", "ttl"), "Clearing policy \"ttl\" on vhost \"/\" ...\n", "Error:\nParameter does not exist\n", 69},

		// Queues.
		{c, ctl("purge_queue", "q1"), "Purging queue 'q1' in vhost '/' ...\n", "", 0},
		{c, ctl("purge_queue", "nosuchq"), "Purging queue 'nosuchq' in vhost '/' ...\n", "Error:\nnot_found\n", 69},
		{c, ctl("delete_queue", "nosuchq"), "Deleting queue 'nosuchq' on vhost '/' ...\n", "Error:\nQueue not found\n", 64},

		// Definitions.
		{c, ctl("export_definitions", defs), fmt.Sprintf("Exporting definitions in JSON to a file at \"%s\" ...\n", defs), "", 0},
		{c, ctl("delete_queue", "q1"), "Deleting queue 'q1' on vhost '/' ...\nQueue was successfully deleted with 0 ready messages\n", "", 0},
		{c, ctl("import_definitions", defs), fmt.Sprintf("Importing definitions in JSON from a file at \"%s\" ...\nSuccessfully started definition import. This process is asynchronous and can take some time.\n", defs), "", 0},
		{c, ctl("list_queues", "-q", "name", "durable"), "name\tdurable\nq1\ttrue\n", "", 0},
		{c, ctl("import_definitions", "/nonexistent.json"), "",
			"Error (argument validation): Bad argument: File /nonexistent.json does not exist\nArguments given:\n\timport_definitions /nonexistent.json\n\nUsage\n\n" + rabbitUsage(c) + "\n", 65},

		// Limits, with the outputs of RabbitMQ 3.10.8's rabbitmqctl.
		{c, ctl("set_vhost_limits", `{"max-connections":5,"max-queues":7}`), "Setting vhost limits to \"{\"max-connections\":5,\"max-queues\":7}\" for vhost \"/\" ...\n", "", 0},
		{c, ctl("set_vhost_limits", `{"max-connections":5}`), "Setting vhost limits to \"{\"max-connections\":5}\" for vhost \"/\" ...\n", "", 0},
		{c, ctl("list_vhost_limits"), "Listing limits for vhost \"/\" ...\n{\"max-connections\":5}\n", "", 0},
		{c, ctl("list_vhost_limits", "--global"), "Listing limits for all vhosts ...\nvhost\tlimits\n/\t{\"max-connections\":5}\n", "", 0},
		{c, ctl("clear_vhost_limits"), "Clearing vhost \"/\" limits ...\n", "", 0},
		{c, ctl("list_vhost_limits"), "Listing limits for vhost \"/\" ...\n\n", "", 0},
		{c, ctl("set_vhost_limits", "-p", "nosuch", `{"max-queues":3}`), "Setting vhost limits to \"{\"max-queues\":3}\" for vhost \"nosuch\" ...\n", "Virtual host 'nosuch' does not exist\n", 65},
		{c, ctl("set_vhost_limits", `{"foo":3}`), "Setting vhost limits to \"{\"foo\":3}\" for vhost \"/\" ...\n",
			"Error:\nValidation failed\n\nUnrecognised terms [{<<\"foo\">>,3}] in limits\n\n", 69},
		{c, ctl("set_vhost_limits", `{"max-queues":"x"}`), "Setting vhost limits to \"{\"max-queues\":\"x\"}\" for vhost \"/\" ...\n",
			"Error:\nValidation failed\n\nmax-queues should be a number, actually was <<\"x\">>\n\n", 69},
		{c, ctl("set_vhost_limits", "notjson"), "Setting vhost limits to \"notjson\" for vhost \"/\" ...\n", "Error:\nJSON decoding error. Reason: badarg\n", 69},
		{c, ctl("clear_vhost_limits", "-p", "nosuch"), "Clearing vhost \"nosuch\" limits ...\n", "Error:\nParameter does not exist\n", 69},
		{c, ctl("set_user_limits", "guest", `{"max-channels":10}`), "Setting user limits to \"{\"max-channels\":10}\" for user \"guest\" ...\n", "", 0},
		{c, ctl("set_user_limits", "guest", `{"max-connections":3}`), "Setting user limits to \"{\"max-connections\":3}\" for user \"guest\" ...\n", "", 0},
		{c, ctl("list_user_limits"), "Listing limits for user \"guest\" ...\n{\"max-channels\":10,\"max-connections\":3}\n", "", 0},
		{c, ctl("list_user_limits", "--user", "guest", "--formatter", "json"), "{\"message\":\"{\\\"max-channels\\\":10,\\\"max-connections\\\":3}\"}\n", "", 0},
		{c, ctl("list_user_limits", "--global"), "Listing limits for all users ...\nuser\tlimits\nguest\t{\"max-channels\":10,\"max-connections\":3}\n", "", 0},
		{c, ctl("list_user_limits", "--user", "nosuch"), "Listing limits for user \"nosuch\" ...\n", "Error:\n{:no_such_user, \"nosuch\"}\n", 69},
		{c, ctl("clear_user_limits", "guest", "max-channels"), "Clearing \"max-channels\" limit for user \"guest\" ...\n", "", 0},
		{c, ctl("clear_user_limits", "guest", "all"), "Clearing all limits for user \"guest\" ...\n", "", 0},
		{c, ctl("set_user_limits", "nosuch", `{"max-channels":3}`), "Setting user limits to \"{\"max-channels\":3}\" for user \"nosuch\" ...\n", "Error:\n{:no_such_user, \"nosuch\"}\n", 69},
		{c, ctl("clear_user_limits", "nosuch", "all"), "Clearing all limits for user \"nosuch\" ...\n", "Error:\n{:no_such_user, \"nosuch\"}\n", 69},
		{c, ctl("set_user_limits", "guest", `{"max-queues":3}`), "Setting user limits to \"{\"max-queues\":3}\" for user \"guest\" ...\n",
			"Error:\nUnrecognised terms [{<<\"max-queues\">>,3}] in user-limits\n", 69},

		// Runtime parameters (shovels) and tracing.
		{c, ctl("list_parameters"), "Listing runtime parameters for vhost \"/\" ...\n\n", "", 0},
		{c, ctl("clear_parameter", "shovel", "nosuch"), "Clearing runtime parameter \"nosuch\" for component \"shovel\" on vhost \"/\" ...\n", "Error:\nParameter does not exist\n", 69},
		{c, ctl("set_parameter", "shovel", "s1", "notjson"), "Setting runtime parameter \"s1\" for component \"shovel\" to \"notjson\" in vhost \"/\" ...\n", "Error:\nJSON decoding error. Reason: badarg\n", 69},
		{c, ctl("set_parameter", "shovel", "s1", `{"src-uri":"amqp://","src-queue":"q1","dest-uri":"amqp://","dest-queue":"q2"}`),
			"Setting runtime parameter \"s1\" for component \"shovel\" to \"{\"src-uri\":\"amqp://\",\"src-queue\":\"q1\",\"dest-uri\":\"amqp://\",\"dest-queue\":\"q2\"}\" in vhost \"/\" ...\n", "", 0},
		{c, ctl("list_parameters", "-q"), "component\tname\tvalue\nshovel\ts1\t{\"dest-queue\":\"q2\",\"dest-uri\":\"amqp://\",\"src-queue\":\"q1\",\"src-uri\":\"amqp://\"}\n", "", 0},
		{c, ctl("clear_parameter", "shovel", "s1"), "Clearing runtime parameter \"s1\" for component \"shovel\" on vhost \"/\" ...\n", "", 0},
		{c, ctl("trace_on"), "Starting tracing for vhost \"/\" ...\nTrace enabled for vhost /\n", "", 0},
		{c, ctl("list_vhosts", "name", "tracing"), "Listing vhosts ...\nname\ttracing\n/\ttrue\n", "", 0},
		{c, ctl("trace_off"), "Stopping tracing for vhost \"/\" ...\nTrace disabled for vhost /\n", "", 0},

		{c, ctl("await_startup"), "", "", 0},
		{c, ctl("nosuchcmd"), "", "\nCommand 'nosuchcmd' not found. \n\nUsage\n\n" + rabbitUsage(c) + "\n", 64},
	})

	// A listed connection can be closed by name.
	out, _, code := e.cli(c, "list_connections", "-q", "--no-table-headers", "name", "user", "state")
	require.Equal(t, 0, code)
	name, rest, ok := strings.Cut(strings.TrimSpace(out), "\t")
	require.True(t, ok, out)
	require.Equal(t, "guest\trunning", rest)
	closed := conn.NotifyClose(make(chan *amqp091.Error, 1))
	e.check(t, []step{{c, ctl("close_connection", name, "go away"), "Closing connection " + name + ", reason: go away...\n", "", 0}})
	select {
	case err := <-closed:
		require.NotNil(t, err)
		require.Equal(t, 320, err.Code)
		require.Contains(t, err.Reason, "go away")
	case <-timeoutC():
		t.Fatal("the connection was not closed")
	}
}

// listExchanges is what list_exchanges name type prints for the broker's
// exchanges, in the API's order.
func listExchanges(t *testing.T, e *rabbitEnv) string {
	out, _, code := e.cli("rabbitmqctl", "list_exchanges", "--formatter", "json", "name", "type")
	require.Equal(t, 0, code)
	var xs []map[string]string
	require.NoError(t, json.Unmarshal([]byte(out), &xs), out)
	var b strings.Builder
	names := map[string]bool{}
	for _, x := range xs {
		fmt.Fprintf(&b, "%s\t%s\n", x["name"], x["type"])
		names[x["name"]] = true
	}
	for _, want := range []string{"", "amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match", "ex1"} {
		require.True(t, names[want], "exchange %q listed", want)
	}
	return b.String()
}

// TestRabbitmqDiagnostics: the health-check commands pass on a healthy
// broker and fail, with RabbitMQ's words and exit code 69, during an alarm
// or when the node cannot be reached.
func TestRabbitmqDiagnostics(t *testing.T) {
	e := startRabbitEnv(t)
	ls := e.broker.Listeners()
	require.Len(t, ls, 2)
	amqpPort, httpPort := ls[0].Port(), ls[1].Port()
	var version string
	{
		var ov map[string]any
		c := newClient(func(string) (string, bool) { return "", false })
		c.base = e.url
		require.NoError(t, c.call("GET", "/api/overview", nil, &ov))
		version = ov["rabbitmq_version"].(string)
	}
	const d = "rabbitmq-diagnostics"
	e.check(t, []step{
		{d, ctl("ping"), "Will ping warren@test. This only checks if the OS process is running and registered with epmd. Timeout: 60000 ms.\nPing succeeded\n", "", 0},
		{d, ctl("-q", "ping"), "Ping succeeded\n", "", 0},
		{d, ctl("check_running"), "Checking if RabbitMQ is running on node warren@test ...\nRabbitMQ on node warren@test is fully booted and running\n", "", 0},
		{d, ctl("check_port_connectivity"), fmt.Sprintf("Testing TCP connections to all active listeners on node warren@test ...\nSuccessfully connected to ports %s on node warren@test.\n", sortedPorts(amqpPort, httpPort)), "", 0},
		{d, ctl("check_local_alarms"), "Asking node warren@test to report any local resource alarms ...\nNode warren@test reported no local alarms\n", "", 0},
		{d, ctl("check_virtual_hosts"), "Checking if all vhosts are running on node warren@test ...\nNode warren@test reported all vhosts as running\n", "", 0},
		{d, ctl("server_version"), "Asking node warren@test for its RabbitMQ version...\n" + version + "\n", "", 0},
		{d, ctl("listeners"), fmt.Sprintf("Asking node warren@test to report its protocol listeners ...\n"+
			"Interface: 127.0.0.1, port: %d, protocol: amqp, purpose: AMQP 0-9-1 and AMQP 1.0\n"+
			"Interface: 127.0.0.1, port: %d, protocol: http, purpose: HTTP API\n", amqpPort, httpPort), "", 0},
		{d, ctl("check_local_alarms", "--formatter", "json"), "{\"result\":\"ok\"}\n", "", 0},
	})
	out, _, code := e.cli(d, "status")
	require.Equal(t, 0, code)
	require.Contains(t, out, "Status of node warren@test ...\n")
	require.Contains(t, out, "Alarms\n\n(none)\n")
	require.Contains(t, out, " * rabbitmq_management\n")
	require.Contains(t, out, fmt.Sprintf("Interface: 127.0.0.1, port: %d, protocol: amqp", amqpPort))

	e.broker.SetMemoryHighWatermark(1) // any process is above one byte
	e.check(t, []step{
		{d, ctl("check_local_alarms"), "Asking node warren@test to report any local resource alarms ...\n", "Error:\nMemory alarm on node warren@test\n", 69},
	})
	out, _, _ = e.cli("rabbitmqctl", "status")
	require.Contains(t, out, "Alarms\n\nMemory alarm\n")
	e.broker.SetMemoryHighWatermark(0)
	e.check(t, []step{
		{d, ctl("-q", "check_local_alarms"), "Node warren@test reported no local alarms\n", "", 0},
	})

	// A node that does not answer: RabbitMQ's error and exit code 69.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := "http://" + l.Addr().String()
	l.Close()
	stdout, stderr, code := e.cli(d, "--url", down, "-n", "warren@test", "check_running")
	require.Equal(t, 69, code)
	require.Equal(t, "", stdout)
	require.True(t, strings.HasPrefix(stderr, "Error: unable to perform an operation on node 'warren@test'. Please see diagnostics information and suggestions below.\n"), stderr)
	require.Contains(t, stderr, "unable to connect to the management API at "+down)
	e.check(t, []step{
		{d, ctl("--url", down, "-n", "warren@test", "ping"), "Will ping warren@test. This only checks if the OS process is running and registered with epmd. Timeout: 60000 ms.\n",
			"Error:\nFailed to connect and authenticate to warren@test in 60000 ms\n", 69},
		{d, ctl("--password", "wrong", "-n", "warren@test", "-q", "ping"), "", "Error:\nFailed to connect and authenticate to warren@test in 60000 ms\n", 69},
	})
	_, stderr, code = e.cli("rabbitmqctl", "--password", "wrong", "list_queues")
	require.Equal(t, 69, code)
	require.Contains(t, stderr, `refused user "guest" (401 Unauthorized)`)
	_, _, code = e.cli("rabbitmqctl", "--url", down, "await_startup", "--timeout", "0.2")
	require.Equal(t, 69, code)
}

func sortedPorts(a, b int) string {
	if a > b {
		a, b = b, a
	}
	return fmt.Sprintf("%d, %d", a, b)
}

// TestRabbitmqPlugins: the built-in plugins are listed and always enabled;
// an unknown one gets RabbitMQ's errors.
func TestRabbitmqPlugins(t *testing.T) {
	e := startRabbitEnv(t)
	var version string
	{
		out, _, _ := e.cli("rabbitmq-diagnostics", "-q", "server_version")
		version = strings.TrimSpace(out)
	}
	const p = "rabbitmq-plugins"
	e.check(t, []step{
		{p, ctl("list"), "Listing plugins with pattern \".*\" ...\n Configured: E = explicitly enabled; e = implicitly enabled\n | Status: * = running on warren@test\n |/\n" +
			"[E*] rabbitmq_consistent_hash_exchange " + version + "\n" +
			"[E*] rabbitmq_delayed_message_exchange " + version + "\n" +
			"[E*] rabbitmq_event_exchange           " + version + "\n" +
			"[E*] rabbitmq_management               " + version + "\n" +
			"[e*] rabbitmq_management_agent         " + version + "\n" +
			"[E*] rabbitmq_message_deduplication    " + version + "\n" +
			"[E*] rabbitmq_prometheus               " + version + "\n" +
			"[E*] rabbitmq_random_exchange          " + version + "\n" +
			"[E*] rabbitmq_shovel                   " + version + "\n" +
			"[E*] rabbitmq_shovel_management        " + version + "\n" +
			"[e*] rabbitmq_web_dispatch             " + version + "\n", "", 0},
		{p, ctl("list", "-q", "prometheus"), "[E*] rabbitmq_prometheus " + version + "\n", "", 0},
		{p, ctl("is_enabled", "rabbitmq_management"), "Asking node warren@test if plugin rabbitmq_management is enabled...\nPlugin rabbitmq_management is enabled on node warren@test\n", "", 0},
		{p, ctl("is_enabled", "rabbitmq_stomp"), "Asking node warren@test if plugin rabbitmq_stomp is enabled...\n",
			"Error:\nPlugin rabbitmq_stomp is not enabled on node warren@test. Enabled plugins and dependencies: rabbitmq_consistent_hash_exchange, rabbitmq_delayed_message_exchange, rabbitmq_event_exchange, rabbitmq_management, rabbitmq_management_agent, rabbitmq_message_deduplication, rabbitmq_prometheus, rabbitmq_random_exchange, rabbitmq_shovel, rabbitmq_shovel_management, rabbitmq_web_dispatch\n", 69},
		{p, ctl("enable", "rabbitmq_management"), "Enabling plugins on node warren@test:\nrabbitmq_management\nPlugin rabbitmq_management is built into Warren and always enabled.\nPlugin configuration unchanged.\n", "", 0},
		{p, ctl("enable", "foo_bar"), "Enabling plugins on node warren@test:\nfoo_bar\n", "Error:\n{:plugins_not_found, [:foo_bar]}\n", 70},
		{p, ctl("disable", "rabbitmq_prometheus"), "Disabling plugins on node warren@test:\nrabbitmq_prometheus\n",
			"Error:\nPlugin(s) rabbitmq_prometheus are built into Warren and always enabled: they cannot be disabled\n", 70},
		{p, ctl("disable", "foo_bar"), "Disabling plugins on node warren@test:\nfoo_bar\nPlugin configuration unchanged.\n", "", 0},
	})
}

// TestWarrenctlEnvironmentAndErrors: warrenctl takes its URL and
// credentials from the environment, says what it did, and its errors are
// readable sentences.
func TestWarrenctlEnvironmentAndErrors(t *testing.T) {
	e := startRabbitEnv(t)
	env := map[string]string{"WARREN_URL": e.url, "WARREN_USER": "guest", "WARREN_PASSWORD": "guest"}
	lookup := func(k string) (string, bool) {
		if v, ok := env[k]; ok {
			return v, ok
		}
		return noEnv(k)
	}
	w := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := run("warrenctl", args, lookup, &out, &errb)
		return out.String(), errb.String(), code
	}
	for _, tc := range []struct {
		args           []string
		stdout, stderr string
		code           int
	}{
		{[]string{"declare", "queue", "w.q", "--durable"}, "declared queue \"w.q\" in vhost \"/\"\n", "", 0},
		{[]string{"purge", "w.q"}, "purged queue \"w.q\" in vhost \"/\"\n", "", 0},
		{[]string{"add_user", "bob", "pw"}, "added user \"bob\"\n", "", 0},
		{[]string{"add_user", "bob", "pw"}, "", "warrenctl: user \"bob\" already exists\n", 1},
		{[]string{"delete", "queue", "w.q"}, "deleted queue \"w.q\" in vhost \"/\"\n", "", 0},
		{[]string{"delete", "queue", "w.q"}, "", "warrenctl: Not Found (Object Not Found, HTTP 404)\n", 1},
	} {
		out, errs, code := w(tc.args...)
		require.Equal(t, tc.stdout, out, "%v", tc.args)
		require.Equal(t, tc.stderr, errs, "%v", tc.args)
		require.Equal(t, tc.code, code, "%v", tc.args)
	}
	// bob has no administrator tag: the API refuses, in words apart.
	env["WARREN_USER"], env["WARREN_PASSWORD"] = "bob", "pw"
	_, errs, code := w("set_user_tags", "bob", "monitoring")
	require.Equal(t, 1, code)
	require.Equal(t, "warrenctl: Not management user (not_authorised, HTTP 401)\n", errs)
	env["WARREN_USER"], env["WARREN_PASSWORD"] = "guest", "guest"
	require.Equal(t, 0, func() int { _, _, c := w("set_user_tags", "bob", "monitoring"); return c }())
	env["WARREN_USER"], env["WARREN_PASSWORD"] = "bob", "pw"
	_, errs, code = w("add_vhost", "v")
	require.Equal(t, 1, code)
	require.Equal(t, "warrenctl: Not administrator user (not_authorised, HTTP 401)\n", errs)
}

// TestRabbitDefaults: in the broker's environment the CLI logs in as the
// node's default user and finds its management port, from RABBITMQ_* over
// conf.d over rabbitmq.conf, with WARREN_* over all of them.
func TestRabbitDefaults(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rabbitmq.conf"), []byte("default_user = file\ndefault_pass = 'p#1' \nmanagement.tcp.port = 15673 # comment\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "conf.d", "20-user.conf"), []byte("default_user = confd\n"), 0o644))
	for _, tc := range []struct {
		name            string
		env             map[string]string
		url, user, pass string
	}{
		{"nothing", map[string]string{"WARREN_RABBITMQ_DIR": ""}, defaultURL, "guest", "guest"},
		{"files", map[string]string{"WARREN_RABBITMQ_DIR": dir}, "http://127.0.0.1:15673", "confd", "p#1"},
		{"RABBITMQ_DEFAULT_*", map[string]string{"WARREN_RABBITMQ_DIR": dir, "RABBITMQ_DEFAULT_USER": "env", "RABBITMQ_DEFAULT_PASS": "envpw"}, "http://127.0.0.1:15673", "env", "envpw"},
		{"WARREN_HTTP_LISTEN", map[string]string{"WARREN_RABBITMQ_DIR": dir, "WARREN_HTTP_LISTEN": ":25673"}, "http://127.0.0.1:25673", "confd", "p#1"},
		{"WARREN_*", map[string]string{"WARREN_RABBITMQ_DIR": dir, "RABBITMQ_DEFAULT_USER": "env", "WARREN_USER": "w", "WARREN_PASSWORD": "wpw", "WARREN_URL": "http://h:1"}, "http://h:1", "w", "wpw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			require.Equal(t, tc.url, c.base)
			require.Equal(t, tc.user, c.user)
			require.Equal(t, tc.pass, c.password)
		})
	}
}

// TestNodeURL: -n NAME@HOST points the CLI at HOST's management API; the
// local host, or no host, keeps the URL it had.
func TestNodeURL(t *testing.T) {
	local, _ := os.Hostname()
	for _, tc := range []struct{ node, base, want string }{
		{"rabbit@broker1", "http://127.0.0.1:15672", "http://broker1:15672"},
		{"rabbit@broker1", "https://127.0.0.1", "https://broker1"},
		{"rabbit@localhost", "http://127.0.0.1:15673", "http://127.0.0.1:15673"},
		{"rabbit@" + local, "http://127.0.0.1:15672", "http://127.0.0.1:15672"},
		{"rabbit", "http://127.0.0.1:15672", "http://127.0.0.1:15672"},
	} {
		require.Equal(t, tc.want, nodeURL(tc.node, tc.base), tc.node)
	}
}
