package management_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/warrenmq/warren/amqp/amqptest"
	"github.com/warrenmq/warren/management"
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

// TestUIBrowser drives the web UI in headless Chromium as a person would:
// real clicks and typing, against a broker that real AMQP clients load. One
// browser and one broker for every step, to keep it short; each step keeps
// a screenshot under $WARREN_ARTIFACTS/ui (or the test's temporary
// directory).
func TestUIBrowser(t *testing.T) {
	const bin = "/usr/bin/chromium"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("WARREN_REQUIRE_UI") == "1" {
			t.Fatalf("WARREN_REQUIRE_UI=1 but %s is missing: apt-get install -y chromium", bin)
		}
		t.Skip("install chromium: apt-get install -y chromium")
	}
	e := startUI(t)
	shots := os.Getenv("WARREN_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	}
	shots = filepath.Join(shots, "ui")
	require.NoError(t, os.MkdirAll(shots, 0o755))
	t.Logf("screenshots in %s", shots)

	dir := t.TempDir()
	actx, cancel := chromedp.NewExecAllocator(t.Context(), chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(dir),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1280, 1000), chromedp.Env("HOME="+dir))
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The browser starts with the first action and lives as long as the
	// context that action ran with: this one, not a step's timeout.
	require.NoError(t, chromedp.Do(ctx))
	b := &browser{t: t, ctx: ctx, base: e.http.URL, shots: shots}

	step := func(name string, f func(t *testing.T)) {
		t.Helper()
		start := time.Now()
		t.Run(name, func(t *testing.T) {
			b.t = t
			f(t)
		})
		t.Logf("%s took %v", name, time.Since(start).Round(time.Millisecond))
		if t.Failed() {
			t.FailNow()
		}
	}

	step("login form", func(t *testing.T) {
		b.do(chromedp.Navigate(b.base + "/"))
		b.do(chromedp.WaitVisible(chromedp.CSS("form#login")))
		b.typeIn("form#login input[name=username]", "guest")
		b.typeIn("form#login input[name=password]", "wrong")
		b.click("form#login button[type=submit]")
		b.wait(`document.querySelector('form#login p.error') !== null`)
		b.shot("login-refused")
		b.typeIn("form#login input[name=username]", "guest")
		b.typeIn("form#login input[name=password]", "guest")
		b.click("form#login button[type=submit]")
		b.do(chromedp.WaitVisible(chromedp.CSS("#chart-queued")))
		require.Equal(t, "guest", b.text("#user"))
		// Forms ask before deleting: the browser answers yes.
		b.eval(`window.confirm = () => true`)
		b.click("#logout")
		b.do(chromedp.WaitVisible(chromedp.CSS("form#login")))
	})

	step("login by URL", func(t *testing.T) {
		b.do(chromedp.Navigate(b.base + "/#/login/guest/guest"))
		b.do(chromedp.WaitVisible(chromedp.CSS("#chart-rates")))
		loc, err := chromedp.Run(b.ctx, chromedp.Location())
		require.NoError(t, err)
		require.NotContains(t, loc, "guest", "the password stays out of the address")
		b.eval(`window.confirm = () => true`)
	})

	// A publisher and a consumer over AMQP, for charts to show.
	loadCtx, stopLoad := context.WithCancel(t.Context())
	loadDone := make(chan struct{})
	conn, err := amqp091.DialConfig(e.amqpURL, amqp091.Config{Properties: amqp091.Table{"connection_name": "ui-load"}})
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare("ui.load", false, false, false, false, nil)
	require.NoError(t, err)
	go func() {
		defer close(loadDone)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-loadCtx.Done():
				return
			case <-tick.C:
				if ch.PublishWithContext(loadCtx, "", "ui.load", false, false, amqp091.Publishing{Body: []byte("load")}) != nil {
					return
				}
			}
		}
	}()
	defer func() { stopLoad(); <-loadDone }()

	step("overview charts move under load", func(t *testing.T) {
		b.click(`#nav a[href="#/overview"]`)
		// The charts redraw each second from the node's samples; publishes
		// and the queue's growth must show as lines above zero.
		b.wait(`Number(document.querySelector('#chart-rates path[data-series=publish]')?.dataset.max) > 0`)
		b.wait(`Number(document.querySelector('#chart-queued path[data-series=messages]')?.dataset.max) > 0`)
		require.GreaterOrEqual(t, b.number(`Number(document.querySelector('#chart-queued path[data-series=messages]').dataset.points)`), 10.0)
		first := b.number(`Number(document.querySelector('#chart-queued [data-legend=messages]').textContent.replace(/,/g, ''))`)
		b.wait(fmt.Sprintf(`Number(document.querySelector('#chart-queued [data-legend=messages]').textContent.replace(/,/g, '')) > %v`, first))
		// Node facts as RabbitMQ's overview shows them.
		b.wait(`document.querySelectorAll('tr.node').length === 1`)
		nodeRow := b.text("tr.node")
		for _, want := range []string{"MiB", "limit", "of"} {
			require.Contains(t, nodeRow, want)
		}
		require.Equal(t, "No resource alarms.", b.text("#alarms"))
		require.Contains(t, b.text("table.list:has(tr.listener)"), "amqp")
		b.shot("overview")
	})

	step("connection and channel pages", func(t *testing.T) {
		b.click(`#nav a[href="#/connections"]`)
		b.wait(`[...document.querySelectorAll('main a')].some(a => a.href.includes('#/connections/'))`)
		b.shot("connections")
		b.click(`main td a[href^="#/connections/"]`)
		b.do(chromedp.WaitVisible(chromedp.CSS("#client-properties")))
		require.Contains(t, b.text("#client-properties"), "ui-load")
		require.Contains(t, b.text("#client-properties"), "publisher_confirms")
		b.wait(`Number(document.querySelector('#chart-data path[data-series=recv_oct]')?.dataset.max) > 0`)
		b.shot("connection")
		b.click(`main td a[href^="#/channels/"]`)
		b.wait(`Number(document.querySelector('#chart-channel path[data-series=publish]')?.dataset.max) > 0`)
		b.shot("channel")
		b.click(`#nav a[href="#/channels"]`)
		b.do(chromedp.WaitVisible(chromedp.CSS(`main td a[href^="#/channels/"]`)))
		b.shot("channels")
	})
	stopLoad()
	<-loadDone

	step("add a queue with the form", func(t *testing.T) {
		b.click(`#nav a[href="#/queues"]`)
		b.do(chromedp.WaitVisible(chromedp.CSS("form#add-queue")))
		b.typeIn("form#add-queue input[name=name]", "ui.added")
		b.typeIn("form#add-queue textarea[name=arguments]", `{"x-max-length": 50}`)
		b.click("form#add-queue button[type=submit]")
		b.wait(`[...document.querySelectorAll('main table.list a')].some(a => a.textContent === 'ui.added')`)
		require.Contains(t, b.text("#flash"), "Queue ui.added added.")
		b.shot("queues")
		var q map[string]any
		require.Equal(t, 200, e.do("GET", "/api/queues/%2F/ui.added", nil, &q))
		require.Equal(t, map[string]any{"x-max-length": float64(50)}, q["arguments"])

		// A quorum queue, through the type select.
		b.typeIn("form#add-queue input[name=name]", "ui.quorum")
		b.do(chromedp.SetValue(chromedp.CSS("form#add-queue select[name=type]"), "quorum"))
		b.click("form#add-queue button[type=submit]")
		b.wait(`[...document.querySelectorAll('main table.list tr')].some(tr => tr.querySelector('a')?.textContent === 'ui.quorum' && tr.textContent.includes('quorum'))`)
		require.Equal(t, 200, e.do("GET", "/api/queues/%2F/ui.quorum", nil, &q))
		require.Equal(t, "quorum", q["type"])
	})

	step("publish and get on the queue page", func(t *testing.T) {
		b.click(`main table.list a[href="#/queues/%2F/ui.added"]`)
		b.do(chromedp.WaitVisible(chromedp.CSS("#q-name")))
		b.click(`details:has(form#publish) summary`)
		b.typeIn("form#publish textarea[name=payload]", "hello from the UI")
		b.click("form#publish button[type=submit]")
		b.wait(`document.querySelector('#flash')?.textContent === 'Message published.'`)
		b.wait(`document.querySelector('#q-messages')?.textContent === '1'`)
		b.click("form#get button[type=submit]")
		b.wait(`document.querySelector('#messages pre.payload')?.textContent === 'hello from the UI'`)
		b.shot("queue")
		// The default ack mode requeues: the message is still there.
		var q map[string]any
		require.Equal(t, 200, e.do("GET", "/api/queues/%2F/ui.added", nil, &q))
		require.Equal(t, float64(1), q["messages"])
		// Purge, as when repairing a dead-letter queue.
		b.click("#purge")
		b.wait(`document.querySelector('#q-messages')?.textContent === '0'`)
	})

	step("add and delete an exchange and a binding", func(t *testing.T) {
		b.click(`#nav a[href="#/exchanges"]`)
		b.do(chromedp.WaitVisible(chromedp.CSS("form#add-exchange")))
		b.typeIn("form#add-exchange input[name=name]", "ui.events")
		b.do(chromedp.SetValue(chromedp.CSS("form#add-exchange select[name=type]"), "topic"))
		b.click("form#add-exchange button[type=submit]")
		b.wait(`[...document.querySelectorAll('main table.list a')].some(a => a.textContent === 'ui.events')`)
		b.shot("exchanges")
		b.click(`main table.list a[href="#/exchanges/%2F/ui.events"]`)
		b.do(chromedp.WaitVisible(chromedp.CSS("#x-name")))
		require.Equal(t, "topic", b.text("#x-type"))
		b.typeIn(`form#add-binding input[name=destination]`, "ui.added")
		b.typeIn(`form#add-binding input[name=routing_key]`, "orders.#")
		b.click(`form#add-binding button[type=submit]`)
		b.wait(`document.querySelectorAll('tr.binding').length === 1`)
		require.Contains(t, b.text("tr.binding"), "orders.#")
		// Publish through the exchange: its chart shows the message in and out.
		b.click(`details:has(form#publish) summary`)
		b.typeIn("form#publish input[name=routing_key]", "orders.new")
		b.typeIn("form#publish textarea[name=payload]", "routed by topic")
		b.click("form#publish button[type=submit]")
		b.wait(`document.querySelector('#flash')?.textContent === 'Message published.'`)
		b.wait(`document.querySelector('#x-out')?.textContent === '1'`)
		b.wait(`Number(document.querySelector('#chart-exchange path[data-series=publish_in]')?.dataset.max) > 0`)
		b.shot("exchange")
		var bs []map[string]any
		require.Equal(t, 200, e.do("GET", "/api/bindings/%2F/e/ui.events/q/ui.added", nil, &bs))
		require.Len(t, bs, 1)
		b.click("tr.binding button.unbind")
		b.wait(`document.querySelectorAll('tr.binding').length === 0`)
		require.Equal(t, 200, e.do("GET", "/api/bindings/%2F/e/ui.events/q/ui.added", nil, &bs))
		require.Empty(t, bs)
		b.click("#delete-exchange")
		b.wait(`location.hash === '#/exchanges'`)
		b.wait(`document.querySelector('form#add-exchange') && ![...document.querySelectorAll('main table.list a')].some(a => a.textContent === 'ui.events')`)
		require.Equal(t, 404, e.do("GET", "/api/exchanges/%2F/ui.events", nil, nil))
	})

	step("add and delete a vhost", func(t *testing.T) {
		b.click(`#nav a[href="#/vhosts"]`)
		b.do(chromedp.WaitVisible(chromedp.CSS("form#add-vhost")))
		b.typeIn("form#add-vhost input[name=name]", "ui-vh")
		b.click("form#add-vhost button[type=submit]")
		b.wait(`document.querySelector('button.delete-vhost[data-name="ui-vh"]') !== null`)
		b.shot("vhosts")
		require.Equal(t, 200, e.do("GET", "/api/vhosts/ui-vh", nil, nil))
	})

	step("add a user, set and clear a permission, delete the user", func(t *testing.T) {
		b.click(`#nav a[href="#/users"]`)
		b.do(chromedp.WaitVisible(chromedp.CSS("form#add-user")))
		b.typeIn("form#add-user input[name=username]", "ui.alice")
		b.typeIn("form#add-user input[name=password]", "s3cret")
		b.typeIn("form#add-user input[name=tags]", "monitoring")
		b.click("form#add-user button[type=submit]")
		b.wait(`[...document.querySelectorAll('tr.user a')].some(a => a.textContent === 'ui.alice')`)
		b.shot("users")
		require.Equal(t, 200, e.doAs("ui.alice", "s3cret", "GET", "/api/overview", nil, nil))
		b.click(`tr.user a[href="#/users/ui.alice"]`)
		b.do(chromedp.WaitVisible(chromedp.CSS("form#set-permission")))
		require.Equal(t, "monitoring", b.text("#user-tags"))
		b.do(chromedp.SetValue(chromedp.CSS("form#set-permission select[name=vhost]"), "ui-vh"))
		b.typeIn("form#set-permission input[name=write]", "^ui\\.")
		b.click("form#set-permission button[type=submit]")
		b.wait(`document.querySelectorAll('tr.permission').length === 1`)
		b.shot("user")
		var p map[string]any
		require.Equal(t, 200, e.do("GET", "/api/permissions/ui-vh/ui.alice", nil, &p))
		require.Equal(t, `^ui\.`, p["write"])
		b.click("tr.permission button.clear-permission")
		b.wait(`document.querySelectorAll('tr.permission').length === 0`)
		require.Equal(t, 404, e.do("GET", "/api/permissions/ui-vh/ui.alice", nil, nil))
		b.click("#delete-user")
		b.wait(`location.hash === '#/users'`)
		b.wait(`document.querySelector('form#add-user') && ![...document.querySelectorAll('tr.user a')].some(a => a.textContent === 'ui.alice')`)
		require.Equal(t, 404, e.do("GET", "/api/users/ui.alice", nil, nil))
	})

	step("delete the vhost", func(t *testing.T) {
		b.click(`#nav a[href="#/vhosts"]`)
		b.click(`button.delete-vhost[data-name="ui-vh"]`)
		b.wait(`document.querySelector('form#add-vhost') && document.querySelector('button.delete-vhost[data-name="ui-vh"]') === null`)
		require.Equal(t, 404, e.do("GET", "/api/vhosts/ui-vh", nil, nil))
	})

	step("add and delete a policy", func(t *testing.T) {
		b.click(`#nav a[href="#/policies"]`)
		b.do(chromedp.WaitVisible(chromedp.CSS("form#policy")))
		b.typeIn("form#policy input[name=name]", "ui-cap")
		b.typeIn("form#policy input[name=pattern]", `^ui\.`)
		b.do(chromedp.SetValue(chromedp.CSS("form#policy select[name=apply-to]"), "queues"))
		b.typeIn("form#policy textarea[name=definition]", `{"max-length": 100}`)
		b.click("form#policy button[type=submit]")
		b.wait(`document.querySelector('button.delete-policy[data-name="ui-cap"]') !== null`)
		require.Contains(t, b.text("tr.policy"), "max-length")
		b.shot("policies")
		var p map[string]any
		require.Equal(t, 200, e.do("GET", "/api/policies/%2F/ui-cap", nil, &p))
		require.Equal(t, "queues", p["apply-to"])
		b.click(`button.delete-policy[data-name="ui-cap"]`)
		b.wait(`document.querySelector('form#policy') && document.querySelector('button.delete-policy[data-name="ui-cap"]') === null`)
		require.Equal(t, 404, e.do("GET", "/api/policies/%2F/ui-cap", nil, nil))
	})

	step("page, sort and filter 10 000 queues", func(t *testing.T) {
		const n = 10_000
		start := time.Now()
		for i := range n {
			_, err := ch.QueueDeclare(fmt.Sprintf("ui.bulk.%05d", i), false, false, false, true, nil)
			require.NoError(t, err)
		}
		_, err := ch.QueueDeclarePassive(fmt.Sprintf("ui.bulk.%05d", n-1), false, false, false, false, nil)
		require.NoError(t, err)
		t.Logf("%d queues declared in %v", n, time.Since(start).Round(time.Millisecond))
		total := n + 3 // ui.load, ui.added and ui.quorum
		start = time.Now()
		b.click(`#nav a[href="#/queues"]`)
		b.wait(fmt.Sprintf(`document.querySelector('#queues-counts')?.textContent === '%s matching of %s'`, commas(total), commas(total)))
		t.Logf("first page of %d queues shown in %v", total, time.Since(start).Round(time.Millisecond))
		require.Equal(t, 100.0, b.number(`document.querySelectorAll('main table.list tbody tr').length`))
		require.Equal(t, float64((total+99)/100), b.number(`document.querySelectorAll('main select[name=page] option').length`))
		b.shot("queues-10000")

		b.click(`main button[name=next]`)
		b.wait(`document.querySelector('main select[name=page]')?.value === '2'`)
		// Page 1 is ui.added and ui.bulk.00000 to 00098.
		require.Equal(t, "ui.bulk.00099", b.text(`main table.list tbody tr:first-child td:nth-child(2) a`))

		b.click(`main th[data-sort=name]`) // ascending, from page 1
		b.wait(`document.querySelector('main th.sorted')?.textContent === 'Name ▲'`)
		b.click(`main th[data-sort=name]`) // descending
		b.wait(`document.querySelector('main th.sorted')?.textContent === 'Name ▼'`)
		require.Equal(t, "ui.quorum", b.text(`main table.list tbody tr:first-child td:nth-child(2) a`))

		start = time.Now()
		b.typeIn("#queues-filter", "bulk.0424")
		b.click(`main form.filter button[type=submit]`)
		b.wait(fmt.Sprintf(`document.querySelector('#queues-counts')?.textContent === '10 matching of %s'`, commas(total)))
		t.Logf("filtered in %v", time.Since(start).Round(time.Millisecond))
		b.shot("queues-filtered")

		b.typeIn("#queues-filter", `^ui\.bulk\.0000[0-4]$`)
		b.click(`main form.filter input[name=regex]`)
		b.click(`main form.filter button[type=submit]`)
		b.wait(fmt.Sprintf(`document.querySelector('#queues-counts')?.textContent === '5 matching of %s'`, commas(total)))
		require.Equal(t, "ui.bulk.00004", b.text(`main table.list tbody tr:first-child td:nth-child(2) a`), "still sorted by name, descending")
		b.shot("queues-regex")
	})
}

