package management_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// TestUIAssets: "/" is the UI's page and its assets come with their types,
// without credentials; the API still answers under /api/.
func TestUIAssets(t *testing.T) {
	e := start(t)
	for path, ct := range map[string]string{
		"/":             "text/html; charset=utf-8",
		"/ui/":          "text/html; charset=utf-8",
		"/ui/app.js":    "text/javascript; charset=utf-8",
		"/ui/style.css": "text/css; charset=utf-8",
	} {
		resp, err := http.Get(e.http.URL + path)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode, path)
		require.Equal(t, ct, resp.Header.Get("Content-Type"), path)
		require.NotEmpty(t, b, path)
		if path == "/" {
			require.Contains(t, string(b), `<script src="/ui/app.js">`)
		}
	}
	for _, path := range []string{"/ui/nope.js", "/ui/../api.go", "/nope"} {
		resp, err := http.Get(e.http.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 404, resp.StatusCode, path)
	}
	require.Equal(t, 200, e.do("GET", "/api/overview", nil, nil))
	require.Equal(t, 401, e.doAs("guest", "wrong", "GET", "/api/overview", nil, nil))
}

// TestUIChromium renders the UI in headless Chromium and checks the DOM.
func TestUIChromium(t *testing.T) {
	const bin = "/usr/bin/chromium"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("WARREN_REQUIRE_UI") == "1" {
			t.Fatalf("WARREN_REQUIRE_UI=1 but %s is missing: apt-get install -y chromium", bin)
		}
		t.Skip("install chromium: apt-get install -y chromium")
	}
	e := start(t)
	_, ch := e.channel()
	require.NoError(t, ch.Confirm(false))
	_, err := ch.QueueDeclare("ui.orders", true, false, false, false, amqp091.Table{"x-dead-letter-exchange": "ui.dlx"})
	require.NoError(t, err)
	require.NoError(t, ch.ExchangeDeclare("ui.dlx", "fanout", true, false, false, false, nil))
	_, err = ch.QueueDeclare("ui.orders.dlq", true, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind("ui.orders.dlq", "", "ui.dlx", false, nil))
	for range 3 {
		dc, err := ch.PublishWithDeferredConfirmWithContext(t.Context(), "", "ui.orders", false, false,
			amqp091.Publishing{Body: []byte("order")})
		require.NoError(t, err)
		ok, err := dc.WaitContext(t.Context())
		require.NoError(t, err)
		require.True(t, ok)
	}

	// The queue page: its name and message count, fetched from the API.
	dom := dumpDOM(t, bin, e.http.URL+"/#/queues/%2F/ui.orders?user=guest&password=guest")
	require.Contains(t, dom, `<span id="q-name">ui.orders</span>`)
	require.Contains(t, dom, `<td id="q-messages">3</td>`)
	require.Contains(t, dom, `<td id="q-ready">3</td>`)

	// The queue list highlights the dead-letter queue.
	dom = dumpDOM(t, bin, e.http.URL+"/#/queues?user=guest&password=guest")
	require.Contains(t, dom, `<tr class="dlq"><td>/</td><td><a href="#/queues/%2F/ui.orders.dlq">ui.orders.dlq</a>`)
	require.NotContains(t, dom, `<tr class="dlq"><td>/</td><td><a href="#/queues/%2F/ui.orders">`)

	// The policies page lists what the API holds.
	require.Equal(t, http.StatusCreated, e.do("PUT", "/api/policies/%2F/ui-cap", map[string]any{
		"pattern": `^ui\.`, "apply-to": "queues", "definition": map[string]any{"max-length": 100},
	}, nil))
	dom = dumpDOM(t, bin, e.http.URL+"/#/policies?user=guest&password=guest")
	require.Contains(t, dom, `<td>ui-cap</td><td>^ui\.</td><td>queues</td>`)
}

// dumpDOM loads url in headless Chromium and returns the rendered DOM.
func dumpDOM(t *testing.T, bin, url string) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+dir, "--virtual-time-budget=5000", "--dump-dom", url)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	t.Logf("chromium took %v for %s", time.Since(start).Round(time.Millisecond), url)
	require.NoError(t, err, "chromium: %s", stderr.String())
	return string(out)
}
