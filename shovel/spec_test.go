package shovel

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value string
		check func(t *testing.T, s *Spec)
	}{
		{"defaults", `{"src-uri":"amqp://","src-queue":"q","dest-uri":"amqp://"}`, func(t *testing.T, s *Spec) {
			require.Equal(t, OnConfirm, s.AckMode)
			require.Equal(t, deleteNever, s.DeleteAfter)
			require.Equal(t, DefaultPrefetch, s.Prefetch)
			require.Equal(t, DefaultReconnectDelay, s.ReconnectDelay)
			require.Equal(t, []string{"amqp://"}, s.SrcURIs)
			require.False(t, s.destExchangeSet)
		}},
		{"exchange source", `{"src-uri":["amqp://a","amqp://b"],"src-exchange":"x","dest-uri":"amqp://","dest-exchange":"","dest-exchange-key":"k","ack-mode":"no-ack","src-delete-after":7,"reconnect-delay":1.5,"src-prefetch-count":10}`, func(t *testing.T, s *Spec) {
			require.True(t, s.srcIsExchange)
			require.Equal(t, "#", s.SrcExchangeKey)
			require.Equal(t, []string{"amqp://a", "amqp://b"}, s.SrcURIs)
			require.True(t, s.destExchangeSet)
			require.True(t, s.destKeySet)
			require.Equal(t, NoAck, s.AckMode)
			require.Equal(t, 7, s.DeleteAfter)
			require.Equal(t, 1500*time.Millisecond, s.ReconnectDelay)
			require.Equal(t, 10, s.Prefetch)
		}},
		{"queue-length", `{"src-uri":"amqp://","src-queue":"q","dest-uri":"amqp://","src-delete-after":"queue-length","src-protocol":"amqp091"}`, func(t *testing.T, s *Spec) {
			require.Equal(t, deleteQueueLength, s.DeleteAfter)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse("n", []byte(tc.value))
			require.NoError(t, err)
			tc.check(t, s)
		})
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range []struct{ value, problem string }{
		{`[]`, `not a list`},
		{`{"src-uri":"amqp://","src-queue":"q","dest-uri":"amqp://","src-protocol":"amqp10"}`, `src-protocol should be <<"amqp091">>`},
		{`{"src-uri":"amqp://h:0/","src-queue":"q","dest-uri":"amqp://"}`, `port_out_of_range`},
		{`{"src-uri":"amqp://","src-queue":5,"dest-uri":"amqp://"}`, `src-queue should be binary, actually was 5`},
	} {
		_, err := Parse("n", []byte(tc.value))
		require.ErrorContains(t, err, tc.problem, tc.value)
	}
}

func TestRedact(t *testing.T) {
	require.Equal(t, "amqp://h:5672/v", redact("amqp://u:p@h:5672/v"))
	require.Equal(t, "amqp:///v", redact("amqp:///v"))
}
