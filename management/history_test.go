package management_test

import (
	"net/url"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// samples reads obj[key+"_details"].samples, newest first.
func samples(obj map[string]any, key string) []float64 {
	d, _ := obj[key+"_details"].(map[string]any)
	ss, _ := d["samples"].([]any)
	out := make([]float64, len(ss))
	for i, s := range ss {
		out[i], _ = s.(map[string]any)["sample"].(float64)
	}
	return out
}

// TestHistorySamples: after publishing over a real connection, the
// overview, the queue, the connection and the channel answer RabbitMQ's
// sample windows with samples that moved.
func TestHistorySamples(t *testing.T) {
	e := start(t)
	conn, ch := e.channel()
	_, err := ch.QueueDeclare("hist", false, false, false, false, nil)
	require.NoError(t, err)
	for range 20 {
		require.NoError(t, ch.PublishWithContext(t.Context(), "", "hist", false, false, amqp091.Publishing{Body: []byte("x")}))
	}
	const win = "lengths_age=4&lengths_incr=1&msg_rates_age=4&msg_rates_incr=1&data_rates_age=4&data_rates_incr=1"
	rising := func(s []float64, want float64) bool {
		return len(s) == 5 && s[0] == want && s[len(s)-1] < want
	}
	var ov map[string]any
	require.Eventually(t, func() bool {
		ov = nil
		e.do("GET", "/api/overview?"+win, nil, &ov)
		ms, _ := ov["message_stats"].(map[string]any)
		qt, _ := ov["queue_totals"].(map[string]any)
		return ms != nil && qt != nil && rising(samples(ms, "publish"), 20) && rising(samples(qt, "messages"), 20)
	}, 10*time.Second, 100*time.Millisecond, "overview: %v", ov)
	require.Contains(t, ov, "churn_rates")
	require.Contains(t, ov, "sample_retention_policies")

	var q map[string]any
	require.Eventually(t, func() bool {
		q = nil
		e.do("GET", "/api/queues/%2F/hist?"+win, nil, &q)
		ms, _ := q["message_stats"].(map[string]any)
		return ms != nil && rising(samples(q, "messages_ready"), 20) && rising(samples(ms, "publish"), 20)
	}, 10*time.Second, 100*time.Millisecond, "queue: %v", q)

	var cs []map[string]any
	require.Equal(t, 200, e.do("GET", "/api/connections", nil, &cs))
	require.Len(t, cs, 1)
	props, _ := cs[0]["client_properties"].(map[string]any)
	require.Equal(t, "AMQP 0.9.1 Client", props["product"], "client properties: %v", cs[0])
	require.Equal(t, "PLAIN", cs[0]["auth_mechanism"])
	var c map[string]any
	require.Eventually(t, func() bool {
		c = nil
		e.do("GET", "/api/connections/"+url.PathEscape(cs[0]["name"].(string))+"?"+win, nil, &c)
		s := samples(c, "recv_oct")
		return len(s) == 5 && s[0] > s[4]
	}, 10*time.Second, 100*time.Millisecond, "connection: %v", c)

	var chs []map[string]any
	require.Equal(t, 200, e.do("GET", "/api/channels", nil, &chs))
	require.Len(t, chs, 1)
	var chd map[string]any
	require.Eventually(t, func() bool {
		chd = nil
		e.do("GET", "/api/channels/"+url.PathEscape(chs[0]["name"].(string))+"?"+win, nil, &chd)
		ms, _ := chd["message_stats"].(map[string]any)
		return ms != nil && ms["publish"] == float64(20) && rising(samples(ms, "publish"), 20)
	}, 10*time.Second, 100*time.Millisecond, "channel: %v", chd)
	require.Equal(t, 404, e.do("GET", "/api/channels/nope", nil, nil))

	var node map[string]any
	require.Equal(t, 200, e.do("GET", "/api/nodes/"+url.PathEscape(ov["node"].(string))+"?lengths_age=4&lengths_incr=1", nil, &node))
	for _, k := range []string{"mem_used", "mem_limit", "disk_free", "disk_free_limit", "fd_used", "fd_total", "sockets_used", "uptime"} {
		require.Contains(t, node, k)
	}
	require.Len(t, samples(node, "mem_used"), 5)
	require.Equal(t, float64(1), node["sockets_used"])
	conn.Close()
}

// TestExchangeHistory: an exchange counts what is published to it and
// what it routes on, with samples over the msg_rates window.
func TestExchangeHistory(t *testing.T) {
	e := start(t)
	_, ch := e.channel()
	require.NoError(t, ch.ExchangeDeclare("hist.x", "direct", false, false, false, false, nil))
	_, err := ch.QueueDeclare("hist.q", false, false, false, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind("hist.q", "k", "hist.x", false, nil))
	for i := range 10 {
		key := "k"
		if i%2 == 1 {
			key = "nowhere"
		}
		require.NoError(t, ch.PublishWithContext(t.Context(), "hist.x", key, false, false, amqp091.Publishing{Body: []byte("x")}))
	}
	var x map[string]any
	require.Eventually(t, func() bool {
		x = nil
		e.do("GET", "/api/exchanges/%2F/hist.x?msg_rates_age=4&msg_rates_incr=1", nil, &x)
		ms, _ := x["message_stats"].(map[string]any)
		in, out := samples(ms, "publish_in"), samples(ms, "publish_out")
		return ms["publish_in"] == float64(10) && ms["publish_out"] == float64(5) &&
			len(in) == 5 && in[0] == 10 && in[4] == 0 && len(out) == 5 && out[0] == 5
	}, 10*time.Second, 100*time.Millisecond, "exchange: %v", x)
}