// commas writes n with thousands separators, as the UI does.
func commas(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// startUI starts a broker whose API samples every second, as the charts'
// shortest step.
func startUI(t *testing.T) *env {
	t.Helper()
	srv := amqptest.NewServer(t)
	api := management.New(srv.Server, management.Options{SampleInterval: time.Second})
	hs := httptest.NewServer(api)
	t.Cleanup(func() {
		hs.Close()
		api.Close()
	})
	return &env{t: t, srv: srv.Server, api: api, http: hs, amqpURL: srv.URL}
}

// browser is one Chromium tab and where its screenshots go.
type browser struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
}

// timeout bounds every single browser step.
const uiStepTimeout = 30 * time.Second

func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, uiStepTimeout)
	defer cancel()
	require.NoError(b.t, chromedp.Do(ctx, actions...))
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(sel)))
}

// typeIn clicks into the field, empties it and types text, key by key.
func (b *browser) typeIn(sel, text string) {
	b.t.Helper()
	b.click(sel)
	b.clear(sel)
	b.do(chromedp.SendKeys(chromedp.CSS(sel), text))
}

// clear empties a field.
func (b *browser) clear(sel string) {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	b.eval(fmt.Sprintf(`document.querySelector(%s).value = ''`, q))
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, uiStepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(b.t, err, sel)
	return strings.TrimSpace(s)
}

func (b *browser) eval(js string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, uiStepTimeout)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Evaluate[any](js))
	require.NoError(b.t, err, js)
}

func (b *browser) number(js string) float64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, uiStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](js))
	require.NoError(b.t, err, js)
	return v
}

// wait polls a JavaScript condition until it holds.
func (b *browser) wait(cond string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, uiStepTimeout)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(uiStepTimeout)))
	if err != nil {
		b.shot("failed")
		html, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector('main').innerText.slice(0, 2000) + '\nflash: ' + document.querySelector('#flash').textContent`))
		b.t.Fatalf("waiting for %s: %v\npage: %s", cond, err, html)
	}
}

// shot keeps a screenshot of the whole page as NAME.png.
func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, uiStepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	require.NoError(b.t, os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644))
}
