package exchange

import (
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Field values arrive as the Go types the codec decodes. RabbitMQ compares
// them as Erlang terms, where a table field is {Type, Value}: every integer
// type and timestamp is an Erlang integer, float and double are floats,
// longstr and byte array are binaries, arrays are lists of {Type, Value} and
// tables lists of {Key, Type, Value}. The helpers here rebuild that model so
// that each comparison follows the RabbitMQ rule it stands for.

// tag is a field's AMQP type, named as RabbitMQ names it in its messages.
type tag uint8

const (
	tagOther tag = iota
	tagVoid
	tagBool
	tagByte
	tagUnsignedByte
	tagShort
	tagUnsignedShort
	tagSignedInt
	tagUnsignedInt
	tagLong
	tagFloat
	tagDouble
	tagTimestamp
	tagLongstr
	tagBinary
	tagArray
	tagTable
)

var tagNames = [...]string{
	tagOther: "unknown", tagVoid: "void", tagBool: "bool", tagByte: "byte",
	tagUnsignedByte: "unsignedbyte", tagShort: "short", tagUnsignedShort: "unsignedshort",
	tagSignedInt: "signedint", tagUnsignedInt: "unsignedint", tagLong: "long",
	tagFloat: "float", tagDouble: "double", tagTimestamp: "timestamp",
	tagLongstr: "longstr", tagBinary: "binary", tagArray: "array", tagTable: "table",
}

func (t tag) String() string { return tagNames[t] }

// term is the Erlang kind a field value has once decoded by RabbitMQ.
type term uint8

const (
	termOther term = iota
	termVoid
	termBool
	termInt
	termFloat
	termBinary
	termList
	termTable
)

func (t tag) term() term {
	switch t {
	case tagVoid:
		return termVoid
	case tagBool:
		return termBool
	case tagByte, tagUnsignedByte, tagShort, tagUnsignedShort, tagSignedInt, tagUnsignedInt, tagLong, tagTimestamp:
		return termInt
	case tagFloat, tagDouble:
		return termFloat
	case tagLongstr, tagBinary:
		return termBinary
	case tagArray:
		return termList
	case tagTable:
		return termTable
	}
	return termOther
}

var (
	tableType = reflect.TypeFor[map[string]any]()
	arrayType = reflect.TypeFor[[]any]()
)

func tagOf(v any) tag {
	switch v.(type) {
	case nil:
		return tagVoid
	case bool:
		return tagBool
	case int8:
		return tagByte
	case uint8:
		return tagUnsignedByte
	case int16:
		return tagShort
	case uint16:
		return tagUnsignedShort
	case int32:
		return tagSignedInt
	case uint32:
		return tagUnsignedInt
	case int64, int, uint, uint64:
		// Go's int types are not produced by the codec; treating them as long
		// lets callers and tests write untyped constants.
		return tagLong
	case float32:
		return tagFloat
	case float64:
		return tagDouble
	case time.Time:
		return tagTimestamp
	case string:
		return tagLongstr
	case []byte:
		return tagBinary
	case []any:
		return tagArray
	case map[string]any:
		return tagTable
	}
	// Nested tables and arrays may carry the codec's named types.
	t := reflect.TypeOf(v)
	switch {
	case t.Kind() == reflect.Map && t.ConvertibleTo(tableType):
		return tagTable
	case t.Kind() == reflect.Slice && t.ConvertibleTo(arrayType):
		return tagArray
	}
	return tagOther
}

func intVal(v any) int64 {
	switch x := v.(type) {
	case int8:
		return int64(x)
	case uint8:
		return int64(x)
	case int16:
		return int64(x)
	case uint16:
		return int64(x)
	case int32:
		return int64(x)
	case uint32:
		return int64(x)
	case int64:
		return x
	case int:
		return int64(x)
	case uint:
		return int64(x)
	case uint64:
		return int64(x)
	case time.Time:
		// RabbitMQ keeps a timestamp as its integer seconds.
		return x.Unix()
	}
	return 0
}

func floatVal(v any) float64 {
	switch x := v.(type) {
	case float32:
		return float64(x)
	case float64:
		return x
	}
	return 0
}

func asTable(v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return reflect.ValueOf(v).Convert(tableType).Interface().(map[string]any)
}

func asArray(v any) []any {
	if a, ok := v.([]any); ok {
		return a
	}
	return reflect.ValueOf(v).Convert(arrayType).Interface().([]any)
}

func binEqual(a, b any) bool {
	switch x := a.(type) {
	case string:
		switch y := b.(type) {
		case string:
			return x == y
		case []byte:
			return x == string(y)
		}
	case []byte:
		switch y := b.(type) {
		case string:
			return string(x) == y
		case []byte:
			return string(x) == string(y)
		}
	}
	return false
}

// intEqualsFloat is Erlang's == between an integer and a float: equal when
// they are the same number.
func intEqualsFloat(i int64, f float64) bool {
	return f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 && int64(f) == i
}

// valuesEqual is Erlang's == on two field values without their types, which
// is how rabbit_exchange_type_headers compares a binding value with a header
// value (PV == DV). So int32 5, int64 5, uint8 5, double 5.0 and a timestamp
// of 5 seconds are all equal; a longstr equals a byte array with the same
// bytes; inside arrays and tables the element types must agree, since there
// the {Type, Value} pairs are compared.
func valuesEqual(a, b any) bool {
	if x, ok := a.(string); ok { // the common case, before the general one
		if y, ok := b.(string); ok {
			return x == y
		}
	}
	ta, tb := tagOf(a).term(), tagOf(b).term()
	switch {
	case ta == termInt && tb == termInt:
		return intVal(a) == intVal(b)
	case ta == termFloat && tb == termFloat:
		return floatVal(a) == floatVal(b)
	case ta == termInt && tb == termFloat:
		return intEqualsFloat(intVal(a), floatVal(b))
	case ta == termFloat && tb == termInt:
		return intEqualsFloat(intVal(b), floatVal(a))
	case ta != tb:
		return false
	}
	return sameComposite(ta, a, b, false)
}

// sameValue is Erlang's =:= on two field values without their types: no
// integer equals a float.
func sameValue(a, b any) bool {
	ta, tb := tagOf(a).term(), tagOf(b).term()
	if ta != tb {
		return false
	}
	switch ta {
	case termInt:
		return intVal(a) == intVal(b)
	case termFloat:
		x, y := floatVal(a), floatVal(b)
		return x == y || (x != x && y != y) // NaN is itself, so such a binding can be removed
	}
	return sameComposite(ta, a, b, true)
}

func sameComposite(t term, a, b any, exact bool) bool {
	switch t {
	case termVoid:
		return true
	case termBool:
		return a.(bool) == b.(bool)
	case termBinary:
		return binEqual(a, b)
	case termList:
		x, y := asArray(a), asArray(b)
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if !fieldEqual(x[i], y[i], exact) {
				return false
			}
		}
		return true
	case termTable:
		// RabbitMQ compares nested tables as lists in wire order; a Go map has
		// no order, so equal key sets with equal fields is the closest rule.
		x, y := asTable(a), asTable(b)
		if len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !fieldEqual(v, w, exact) {
				return false
			}
		}
		return true
	}
	return reflect.TypeOf(a) == reflect.TypeOf(b) && reflect.DeepEqual(a, b)
}

