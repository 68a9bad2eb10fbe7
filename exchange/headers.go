package exchange

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalidBinding is matched (errors.Is) by the errors Bind returns for a
// binding the exchange type rejects. RabbitMQ answers these with 406
// PRECONDITION_FAILED and the error's text as the explanation.
var ErrInvalidBinding = errors.New("invalid binding")

// BindingError is a rejected binding. Text is RabbitMQ's explanation, word
// for word as far as Go can render Erlang terms.
type BindingError struct {
	Text string
}

func (e *BindingError) Error() string { return e.Text }

// Is makes errors.Is(err, ErrInvalidBinding) hold.
func (e *BindingError) Is(target error) bool { return target == ErrInvalidBinding }

// hbinding is a headers binding compiled for matching: the arguments that
// take part (x-match always left out, other "x-" keys unless -with-x),
// sorted by name.
type hbinding struct {
	ref  destRef
	rec  *bindingRec
	any  bool
	keys []hkey
}

type hkey struct {
	name string
	val  any // nil (void): the header need only be present
}

// compileHeaders validates and compiles a headers binding's arguments, as
// rabbit_exchange_type_headers:validate_binding and headers_match do. An
// absent x-match means "all".
func compileHeaders(args map[string]any) (hbinding, error) {
	mode := "all"
	if v, ok := args["x-match"]; ok {
		s, isStr := v.(string)
		if !isStr {
			return hbinding{}, &BindingError{Text: fmt.Sprintf(
				"Invalid x-match field type %s (value %s); expected longstr", tagOf(v), erlFormat(v))}
		}
		switch s {
		case "all", "any", "all-with-x", "any-with-x":
			mode = s
		default:
			return hbinding{}, &BindingError{Text: fmt.Sprintf(
				"Invalid x-match field value %s; expected all, any, all-with-x, or any-with-x", erlBinary(s))}
		}
	}
	withX := strings.HasSuffix(mode, "-with-x")
	b := hbinding{any: strings.HasPrefix(mode, "any")}
	for k, v := range args {
		if k == "x-match" || (!withX && strings.HasPrefix(k, "x-")) {
			continue
		}
		b.keys = append(b.keys, hkey{name: k, val: v})
	}
	slices.SortFunc(b.keys, func(a, b hkey) int { return strings.Compare(a.name, b.name) })
	return b, nil
}

// match is headers_match: with "all" every key must match (so no keys
// matches every message), with "any" one must (so no keys matches none). A
// void binding value matches any header of that name, void included; a
// header of void value matches only a void binding value. Values compare
// with valuesEqual.
func (b *hbinding) match(headers map[string]any) bool {
	for i := range b.keys {
		k := &b.keys[i]
		v, ok := headers[k.name]
		ok = ok && (k.val == nil || valuesEqual(k.val, v))
		if ok == b.any {
			return ok
		}
	}
	return !b.any
}
