package management_test

import (
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// promSeries is one parsed scrape: every series' value by its full name
// with labels, and each family's sum over its series.
type promSeries struct {
	series map[string]float64
	sum    map[string]float64
	types  map[string]string
}

func scrapeMetrics(t *testing.T, e *env, path string) promSeries {
	t.Helper()
	rec := httptest.NewRecorder()
	e.api.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	require.Equal(t, 200, rec.Code, path)
	require.Contains(t, rec.Header().Get("Content-Type"), "text/plain; version=0.0.4")
	p := promSeries{series: map[string]float64{}, sum: map[string]float64{}, types: map[string]string{}}
	helped := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(rec.Body.String()), "\n") {
		if strings.HasPrefix(line, "# ") {
			f := strings.Fields(line)
			require.GreaterOrEqual(t, len(f), 4, line)
			switch f[1] {
			case "TYPE":
				require.Contains(t, []string{"counter", "gauge", "untyped"}, f[3], line)
				p.types[f[2]] = f[3]
			case "HELP":
				helped[f[2]] = true
			default:
				t.Fatalf("bad comment line %q", line)
			}
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		require.Positive(t, sp, line)
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		require.NoError(t, err, line)
		full := line[:sp]
		name := full
		if i := strings.IndexByte(full, '{'); i >= 0 {
			require.True(t, strings.HasSuffix(full, "}"), line)
			name = full[:i]
		}
		require.NotEmpty(t, p.types[name], "sample before its TYPE: %s", line)
		require.True(t, helped[name], "sample without HELP: %s", line)
		_, dup := p.series[full]
		require.False(t, dup, "duplicate series %s", full)
		p.series[full] = v
		p.sum[name] += v
	}
	return p
}

func dashboardMetrics(t *testing.T) []string {
	b, err := os.ReadFile("testdata/grafana-rabbitmq-overview-metrics.txt")
	require.NoError(t, err)
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			names = append(names, l)
		}
	}
	require.Len(t, names, 36)
	return names
}