// fieldEqual compares two {Type, Value} pairs: the types must be the same
// and the values == (exact=false) or =:= (exact=true).
func fieldEqual(a, b any, exact bool) bool {
	if tagOf(a) != tagOf(b) {
		return false
	}
	if exact {
		return sameValue(a, b)
	}
	return valuesEqual(a, b)
}

// argsIdentical reports whether two argument tables are the same term, the
// way RabbitMQ tells one binding from another: same keys, and for each key
// the same type and value.
func argsIdentical(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !fieldEqual(v, w, true) {
			return false
		}
	}
	return true
}

// typeClass is rabbit_misc's type_class: the numeric types compare across
// widths when redeclaring.
func typeClass(t tag) tag {
	switch t {
	case tagByte, tagUnsignedByte, tagShort, tagUnsignedShort, tagSignedInt, tagUnsignedInt, tagLong:
		return tagLong
	case tagFloat:
		return tagDouble
	}
	return t
}

// argEquivalent is rabbit_misc:assert_args_equivalence1 for one present
// key: the same type class and == values, or else identical values.
func argEquivalent(a, b any) bool {
	if typeClass(tagOf(a)) == typeClass(tagOf(b)) && valuesEqual(a, b) {
		return true
	}
	return sameValue(a, b)
}

// erlFormat renders a field value as Erlang's ~tp would in RabbitMQ's error
// texts, close enough for the common types.
func erlFormat(v any) string {
	switch t := tagOf(v); t.term() {
	case termVoid:
		return "undefined"
	case termBool:
		return strconv.FormatBool(v.(bool))
	case termInt:
		return strconv.FormatInt(intVal(v), 10)
	case termFloat:
		return erlFloat(floatVal(v))
	case termBinary:
		if s, ok := v.(string); ok {
			return erlBinary(s)
		}
		return erlBinary(string(v.([]byte)))
	case termList:
		parts := make([]string, 0, len(asArray(v)))
		for _, e := range asArray(v) {
			parts = append(parts, "{"+tagOf(e).String()+","+erlFormat(e)+"}")
		}
		return "[" + strings.Join(parts, ",") + "]"
	case termTable:
		m := asTable(v)
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range m {
				if !yield(k) {
					return
				}
			}
		})
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, "{"+erlBinary(k)+","+tagOf(m[k]).String()+","+erlFormat(m[k])+"}")
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return reflect.ValueOf(v).String()
}

func erlFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	mant, exp, hasExp := strings.Cut(s, "e")
	if !strings.Contains(mant, ".") && !strings.ContainsAny(mant, "NI") {
		mant += ".0"
	}
	if !hasExp {
		return mant
	}
	return mant + "e" + strings.TrimPrefix(exp, "+")
}

// erlBinary renders a binary as ~tp does: <<"text">>, <<"text"/utf8>> for
// printable non-ASCII UTF-8, or a list of bytes.
func erlBinary(s string) string {
	ascii, printable := true, utf8.ValidString(s)
	for _, r := range s {
		if r >= utf8.RuneSelf {
			ascii = false
		}
		if !unicode.IsPrint(r) && !strings.ContainsRune("\n\r\t\v\b\f\x1b", r) {
			printable = false
		}
	}
	if !printable {
		parts := make([]string, len(s))
		for i := range len(s) {
			parts[i] = strconv.Itoa(int(s[i]))
		}
		return "<<" + strings.Join(parts, ",") + ">>"
	}
	var b strings.Builder
	b.WriteString(`<<"`)
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\v':
			b.WriteString(`\v`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\x1b':
			b.WriteString(`\e`)
		default:
			b.WriteRune(r)
		}
	}
	if !ascii {
		b.WriteString(`"/utf8>>`)
	} else {
		b.WriteString(`">>`)
	}
	return b.String()
}

// TypeName is the AMQP field type of v as RabbitMQ names it in error texts
// ("longstr", "signedint", ...).
func TypeName(v any) string { return tagOf(v).String() }

// ArgEquivalent reports whether two argument values count as the same on a
// redeclare, by RabbitMQ's rule: integers of any width compare by value,
// strings and byte arrays by bytes.
func ArgEquivalent(a, b any) bool { return argEquivalent(a, b) }
