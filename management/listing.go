package management

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// This file holds RabbitMQ's list arguments (rabbit_mgmt_util's
// reply_list and pagination): sort and sort_reverse on every list, columns
// on every reply, and page, page_size, name and use_regex on the lists
// RabbitMQ pages (queues, exchanges, vhosts, connections, channels).
// Replies are Go values (structs with json tags, maps, slices); fields are
// read through their json names by reflection, so a list is never encoded
// and decoded again to be sorted or cut to columns.

const (
	defaultPageSize = 100
	maxPageSize     = 500
)

// listArgs are a request's list arguments.
type listArgs struct {
	// page is 0 when the request asks for no paging.
	page, pageSize int
	name           string
	re             *regexp.Regexp // name as a regular expression (use_regex=true)
	sort           string         // "" is the default order
	reverse        bool
	columns        [][]string // nil is every column
}

// parseColumns reads columns=a,b.c as RabbitMQ: comma-separated, each a
// dotted path; nil when absent.
func parseColumns(q *request) [][]string {
	v, ok := q.r.URL.Query()["columns"]
	if !ok {
		return nil
	}
	cols := [][]string{}
	for _, c := range strings.Split(v[0], ",") {
		var path []string
		for _, p := range strings.Split(c, ".") {
			if p != "" {
				path = append(path, p)
			}
		}
		if len(path) > 0 {
			cols = append(cols, path)
		}
	}
	return cols
}

// parseListArgs reads the list arguments; paged says whether the resource
// pages. On a bad argument it writes RabbitMQ's 400 and reports false.
func parseListArgs(q *request, paged bool) (listArgs, bool) {
	qs := q.r.URL.Query()
	la := listArgs{sort: qs.Get("sort"), reverse: qs.Get("sort_reverse") == "true", columns: parseColumns(q)}
	if !paged || !qs.Has("page") {
		return la, true
	}
	invalid := func() (listArgs, bool) {
		writeError(q.w, http.StatusBadRequest, "bad_request", "Pagination parameters are invalid")
		return la, false
	}
	page, err := strconv.Atoi(qs.Get("page"))
	if err != nil {
		return invalid()
	}
	size, sizeText := defaultPageSize, "undefined"
	if qs.Has("page_size") {
		if size, err = strconv.Atoi(qs.Get("page_size")); err != nil {
			return invalid()
		}
		sizeText = strconv.Itoa(size)
	}
	if page <= 0 || size <= 0 || size > maxPageSize {
		writeError(q.w, http.StatusBadRequest, "invalid_pagination_parameters",
			fmt.Sprintf("Invalid pagination parameters: page number %d, page size %s", page, sizeText))
		return la, false
	}
	la.page, la.pageSize, la.name = page, size, qs.Get("name")
	if la.name != "" && qs.Get("use_regex") == "true" {
		// RabbitMQ runs the pattern with PCRE's caseless option.
		if la.re, err = regexp.Compile("(?i)" + la.name); err != nil {
			return invalid()
		}
	}
	return la, true
}

// pageJSON is RabbitMQ's paged reply.
type pageJSON struct {
	FilteredCount int   `json:"filtered_count"`
	ItemCount     int   `json:"item_count"`
	Items         []any `json:"items"`
	Page          int   `json:"page"`
	PageCount     int   `json:"page_count"`
	PageSize      int   `json:"page_size"`
	TotalCount    int   `json:"total_count"`
}

