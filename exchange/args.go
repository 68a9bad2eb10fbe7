package exchange

import (
	"strconv"
	"strings"
)

// DeclareError is an exchange.declare refused for its type or arguments,
// with the plugin's words. CommandInvalid distinguishes RabbitMQ's 503
// (an unknown type) from its 406.
type DeclareError struct {
	CommandInvalid bool
	Text           string
}

func (e *DeclareError) Error() string { return e.Text }

func precondition(text string) error { return &DeclareError{Text: text} }

// CheckArgs validates the arguments of a new exchange of kind as its
// plugin's validate/1 does.
func CheckArgs(kind Kind, args map[string]any) error {
	switch kind {
	case ConsistentHash:
		return checkHashArgs(args)
	case Delayed:
		t, ok := args["x-delayed-type"].(string)
		if !ok {
			if b, isBin := args["x-delayed-type"].([]byte); isBin {
				t, ok = string(b), true
			}
		}
		switch {
		case !ok:
			return precondition("Invalid argument, 'x-delayed-type' must be an existing exchange type")
		case t == "x-delayed-message":
			return precondition("Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'")
		}
		inner, known := ParseKind(t)
		if !known {
			return &DeclareError{CommandInvalid: true, Text: "unknown exchange type '" + t + "'"}
		}
		return CheckArgs(inner, args)
	case Deduplication:
		return checkDedupArgs(args)
	}
	return nil
}

// checkHashArgs is the consistent-hash plugin's validate/1.
func checkHashArgs(args map[string]any) error {
	_, header := args["hash-header"].(string)
	prop, hasProp := args["hash-property"].(string)
	switch {
	case header && hasProp:
		return precondition("hash-header and hash-property are mutually exclusive")
	case hasProp && prop != "correlation_id" && prop != "message_id" && prop != "timestamp":
		return precondition("Unsupported property: " + prop)
	}
	return nil
}

// The deduplication plugin writes its messages as Elixir strings continued
// over two source lines, so the second line's indentation is part of the
// text; each clause has its own.
const (
	dedupSizeMissing  = "Missing or invalid argument,           'x-cache-size' must be an integer greater than 0"
	dedupSizeBadStr   = "Missing or invalid argument,                       'x-cache-size' must be an integer greater than 0"
	dedupTTLBad       = "Invalid argument,              'x-cache-ttl' must be an integer greater than 0"
	dedupTTLBadStr    = "Invalid argument,                       'x-cache-ttl' must be an integer greater than 0"
	dedupPersistError = "Invalid argument,              'x-cache-persistence' must be either 'disk' or 'memory'"
)

// DedupConfig is a deduplication exchange's cache: its size, default TTL
// in milliseconds (0: none) and persistence.
type DedupConfig struct {
	Size int
	TTL  int64
	Disk bool
}

// checkDedupArgs is rabbitmq-message-deduplication's validate/1.
func checkDedupArgs(args map[string]any) error {
	switch v := args["x-cache-size"].(type) {
	case string:
		if _, ok := elixirParseInt(v); !ok {
			return precondition(dedupSizeBadStr)
		}
	default:
		if !positiveInt(v) {
			return precondition(dedupSizeMissing)
		}
	}
	if v, ok := args["x-cache-ttl"]; ok {
		switch v := v.(type) {
		case string:
			if _, ok := elixirParseInt(v); !ok {
				return precondition(dedupTTLBadStr)
			}
		default:
			if !positiveInt(v) {
				return precondition(dedupTTLBad)
			}
		}
	}
	if v, ok := args["x-cache-persistence"]; ok && v != "disk" && v != "memory" {
		return precondition(dedupPersistError)
	}
	return nil
}

// ParseDedupConfig reads a deduplication exchange's validated arguments.
func ParseDedupConfig(args map[string]any) DedupConfig {
	num := func(v any) int64 {
		if s, ok := v.(string); ok {
			n, _ := elixirParseInt(s)
			return n
		}
		if isInt(v) {
			return intVal(v)
		}
		return 0
	}
	return DedupConfig{
		Size: int(num(args["x-cache-size"])),
		TTL:  num(args["x-cache-ttl"]),
		Disk: args["x-cache-persistence"] == "disk",
	}
}

func isInt(v any) bool {
	switch v.(type) {
	case int8, uint8, int16, uint16, int32, uint32, int64, int, uint, uint64:
		return true
	}
	return false
}

func positiveInt(v any) bool { return isInt(v) && intVal(v) > 0 }

// elixirParseInt is Integer.parse/2: an optional sign and leading digits,
// ignoring whatever follows them.
func elixirParseInt(s string) (int64, bool) {
	i := 0
	if strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-") {
		i = 1
	}
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j == i {
		return 0, false
	}
	n, err := strconv.ParseInt(s[:j], 10, 64)
	return n, err == nil
}
