package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPprofHandler(t *testing.T) {
	srv := httptest.NewServer(pprofHandler())
	defer srv.Close()
	// Only the profiler is served on its listener.
	for path, want := range map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/heap?debug=1":      "heap profile",
		"/debug/pprof/profile?seconds=1": "", // a binary CPU profile
		"/debug/pprof/cmdline":           "warren",
		"/api/overview":                  "404",
		"/metrics":                       "404",
	} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err, path)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch want {
		case "404":
			assert.Equal(t, http.StatusNotFound, resp.StatusCode, path)
		case "":
			assert.Equal(t, http.StatusOK, resp.StatusCode, path)
			assert.NotEmpty(t, body, path)
		default:
			assert.Contains(t, string(body), want, path)
		}
	}
}
