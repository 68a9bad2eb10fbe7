package main

import (
	"bytes"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp/amqptest"
	"github.com/warrenmq/warren/management"
)

func TestWarrenctl(t *testing.T) {
	broker := amqptest.NewServer(t)
	srv := broker.Server
	api := management.New(srv, management.Options{})
	hs := httptest.NewServer(api)
	t.Cleanup(func() {
		hs.Close()
		api.Close()
	})
	ctl := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := run("warrenctl", append([]string{"--url", hs.URL}, args...), noEnv, &out, &errb)
		return out.String() + errb.String(), code
	}
	ok := func(args ...string) string {
		out, code := ctl(args...)
		require.Equal(t, 0, code, out)
		return out
	}
	ok("declare", "queue", "ctl.q", "--durable")
	require.Contains(t, ok("list", "queues"), "ctl.q")
	require.Contains(t, ok("list", "exchanges"), "amq.topic")
	require.Contains(t, ok("publish", "", "ctl.q", "hello"), "routed")
	require.Contains(t, ok("get", "ctl.q", "--count", "5"), "hello")
	ok("purge", "ctl.q")
	require.Contains(t, ok("list", "bindings"), "ctl.q")
	require.Contains(t, ok("list", "connections"), "name")

	file := filepath.Join(t.TempDir(), "defs.json")
	ok("export", file)
	ok("delete", "queue", "ctl.q")
	require.NotContains(t, ok("list", "queues"), "ctl.q")
	ok("import", file)
	require.Contains(t, ok("list", "queues"), "ctl.q")

	// Dead letters: work -> dlx -> work.dlq.
	conn, err := amqp091.Dial(broker.URL)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.ExchangeDeclare("dlx", "fanout", true, false, false, false, nil))
	_, err = ch.QueueDeclare("work.dlq", true, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind("work.dlq", "", "dlx", false, nil))
	_, err = ch.QueueDeclare("work", true, false, false, false, amqp091.Table{"x-dead-letter-exchange": "dlx"})
	require.NoError(t, err)
	for range 2 {
		require.NoError(t, ch.Publish("", "work", false, false, amqp091.Publishing{Body: []byte("poison")}))
	}
	for range 2 {
		var d amqp091.Delivery
		require.Eventually(t, func() bool {
			var ok bool
			d, ok, err = ch.Get("work", false)
			return err == nil && ok
		}, 5*time.Second, 5*time.Millisecond)
		require.NoError(t, d.Reject(false))
	}
	require.Eventually(t, func() bool {
		q, err := ch.QueueDeclarePassive("work.dlq", true, false, false, false, nil)
		return err == nil && q.Messages == 2
	}, 5*time.Second, 5*time.Millisecond)
	out := ok("dlq", "inspect", "work.dlq")
	require.Contains(t, out, "rejected")
	require.Contains(t, out, "poison")
	require.Contains(t, ok("dlq", "replay", "work.dlq", "--limit", "1"), "replayed 1, skipped 0, 1 left")
	require.Contains(t, ok("dlq", "replay", "work.dlq", "--to", "original"), "replayed 1, skipped 0, 0 left")
	q, err := ch.QueueDeclarePassive("work", true, false, false, false, nil)
	require.NoError(t, err)
	require.Equal(t, 2, q.Messages)

	_, code := ctl("bogus")
	require.Equal(t, 2, code)
	out, code = ctl("delete", "queue", "nope")
	require.Equal(t, 1, code)
	require.Contains(t, out, "404")
}

// TestWarrenctlAccess: the rabbitmqctl-style commands make a vhost, a user
// and permissions the user can log in with over AMQP, change them, and
// delete them.
func TestWarrenctlAccess(t *testing.T) {
	broker := amqptest.NewServer(t)
	api := management.New(broker.Server, management.Options{})
	hs := httptest.NewServer(api)
	t.Cleanup(func() {
		hs.Close()
		api.Close()
	})
	ctl := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := run("warrenctl", append([]string{"--url", hs.URL}, args...), noEnv, &out, &errb)
		return out.String() + errb.String(), code
	}
	dial := func(user, password, vh string) error {
		conn, err := amqp091.Dial("amqp://" + user + ":" + password + "@" + broker.Addr + "/" + vh)
		if err == nil {
			conn.Close()
		}
		return err
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string // a substring of the output
	}{
		{[]string{"add_vhost", "shop", "--description", "the shop"}, 0, ""},
		{[]string{"add_user", "ann", "pw1", "--tags", "monitoring"}, 0, ""},
		{[]string{"--vhost", "shop", "set_permissions", "ann", "^ann\\.", ".*", ".*"}, 0, ""},
		{[]string{"list", "vhosts"}, 0, "the shop"},
		{[]string{"list", "users"}, 0, "monitoring"},
		{[]string{"--vhost", "shop", "list", "permissions"}, 0, "^ann\\."},
		{[]string{"change_password", "ann", "pw2"}, 0, ""},
		{[]string{"set_user_tags", "ann", "management", "policymaker"}, 0, ""},
		{[]string{"list", "users"}, 0, "management,policymaker"},
		{[]string{"add_user", "ann"}, 2, "add_user NAME PASSWORD"},
		{[]string{"set_permissions", "nobody", ".*", ".*", ".*"}, 1, "vhost_or_user_not_found"},
	} {
		out, code := ctl(tc.args...)
		require.Equal(t, tc.code, code, "%v: %s", tc.args, out)
		require.Contains(t, out, tc.out, "%v", tc.args)
	}
	require.NoError(t, dial("ann", "pw2", "shop"), "the password changed and the tags kept it")
	require.Error(t, dial("ann", "pw1", "shop"))

	for _, args := range [][]string{
		{"--vhost", "shop", "clear_permissions", "ann"},
		{"delete_user", "ann"},
		{"delete_vhost", "shop"},
	} {
		out, code := ctl(args...)
		require.Equal(t, 0, code, "%v: %s", args, out)
	}
	out, _ := ctl("list", "vhosts")
	require.NotContains(t, out, "shop")
	out, code := ctl("delete_user", "ann")
	require.Equal(t, 1, code)
	require.Contains(t, out, "404")
}

// noEnv is an empty environment that also keeps the CLI away from this
// machine's /etc/rabbitmq.
func noEnv(k string) (string, bool) { return "", k == "WARREN_RABBITMQ_DIR" }
