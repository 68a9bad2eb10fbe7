package amqp

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/queue"
)

// parseExpiration reads the expiration property as RabbitMQ does
// (string:to_integer, then the expiry range check), with its error terms.
func parseExpiration(s string) (int64, error) {
	digits := strings.TrimLeft(s, "+-")
	signLen := len(s) - len(digits)
	end := 0
	for end < len(digits) && digits[end] >= '0' && digits[end] <= '9' {
		end++
	}
	if end == 0 || signLen > 1 {
		return 0, fmt.Errorf("no_integer")
	}
	n, err := strconv.ParseInt(s[:signLen+end], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("{value_too_large,%s}", s[:signLen+end])
	}
	if rest := digits[end:]; rest != "" {
		return 0, fmt.Errorf("{leftover_string,%q}", rest)
	}
	switch {
	case n < 0:
		return 0, fmt.Errorf("{value_negative,%d}", n)
	case n > queue.MaxExpiry:
		return 0, fmt.Errorf("{value_too_large,%d}", n)
	}
	return n, nil
}

// withHeader returns encoded properties with one header set, for the
// per-delivery x-delivery-count.
func withHeader(encoded []byte, key string, value any) []byte {
	var props wire.Properties
	if props.Decode(encoded) != nil {
		return encoded
	}
	h := make(wire.Table, len(props.Headers)+1)
	for k, v := range props.Headers {
		h[k] = v
	}
	h[key] = value
	props.Headers = h
	return props.Append(make([]byte, 0, len(encoded)+32))
}