// TestPrometheusOverviewDashboard checks that every metric RabbitMQ's
// Overview dashboard queries is in /metrics and moves with load: counters
// grow, gauges show what is there.
func TestPrometheusOverviewDashboard(t *testing.T) {
	e := start(t)
	before := scrapeMetrics(t, e, "/metrics")

	_, pub := e.channel()
	_, err := pub.QueueDeclare("dash", true, false, false, false, nil)
	require.NoError(t, err)
	_, err = pub.QueueDeclare("dash.empty", false, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, pub.Confirm(false))
	confirms := pub.NotifyPublish(make(chan amqp091.Confirmation, 20))
	returns := pub.NotifyReturn(make(chan amqp091.Return, 1))
	for i := range 12 {
		require.NoError(t, pub.Publish("", "dash", false, false, amqp091.Publishing{DeliveryMode: 2, Body: []byte(strconv.Itoa(i))}))
	}
	require.NoError(t, pub.Publish("amq.direct", "nowhere", true, false, amqp091.Publishing{Body: []byte("returned")}))
	require.NoError(t, pub.Publish("amq.direct", "nowhere", false, false, amqp091.Publishing{Body: []byte("dropped")}))
	for range 14 {
		c := <-confirms
		require.True(t, c.Ack)
	}
	<-returns

	// basic.get in both modes, and on an empty queue.
	_, ok, err := pub.Get("dash", false)
	require.NoError(t, err)
	require.True(t, ok) // left unacked
	_, ok, err = pub.Get("dash", true)
	require.NoError(t, err)
	require.True(t, ok)
	_, ok, err = pub.Get("dash.empty", true)
	require.NoError(t, err)
	require.False(t, ok)

	// A consumer in manual mode: one nacked back (redelivered), then three acked.
	_, cons := e.channel()
	require.NoError(t, cons.Qos(4, 0, false))
	ds, err := cons.Consume("dash", "manual", false, false, false, false, nil)
	require.NoError(t, err)
	first := <-ds
	require.NoError(t, first.Nack(false, true))
	redelivered := false
	for range 4 {
		d := <-ds
		redelivered = redelivered || d.Redelivered
		if d.DeliveryTag <= 4 {
			require.NoError(t, d.Ack(false))
		}
	}
	require.True(t, redelivered)
	// An auto-ack consumer on its own queue.
	_, err = cons.QueueDeclare("dash.auto", false, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, pub.Publish("", "dash.auto", false, false, amqp091.Publishing{Body: []byte("auto")}))
	<-confirms
	auto, err := cons.Consume("dash.auto", "auto", true, false, false, false, nil)
	require.NoError(t, err)
	<-auto

	// Churn: a queue deleted, a channel and a connection closed.
	_, err = pub.QueueDeclare("dash.gone", false, false, false, false, nil)
	require.NoError(t, err)
	_, err = pub.QueueDelete("dash.gone", false, false, false)
	require.NoError(t, err)
	conn, extra := e.channel()
	require.NoError(t, extra.Close())
	require.NoError(t, conn.Close())

	// Now queue dash holds 12-1-3 = 8: the one fetched unacked and the
	// consumer's full prefetch of 4 unacked, 3 ready.
	var after promSeries
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		after = scrapeMetrics(t, e, "/metrics")
		if after.sum["rabbitmq_queue_messages_ready"] == 3 && after.sum["rabbitmq_queue_messages_unacked"] == 5 &&
			after.sum["rabbitmq_connections"] == 2 && after.sum["rabbitmq_channels"] == 2 &&
			after.sum["rabbitmq_connections_closed_total"] > before.sum["rabbitmq_connections_closed_total"] {
			break
		}
		require.True(t, time.Now().Before(deadline), "ready %v unacked %v", after.sum["rabbitmq_queue_messages_ready"], after.sum["rabbitmq_queue_messages_unacked"])
	}

	gauges := map[string]float64{
		"rabbitmq_queue_messages_ready":     3,
		"rabbitmq_queue_messages_unacked":   5,
		"rabbitmq_connections":              2,
		"rabbitmq_channels":                 2,
		"rabbitmq_channel_consumers":        2,
		"rabbitmq_consumers":                2,
		"rabbitmq_queues":                   3,
		"rabbitmq_process_open_tcp_sockets": 2,
		"rabbitmq_identity_info":            1,
		"rabbitmq_build_info":               1,
	}
	positive := map[string]bool{
		"rabbitmq_process_resident_memory_bytes": true, "rabbitmq_resident_memory_limit_bytes": true,
		"rabbitmq_disk_space_available_bytes": true, "rabbitmq_process_open_fds": true,
		"rabbitmq_process_max_fds": true, "rabbitmq_process_max_tcp_sockets": true,
	}
	grows := map[string]float64{
		// At least what the load above did.
		"rabbitmq_global_messages_received_total":                     15,
		"rabbitmq_global_messages_received_confirm_total":             15,
		"rabbitmq_global_messages_routed_total":                       13,
		"rabbitmq_global_messages_confirmed_total":                    15,
		"rabbitmq_global_messages_unroutable_returned_total":          1,
		"rabbitmq_global_messages_unroutable_dropped_total":           1,
		"rabbitmq_global_messages_delivered_get_manual_ack_total":     1,
		"rabbitmq_global_messages_delivered_get_auto_ack_total":       1,
		"rabbitmq_global_messages_get_empty_total":                    1,
		"rabbitmq_global_messages_delivered_consume_manual_ack_total": 5,
		"rabbitmq_global_messages_delivered_consume_auto_ack_total":   1,
		"rabbitmq_global_messages_redelivered_total":                  1,
		"rabbitmq_global_messages_acknowledged_total":                 3,
		"rabbitmq_connections_opened_total":                           3,
		"rabbitmq_connections_closed_total":                           1,
		"rabbitmq_channels_opened_total":                              3,
		"rabbitmq_channels_closed_total":                              1,
		"rabbitmq_queues_declared_total":                              4,
		"rabbitmq_queues_created_total":                               4,
		"rabbitmq_queues_deleted_total":                               1,
	}
	for _, name := range dashboardMetrics(t) {
		typ, ok := after.types[name]
		require.True(t, ok, "%s missing from /metrics", name)
		switch {
		case gauges[name] != 0:
			require.Equal(t, gauges[name], after.sum[name], name)
		case positive[name]:
			require.Positive(t, after.sum[name], name)
		case grows[name] != 0:
			require.Equal(t, "counter", typ, name)
			require.GreaterOrEqual(t, after.sum[name]-before.sum[name], grows[name], name)
		default:
			t.Fatalf("%s: no expectation for how it moves", name)
		}
	}
	// The labels the dashboard selects on.
	require.Equal(t, after.sum["rabbitmq_global_messages_received_total"], after.series[`rabbitmq_global_messages_received_total{protocol="amqp091"}`])
	require.Contains(t, after.series, `rabbitmq_global_messages_acknowledged_total{protocol="amqp091",queue_type="rabbit_classic_queue"}`)
}

