package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// client talks to the management HTTP API.
type client struct {
	base, user, password, vhost string
	http                        *http.Client
}

// apiError is a non-2xx answer of the API.
type apiError struct {
	Status int
	Kind   string // the API's "error"
	Reason string // the API's "reason"
}

func (e *apiError) Error() string {
	switch {
	case e.Reason != "" && e.Kind != "":
		return fmt.Sprintf("%s (%s, HTTP %d)", e.Reason, e.Kind, e.Status)
	case e.Reason != "" || e.Kind != "":
		return fmt.Sprintf("%s (HTTP %d)", e.Reason+e.Kind, e.Status)
	}
	return fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
}

// unreachable is a request that got no HTTP answer at all.
type unreachable struct {
	url string
	err error
}

func (e *unreachable) Error() string { return fmt.Sprintf("cannot reach %s: %v", e.url, e.err) }
func (e *unreachable) Unwrap() error { return e.err }

// isStatus reports whether err is an API answer with that status.
func isStatus(err error, status int) bool {
	ae, ok := err.(*apiError)
	return ok && ae.Status == status
}

// call does one API request; path is already escaped. A non-2xx answer is
// an *apiError, no answer an *unreachable.
func (c *client) call(method, path string, body, into any) error {
	return c.callWith(method, path, nil, body, into)
}

// callWith is call with extra request headers.
func (c *client) callWith(method, path string, header map[string]string, body, into any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	u, err := url.Parse(strings.TrimRight(c.base, "/"))
	if err != nil {
		return fmt.Errorf("bad URL %q: %v", c.base, err)
	}
	u.RawPath = u.Path + path
	u.Path, _ = url.PathUnescape(u.RawPath)
	req, err := http.NewRequest(method, u.String(), rd)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.user, c.password)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &unreachable{url: c.base, err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return &unreachable{url: c.base, err: err}
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error, Reason string }
		_ = json.Unmarshal(b, &e)
		if into != nil {
			_ = json.Unmarshal(b, into) // health checks explain a 503 in the body
		}
		return &apiError{Status: resp.StatusCode, Kind: e.Error, Reason: e.Reason}
	}
	if into != nil && len(b) > 0 {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		return dec.Decode(into)
	}
	return nil
}

// esc escapes one path segment.
func esc(s string) string { return url.PathEscape(s) }
