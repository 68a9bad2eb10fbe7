package main

import (
	"bytes"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp/amqptest"
	"github.com/warrenmq/warren/management"
	"github.com/warrenmq/warren/shovel"
)

// TestWarrenctlShovels drives a shovel's life with the rabbitmqctl-style
// commands: set_parameter, shovel_status, restart_shovel, delete_shovel.
func TestWarrenctlShovels(t *testing.T) {
	broker := amqptest.NewServer(t)
	shovels, err := shovel.NewManager(shovel.Options{Store: broker.Storage(), Local: broker.DialDirect})
	require.NoError(t, err)
	api := management.New(broker.Server, management.Options{Shovels: shovels})
	hs := httptest.NewServer(api)
	t.Cleanup(func() {
		hs.Close()
		api.Close()
		shovels.Close()
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
	for _, tc := range []struct {
		args []string
		want string // in the output; the command fails
	}{
		{[]string{"set_parameter", "shovel", "s", `{"src-uri":"amqp://"}`}, "Must specify 'src-exchange' or 'src-queue'"},
		{[]string{"set_parameter", "shovel", "s", `not json`}, "not JSON"},
		{[]string{"restart_shovel", "nope"}, "404"},
		{[]string{"delete_shovel", "nope"}, "404"},
	} {
		out, code := ctl(tc.args...)
		require.NotEqual(t, 0, code, out)
		require.Contains(t, out, tc.want)
	}
	ok("set_parameter", "shovel", "s", `{"src-uri":"amqp://","src-queue":"a","dest-uri":"amqp://","dest-queue":"b"}`)
	require.Contains(t, ok("list_parameters"), `"src-queue":"a"`)
	require.Eventually(t, func() bool {
		out, _ := ctl("shovel_status")
		return bytes.Contains([]byte(out), []byte("running"))
	}, 5*time.Second, 20*time.Millisecond)
	ok("restart_shovel", "s")
	ok("delete_shovel", "s")
	require.NotContains(t, ok("shovel_status"), " s ")
	require.NotContains(t, ok("list_parameters"), "src-queue")
}