// TestPrometheusEndpoints checks per-object and detailed output: labels per
// object, family= and vhost= as in rabbitmq_prometheus.
func TestPrometheusEndpoints(t *testing.T) {
	e := start(t)
	require.Contains(t, []int{201, 204}, e.do("PUT", "/api/vhosts/other", nil, nil))
	require.Contains(t, []int{201, 204}, e.do("PUT", "/api/permissions/other/guest", map[string]string{"configure": ".*", "write": ".*", "read": ".*"}, nil))
	_, ch := e.channel()
	_, err := ch.QueueDeclare("po", false, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.Publish("", "po", false, false, amqp091.Publishing{Body: []byte("x")}))
	conn2, err := amqp091.Dial(strings.TrimSuffix(e.amqpURL, "/") + "/other")
	require.NoError(t, err)
	defer conn2.Close()
	ch2, err := conn2.Channel()
	require.NoError(t, err)
	_, err = ch2.QueueDeclare("po2", false, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch2.Publish("", "po2", false, false, amqp091.Publishing{Body: []byte("x")}))
	require.NoError(t, ch2.Publish("", "po2", false, false, amqp091.Publishing{Body: []byte("y")}))

	var per promSeries
	require.Eventually(t, func() bool {
		per = scrapeMetrics(t, e, "/metrics/per-object")
		return per.series[`rabbitmq_queue_messages_ready{vhost="other",queue="po2"}`] == 2
	}, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, 1.0, per.series[`rabbitmq_queue_messages_ready{vhost="/",queue="po"}`])
	require.Equal(t, 2.0, per.series[`rabbitmq_queue_messages_published_total{vhost="other",queue="po2"}`])
	require.Equal(t, 2.0, per.sum["rabbitmq_connections"])
	require.Equal(t, 1.0, per.sum["rabbitmq_identity_info"])
	chanSeries := 0
	for s := range per.series {
		if strings.HasPrefix(s, `rabbitmq_channel_messages_published_total{channel="`) {
			chanSeries++
		}
	}
	require.Equal(t, 2, chanSeries, "one series per channel")
	_, global := per.types["rabbitmq_global_messages_received_total"]
	require.False(t, global, "global counters are /metrics' only")

	agg := scrapeMetrics(t, e, "/metrics")
	require.Equal(t, 3.0, agg.series["rabbitmq_queue_messages_ready"], "aggregated: one unlabelled series")

	// Login attempts, by protocol: the two AMQP logins above and one refused.
	_, err = amqp091.Dial(strings.Replace(e.amqpURL, "guest:guest", "guest:wrong", 1))
	require.Error(t, err)
	require.Equal(t, 401, e.doAs("guest", "wrong", "GET", "/api/overview", nil, nil))
	agg = scrapeMetrics(t, e, "/metrics")
	require.Equal(t, 3.0, agg.series[`rabbitmq_auth_attempts_total{protocol="amqp091"}`])
	require.Equal(t, 2.0, agg.series[`rabbitmq_auth_attempts_succeeded_total{protocol="amqp091"}`])
	require.Equal(t, 1.0, agg.series[`rabbitmq_auth_attempts_failed_total{protocol="amqp091"}`])
	require.Equal(t, 1.0, agg.series[`rabbitmq_auth_attempts_failed_total{protocol="http"}`])
	require.Positive(t, agg.series[`rabbitmq_auth_attempts_succeeded_total{protocol="http"}`])

	det := scrapeMetrics(t, e, "/metrics/detailed?family=queue_coarse_metrics&family=exchange_names&vhost=other")
	require.Equal(t, 2.0, det.series[`rabbitmq_detailed_queue_messages_ready{vhost="other",queue="po2"}`])
	_, has := det.series[`rabbitmq_detailed_queue_messages_ready{vhost="/",queue="po"}`]
	require.False(t, has, "vhost= filters queues")
	_, has = det.types["rabbitmq_detailed_channel_consumers"]
	require.False(t, has, "only the families asked for")
	require.Equal(t, 1.0, det.series[`rabbitmq_cluster_exchange_name{vhost="other",exchange="amq.direct",type="direct"}`])
	require.Equal(t, 1.0, det.sum["rabbitmq_identity_info"])
	none := scrapeMetrics(t, e, "/metrics/detailed")
	require.Len(t, none.types, 2, "no family: identity and build info only")
	auth := scrapeMetrics(t, e, "/metrics/detailed?family=auth_attempt_metrics")
	require.Equal(t, 1.0, auth.series[`rabbitmq_detailed_auth_attempts_failed_total{protocol="amqp091"}`])
}