// replyList answers a list as RabbitMQ's reply_list: sorted by the sort
// argument (then vhost and name), reversed on sort_reverse, and cut to
// columns; paged and filtered by name if paged and the request has a page.
// Items are expected in the default order (vhost, then name).
func replyList[T any](q *request, items []T, paged bool) {
	la, ok := parseListArgs(q, paged)
	if !ok {
		return
	}
	total := len(items)
	if la.page > 0 && la.name != "" {
		kept := make([]T, 0, len(items))
		lower := strings.ToLower(la.name)
		for _, it := range items {
			n, _ := fieldPath(reflect.ValueOf(it), []string{"name"})
			s, _ := n.(string)
			if (la.re != nil && la.re.MatchString(s)) || (la.re == nil && strings.Contains(strings.ToLower(s), lower)) {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	if la.sort != "" {
		sortItems(items, la.sort)
	}
	if la.reverse {
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
	}
	if la.page == 0 {
		if items == nil {
			writeJSON(q.w, http.StatusOK, []any{})
			return
		}
		writeJSON(q.w, http.StatusOK, withColumns(items, la.columns))
		return
	}
	from := (la.page - 1) * la.pageSize
	if from > len(items) {
		writeError(q.w, http.StatusBadRequest, "page_out_of_range",
			fmt.Sprintf("Page out of range, page: %d page size: %d, len: %d", la.page, la.pageSize, len(items)))
		return
	}
	to := min(from+la.pageSize, len(items))
	out := pageJSON{FilteredCount: len(items), ItemCount: to - from, Items: make([]any, 0, to-from),
		Page: la.page, PageCount: (len(items) + la.pageSize - 1) / la.pageSize, PageSize: la.pageSize, TotalCount: total}
	for _, it := range items[from:to] {
		out.Items = append(out.Items, withColumns(it, la.columns))
	}
	writeJSON(q.w, http.StatusOK, out)
}

// reply answers one object (or a list RabbitMQ does not sort) with 200,
// cut to the columns argument as RabbitMQ's reply does for every GET.
func (q *request) reply(v any) {
	writeJSON(q.w, http.StatusOK, withColumns(v, parseColumns(q)))
}

// sortItems orders items by the dotted path key, then vhost, then name, as
// RabbitMQ's sort_list; stable, so ties keep their order.
func sortItems[T any](items []T, key string) {
	paths := [][]string{strings.Split(key, "."), {"vhost"}, {"name"}}
	keys := make([][3]any, len(items))
	for i, it := range items {
		v := reflect.ValueOf(it)
		for k, p := range paths {
			keys[i][k], _ = fieldPath(v, p)
		}
	}
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		for k := range paths {
			if c := compareTerms(keys[idx[a]][k], keys[idx[b]][k]); c != 0 {
				return c < 0
			}
		}
		return false
	})
	sorted := make([]T, len(items))
	for i, j := range idx {
		sorted[i] = items[j]
	}
	copy(items, sorted)
}

// compareTerms orders JSON values as Erlang orders the terms RabbitMQ
// sorts: numbers, then atoms (false, null, true) by name, then objects,
// lists and last strings. A missing value counts as the number 0, as in
// RabbitMQ.
func compareTerms(a, b any) int {
	ra, rb := termRank(a), termRank(b)
	if ra != rb {
		return ra - rb
	}
	switch ra {
	case 0:
		fa, fb := number(a), number(b)
		switch {
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		return 0
	case 1:
		return strings.Compare(atomName(a), atomName(b))
	case 4:
		return strings.Compare(a.(string), b.(string))
	}
	return 0
}

func termRank(v any) int {
	switch v := v.(type) {
	case missingValue:
		return 0
	case nil:
		return 1
	case bool:
		return 1
	case string:
		return 4
	case json.Number:
		return 0
	default:
		switch reflect.ValueOf(v).Kind() {
		case reflect.Map, reflect.Struct:
			return 2
		case reflect.Slice, reflect.Array:
			return 3
		}
	}
	return 0
}

func atomName(v any) string {
	switch v {
	case nil:
		return "null"
	case true:
		return "true"
	}
	return "false"
}

func number(v any) float64 {
	switch v := v.(type) {
	case missingValue:
		return 0
	case json.Number:
		f, _ := v.Float64()
		return f
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	}
	return 0
}

// missingValue stands for a field an item lacks: it sorts as 0.
type missingValue struct{}

// fieldPath reads the value at a dotted path of JSON names; a missing
// field is missingValue{} and ok false.
func fieldPath(v reflect.Value, path []string) (any, bool) {
	for _, name := range path {
		f, ok := field(v, name)
		if !ok {
			return missingValue{}, false
		}
		v = f
	}
	v = deref(v)
	if !v.IsValid() {
		return nil, true
	}
	return v.Interface(), true
}

// deref follows pointers and interfaces; a nil one is the invalid Value.
func deref(v reflect.Value) reflect.Value {
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	return v
}

// field is the JSON field name of v (a struct or a map with string keys).
func field(v reflect.Value, name string) (reflect.Value, bool) {
	v = deref(v)
	if !v.IsValid() {
		return v, false
	}
	switch v.Kind() {
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return reflect.Value{}, false
		}
		f := v.MapIndex(reflect.ValueOf(name).Convert(v.Type().Key()))
		return f, f.IsValid()
	case reflect.Struct:
		for _, jf := range jsonFields(v.Type()) {
			if jf.name == name {
				f := v.FieldByIndex(jf.index)
				if jf.omitEmpty && f.IsZero() {
					return reflect.Value{}, false
				}
				return f, true
			}
		}
	}
	return reflect.Value{}, false
}

// jsonField is an exported struct field as encoding/json names it.
type jsonField struct {
	name      string
	index     []int
	omitEmpty bool
}

// jsonFieldCache maps a struct type to its []jsonField.
var jsonFieldCache sync.Map

func jsonFields(t reflect.Type) []jsonField {
	if fs, ok := jsonFieldCache.Load(t); ok {
		return fs.([]jsonField)
	}
	var fs []jsonField
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = sf.Name
		}
		fs = append(fs, jsonField{name: name, index: sf.Index, omitEmpty: strings.Contains(opts, "omitempty")})
	}
	jsonFieldCache.Store(t, fs)
	return fs
}

var marshalerType = reflect.TypeFor[json.Marshaler]()

// withColumns cuts v to cols as RabbitMQ's extract_column_items: an
// object keeps the columns named (descending into dotted ones), a list
// cuts each of its elements; nil cols is v unchanged.
func withColumns(v any, cols [][]string) any {
	if cols == nil {
		return v
	}
	return cutColumns(reflect.ValueOf(v), cols)
}

func cutColumns(v reflect.Value, cols [][]string) any {
	if cols == nil {
		if !v.IsValid() {
			return nil
		}
		return v.Interface()
	}
	v = deref(v)
	if !v.IsValid() {
		return nil
	}
	if v.Type().Implements(marshalerType) {
		return v.Interface()
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Array:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = cutColumns(v.Index(i), cols)
		}
		return out
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return v.Interface()
		}
		out := map[string]any{}
		for it := v.MapRange(); it.Next(); {
			k := it.Key().String()
			if sub, want := descend(k, cols); want {
				out[k] = cutColumns(it.Value(), sub)
			}
		}
		return out
	case reflect.Struct:
		out := map[string]any{}
		for _, jf := range jsonFields(v.Type()) {
			sub, want := descend(jf.name, cols)
			if !want {
				continue
			}
			f := v.FieldByIndex(jf.index)
			if jf.omitEmpty && f.IsZero() {
				continue
			}
			out[jf.name] = cutColumns(f, sub)
		}
		return out
	}
	return v.Interface()
}

// descend reports whether key is wanted and the columns below it (nil:
// all of it).
func descend(key string, cols [][]string) ([][]string, bool) {
	var sub [][]string
	want := false
	for _, c := range cols {
		if c[0] != key {
			continue
		}
		want = true
		if len(c) == 1 {
			return nil, true
		}
		sub = append(sub, c[1:])
	}
	return sub, want
}
