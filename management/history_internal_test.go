package management

import (
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSeriesAt: a series answers each time with the reading of its bucket
// or the latest before it, from the finest ring that reaches back.
func TestSeriesAt(t *testing.T) {
	const sec = int64(1000)
	interval := time.Second
	s := newSeries(basicRetention, 1)
	start := int64(1_000_000) * sec
	// Idle for 10 s at 7, then +1 each second for 300 s.
	for i := int64(0); i <= 10; i++ {
		s.record(start+i*sec, interval, []int64{7})
	}
	require.Nil(t, s.rings, "an idle object keeps no rings")
	for i := int64(1); i <= 300; i++ {
		s.record(start+(10+i)*sec, interval, []int64{7 + i})
	}
	require.NotNil(t, s.rings)
	now := start + 310*sec
	for _, c := range []struct {
		name string
		at   int64
		want int64
	}{
		{"now", now, 307},
		{"future", now + 5*sec, 307},
		{"one second ago", now - sec, 306},
		{"two minutes ago (first ring)", now - 120*sec, 187},
		// start+70s falls in the 12 s bucket [start+68s, start+80s), whose
		// last reading was at start+79s.
		{"four minutes ago (second ring: its bucket's last reading)", now - 240*sec, 7 + 69},
		{"before the first change", start + 5*sec, 7},
		{"before it was first read", start - sec, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, s.at(c.at, 0))
		})
	}
	require.InDelta(t, 1.0, s.rate(0), 1e-9)

	d := s.details(0, window{age: 10, incr: 5}, now, s.rate(0))
	require.Len(t, d.Samples, 3)
	require.Equal(t, []sampleJSON{{307, now}, {302, now - 5*sec}, {297, now - 10*sec}}, d.Samples)
	require.InDelta(t, 1.0, d.AvgRate, 1e-9)
	require.InDelta(t, 302.0, d.Avg, 1e-9)

	// Idle longer than the rings reach: they are dropped, the reading stays.
	for i := int64(1); i <= 3700; i += 10 {
		s.record(now+i*sec, interval, []int64{307})
	}
	require.Nil(t, s.rings)
	require.Equal(t, int64(307), s.at(now, 0))
}

// TestRetentionPolicies: at the default interval, RabbitMQ's reach.
func TestRetentionPolicies(t *testing.T) {
	require.Equal(t, map[string][]int64{"global": {600, 3600, 28800, 86400}, "basic": {600, 3600}, "detailed": {600}},
		retentionPolicies(5*time.Second))
}

func TestWindowOf(t *testing.T) {
	for _, c := range []struct {
		q    string
		want window
		ok   bool
	}{
		{"lengths_age=60&lengths_incr=5", window{60, 5}, true},
		{"lengths_age=60", window{}, false},
		{"lengths_age=x&lengths_incr=5", window{}, false},
		{"lengths_age=60&lengths_incr=0", window{}, false},
		{"lengths_age=600000&lengths_incr=1", window{}, false},
	} {
		v, _ := url.ParseQuery(c.q)
		w, ok := windowOf(v, "lengths")
		require.Equal(t, c.ok, ok, c.q)
		require.Equal(t, c.want, w, c.q)
	}
}
