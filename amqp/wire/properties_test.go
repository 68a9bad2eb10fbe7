package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPropertiesRoundTrip(t *testing.T) {
	all := Properties{
		ContentType: "application/json", ContentEncoding: "gzip",
		Headers:      Table{"x-death": []any{Table{"count": int64(1)}}, "a": "b"},
		DeliveryMode: 2, Priority: 9,
		CorrelationID: "corr", ReplyTo: "amq.rabbitmq.reply-to", Expiration: "60000",
		MessageID: "m1", Timestamp: 1700000000, Type: "t", UserID: "guest",
		AppID: "app", ClusterID: "c",
	}
	tests := []struct {
		name  string
		props Properties
		flags uint16
	}{
		{"all fourteen", all, 0xFFFC},
		{"none", Properties{}, 0},
		{"empty but present", Properties{Present: FlagContentType | FlagDeliveryMode | FlagHeaders | FlagClusterID | FlagTimestamp},
			FlagContentType | FlagDeliveryMode | FlagHeaders | FlagClusterID | FlagTimestamp},
		{"mixed", Properties{MessageID: "x", Present: FlagReplyTo | FlagPriority}, FlagMessageID | FlagReplyTo | FlagPriority},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := tt.props.Append(nil)
			require.Equal(t, tt.flags, uint16(enc[0])<<8|uint16(enc[1]))
			var p Properties
			require.NoError(t, p.Decode(enc))
			require.Equal(t, tt.flags, p.Present)
			require.Equal(t, enc, p.Append(nil), "decode+append must be byte-exact")
			require.Equal(t, tt.props.ContentType, p.ContentType)
			require.Equal(t, tt.props.Timestamp, p.Timestamp)
			require.Equal(t, tt.props.ClusterID, p.ClusterID)
			if tt.props.Headers != nil {
				require.Equal(t, tt.props.Headers, p.Headers)
			}
		})
	}
}

func TestPropertiesWire(t *testing.T) {
	p := Properties{ContentType: "t", DeliveryMode: 2, Timestamp: 1}
	want := []byte{0x90, 0x40, 1, 't', 2, 0, 0, 0, 0, 0, 0, 0, 1}
	require.Equal(t, want, p.Append(nil))
}

func TestPropertiesDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"empty", nil, false},
		{"one byte", []byte{0x80}, false},
		{"flag without value", []byte{0x80, 0x00}, false},
		{"short string past end", []byte{0x80, 0x00, 5, 'a'}, false},
		{"reserved bit 1", []byte{0x00, 0x02}, false},
		{"continuation without next word", []byte{0x00, 0x01}, false},
		{"continuation with empty next word", []byte{0x80, 0x01, 0x00, 0x00, 1, 'a'}, true},
		{"continuation announcing unknown properties", []byte{0x00, 0x01, 0x80, 0x00, 1, 'a'}, false},
		{"trailing bytes", []byte{0x00, 0x00, 1}, false},
		{"bad headers table", []byte{0x20, 0x00, 0, 0, 0, 9}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Properties
			err := p.Decode(tt.in)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func TestPropertiesDecodeResets(t *testing.T) {
	p := Properties{ContentType: "old", Priority: 3, Present: FlagPriority}
	require.NoError(t, p.Decode([]byte{0x00, 0x00}))
	require.Equal(t, Properties{}, p)
}
