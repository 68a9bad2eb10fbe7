package management_test

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestListArguments checks page, page_size, name, use_regex, sort,
// sort_reverse and columns against what RabbitMQ 3.10.8 answers for the
// same five queues.
func TestListArguments(t *testing.T) {
	e := start(t)
	require.Equal(t, 201, e.do("PUT", "/api/vhosts/lv", nil, nil))
	for i, n := range []string{"qc", "qa", "qe", "qb", "qd"} {
		require.Equal(t, 201, e.do("PUT", "/api/queues/lv/"+n, map[string]any{"durable": false,
			"arguments": map[string]any{"x-max-length": 10 - i}}, nil))
	}
	names := func(v any) []string {
		var out []string
		for _, it := range v.([]any) {
			out = append(out, it.(map[string]any)["name"].(string))
		}
		return out
	}
	for _, tc := range []struct {
		query  string
		code   int
		names  []string       // the items' names, in order
		page   map[string]any // the paged reply's counters; nil: a plain list
		errors map[string]any
	}{
		{query: "", code: 200, names: []string{"qa", "qb", "qc", "qd", "qe"}},
		{query: "sort_reverse=true", code: 200, names: []string{"qe", "qd", "qc", "qb", "qa"}},
		{query: "sort=arguments.x-max-length", code: 200, names: []string{"qd", "qb", "qe", "qa", "qc"}},
		{query: "sort=arguments.x-max-length&sort_reverse=true", code: 200, names: []string{"qc", "qa", "qe", "qb", "qd"}},
		{query: "sort=nonexistent&sort_reverse=true", code: 200, names: []string{"qe", "qd", "qc", "qb", "qa"}},
		{query: "name=qa", code: 200, names: []string{"qa", "qb", "qc", "qd", "qe"}}, // name filters only pages
		{query: "page=1&page_size=2", code: 200, names: []string{"qa", "qb"},
			page: map[string]any{"filtered_count": 5.0, "item_count": 2.0, "page": 1.0, "page_count": 3.0, "page_size": 2.0, "total_count": 5.0}},
		{query: "page=3&page_size=2", code: 200, names: []string{"qe"},
			page: map[string]any{"filtered_count": 5.0, "item_count": 1.0, "page": 3.0, "page_count": 3.0, "page_size": 2.0, "total_count": 5.0}},
		{query: "page=2&page_size=5", code: 200, names: nil,
			page: map[string]any{"filtered_count": 5.0, "item_count": 0.0, "page": 2.0, "page_count": 1.0, "page_size": 5.0, "total_count": 5.0}},
		{query: "page=1&name=Q", code: 200, names: []string{"qa", "qb", "qc", "qd", "qe"},
			page: map[string]any{"filtered_count": 5.0, "item_count": 5.0, "page": 1.0, "page_count": 1.0, "page_size": 100.0, "total_count": 5.0}},
		{query: "page=1&name=q[ab]&use_regex=true", code: 200, names: []string{"qa", "qb"},
			page: map[string]any{"filtered_count": 2.0, "item_count": 2.0, "page": 1.0, "page_count": 1.0, "page_size": 100.0, "total_count": 5.0}},
		{query: "page=1&name=^Q[AB]&use_regex=true&sort_reverse=true", code: 200, names: []string{"qb", "qa"},
			page: map[string]any{"filtered_count": 2.0, "item_count": 2.0, "page": 1.0, "page_count": 1.0, "page_size": 100.0, "total_count": 5.0}},
		{query: "page=1&name=^q", code: 200, names: nil,
			page: map[string]any{"filtered_count": 0.0, "item_count": 0.0, "page": 1.0, "page_count": 0.0, "page_size": 100.0, "total_count": 5.0}},
		{query: "page=5&page_size=2", code: 400, errors: map[string]any{"error": "page_out_of_range", "reason": "Page out of range, page: 5 page size: 2, len: 5"}},
		{query: "page=1&page_size=600", code: 400, errors: map[string]any{"error": "invalid_pagination_parameters", "reason": "Invalid pagination parameters: page number 1, page size 600"}},
		{query: "page=0", code: 400, errors: map[string]any{"error": "invalid_pagination_parameters", "reason": "Invalid pagination parameters: page number 0, page size undefined"}},
		{query: "page=1&page_size=0", code: 400, errors: map[string]any{"error": "invalid_pagination_parameters", "reason": "Invalid pagination parameters: page number 1, page size 0"}},
		{query: "page=x", code: 400, errors: map[string]any{"error": "bad_request", "reason": "Pagination parameters are invalid"}},
		{query: "page=1&page_size=abc", code: 400, errors: map[string]any{"error": "bad_request", "reason": "Pagination parameters are invalid"}},
		{query: "page=1&name=q(&use_regex=true", code: 400, errors: map[string]any{"error": "bad_request", "reason": "Pagination parameters are invalid"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			require.NoError(t, err)
			var out any
			require.Equal(t, tc.code, e.do("GET", "/api/queues/lv?"+q.Encode(), nil, &out), "%v", out)
			switch {
			case tc.errors != nil:
				require.Equal(t, tc.errors, out)
			case tc.page != nil:
				m := out.(map[string]any)
				items := m["items"]
				delete(m, "items")
				require.Equal(t, tc.page, m)
				require.Equal(t, tc.names, names(items))
			default:
				require.Equal(t, tc.names, names(out))
			}
		})
	}
}

// TestColumns checks that columns cuts objects, nested ones included, in
// lists, pages and single objects, as RabbitMQ's extract_column_items.
func TestColumns(t *testing.T) {
	e := start(t)
	require.Equal(t, 201, e.do("PUT", "/api/queues/%2F/cq", map[string]any{"arguments": map[string]any{"x-max-length": 3, "x-message-ttl": 5}}, nil))
	for _, tc := range []struct {
		path string
		want any
	}{
		{"/api/queues/%2F?columns=name,durable", []any{map[string]any{"name": "cq", "durable": true}}},
		{"/api/queues/%2F?columns=name,arguments.x-max-length,nothing", []any{map[string]any{"name": "cq", "arguments": map[string]any{"x-max-length": 3.0}}}},
		{"/api/queues/%2F?page=1&columns=name", map[string]any{"filtered_count": 1.0, "item_count": 1.0, "page": 1.0, "page_count": 1.0,
			"page_size": 100.0, "total_count": 1.0, "items": []any{map[string]any{"name": "cq"}}}},
		{"/api/queues/%2F/cq?columns=name,message_stats.publish", map[string]any{"name": "cq", "message_stats": map[string]any{"publish": 0.0}}},
		{"/api/overview?columns=object_totals.queues", map[string]any{"object_totals": map[string]any{"queues": 1.0}}},
		{"/api/users?columns=name,tags", []any{map[string]any{"name": "guest", "tags": []any{"administrator"}}, map[string]any{"name": "watcher", "tags": []any{"monitoring"}}}},
		{"/api/vhosts?page=1&page_size=1&columns=name", map[string]any{"filtered_count": 1.0, "item_count": 1.0, "page": 1.0, "page_count": 1.0,
			"page_size": 1.0, "total_count": 1.0, "items": []any{map[string]any{"name": "/"}}}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			var out any
			require.Equal(t, 200, e.do("GET", tc.path, nil, &out), fmt.Sprint(out))
			require.Equal(t, tc.want, out)
		})
	}
}
