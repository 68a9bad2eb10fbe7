package event

import (
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warrenmq/warren/amqp/wire"
)

// Terms renders a field table as the plugin does for arguments and client
// properties: one string per entry, the Erlang term RabbitMQ holds for it,
// such as {<<"x-max-length">>,signedint,10}. RabbitMQ keeps the order the
// client sent; a Go map has none, so the entries are sorted by key. An
// empty or absent table is an empty list.
func Terms(t map[string]any) []any {
	out := make([]any, 0, len(t))
	for _, k := range slices.Sorted(maps.Keys(t)) {
		out = append(out, "{"+Binary(k)+","+typedValue(t[k])+"}")
	}
	return out
}

// typedValue is a field value as RabbitMQ's parser keeps it: its type
// name and its value, "signedint,10".
func typedValue(v any) string {
	typ, val := fieldTerm(v)
	return typ + "," + val
}

// fieldTerm names v's AMQP type as rabbit_binary_parser does and renders
// the value.
func fieldTerm(v any) (typ, val string) {
	switch v := v.(type) {
	case string:
		return "longstr", Binary(v)
	case []byte:
		return "binary", Binary(string(v))
	case bool:
		return "bool", strconv.FormatBool(v)
	case int8:
		return "byte", strconv.Itoa(int(v))
	case uint8:
		return "unsignedbyte", strconv.Itoa(int(v))
	case int16:
		return "short", strconv.Itoa(int(v))
	case uint16:
		return "unsignedshort", strconv.Itoa(int(v))
	case int32:
		return "signedint", strconv.Itoa(int(v))
	case uint32:
		return "unsignedint", strconv.FormatUint(uint64(v), 10)
	case int64:
		return "long", strconv.FormatInt(v, 10)
	case int:
		return "long", strconv.Itoa(v)
	case float32:
		return "float", float(float64(v))
	case float64:
		return "double", float(v)
	case wire.Decimal:
		return "decimal", "{" + strconv.Itoa(int(v.Scale)) + "," + strconv.Itoa(int(v.Value)) + "}"
	case time.Time:
		return "timestamp", strconv.FormatInt(v.Unix(), 10)
	case wire.Table:
		return "table", "[" + strings.Join(stringsOf(Terms(v)), ",") + "]"
	case map[string]any:
		return "table", "[" + strings.Join(stringsOf(Terms(v)), ",") + "]"
	case []any:
		items := make([]string, len(v))
		for i, x := range v {
			items[i] = "{" + typedValue(x) + "}"
		}
		return "array", "[" + strings.Join(items, ",") + "]"
	case nil:
		return "void", "undefined"
	}
	return "void", "undefined"
}

func stringsOf(xs []any) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i], _ = x.(string)
	}
	return out
}

// float renders a float as Erlang prints it: the shortest form that reads
// back, always with a fraction (1.0, 0.5, 1.0e20).
func float(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if mant, exp, ok := strings.Cut(s, "e"); ok {
		if !strings.Contains(mant, ".") {
			mant += ".0"
		}
		exp = strings.TrimPrefix(exp, "+")
		if len(exp) > 1 && exp[0] == '0' || len(exp) > 2 && exp[:2] == "-0" {
			exp = strings.Replace(exp, "0", "", 1)
		}
		return mant + "e" + exp
	}
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// Binary renders s as an Erlang binary: <<"text">> when every byte is
// printable ASCII, the bytes otherwise (<<104,105,200>>), as ~p does.
func Binary(s string) string {
	if s == "" {
		return "<<>>"
	}
	printable := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			printable = false
			break
		}
	}
	if printable {
		var b strings.Builder
		b.WriteString(`<<"`)
		for i := 0; i < len(s); i++ {
			if s[i] == '"' || s[i] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[i])
		}
		b.WriteString(`">>`)
		return b.String()
	}
	parts := make([]string, len(s))
	for i := 0; i < len(s); i++ {
		parts[i] = strconv.Itoa(int(s[i]))
	}
	return "<<" + strings.Join(parts, ",") + ">>"
}

// Atom renders s as an Erlang atom, quoted unless it needs no quotes.
func Atom(s string) string {
	bare := s != "" && s[0] >= 'a' && s[0] <= 'z'
	for i := 0; bare && i < len(s); i++ {
		c := s[i]
		bare = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '@'
	}
	if bare {
		return s
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// IPTerm renders an address as the Erlang tuple RabbitMQ reports hosts
// with: {127,0,0,1} for IPv4, eight 16-bit groups for IPv6.
func IPTerm(ip net.IP) string {
	if v4 := ip.To4(); v4 != nil {
		return "{" + strconv.Itoa(int(v4[0])) + "," + strconv.Itoa(int(v4[1])) + "," + strconv.Itoa(int(v4[2])) + "," + strconv.Itoa(int(v4[3])) + "}"
	}
	ip16 := ip.To16()
	if ip16 == nil {
		return "undefined"
	}
	parts := make([]string, 8)
	for i := range parts {
		parts[i] = strconv.Itoa(int(ip16[2*i])<<8 | int(ip16[2*i+1]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}