// TestPrometheusParses is a smoke test of the exposition format itself.
func TestPrometheusParses(t *testing.T) {
	e := start(t)
	for _, path := range []string{"/metrics", "/metrics/per-object", "/metrics/detailed?family=queue_metrics&family=vhost_status&family=exchange_bindings"} {
		p := scrapeMetrics(t, e, path)
		require.NotEmpty(t, p.series, path)
	}
	rec := httptest.NewRecorder()
	e.api.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics/nope", nil))
	require.Equal(t, 404, rec.Code)
}

// TestPrometheusUncommitted: a transactional channel's publishes and acks
// count as uncommitted until tx.commit, as rabbitmq_channel_messages_uncommitted
// and rabbitmq_channel_acks_uncommitted.
func TestPrometheusUncommitted(t *testing.T) {
	e := start(t)
	_, ch := e.channel()
	_, err := ch.QueueDeclare("txq", false, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.Publish("", "txq", false, false, amqp091.Publishing{Body: []byte("a")}))
	m, ok, err := ch.Get("txq", false)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, ch.Tx())
	require.NoError(t, ch.Publish("", "txq", false, false, amqp091.Publishing{Body: []byte("b")}))
	require.NoError(t, ch.Publish("", "txq", false, false, amqp091.Publishing{Body: []byte("c")}))
	require.NoError(t, m.Ack(false))
	var agg promSeries
	require.Eventually(t, func() bool {
		agg = scrapeMetrics(t, e, "/metrics")
		return agg.series["rabbitmq_channel_messages_uncommitted"] == 2
	}, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, 1.0, agg.series["rabbitmq_channel_acks_uncommitted"])
	require.NoError(t, ch.TxCommit())
	agg = scrapeMetrics(t, e, "/metrics")
	require.Equal(t, 0.0, agg.series["rabbitmq_channel_messages_uncommitted"])
	require.Equal(t, 0.0, agg.series["rabbitmq_channel_acks_uncommitted"])
}
