package management

import (
	"embed"
	"net/http"
	"path"
	"strings"
)

// The management web UI: a static single page (index.html, app.js,
// style.css) that talks to /api/ with the caller's credentials. The files
// themselves carry no secrets, so they are served without authentication.
//
//go:embed ui/index.html ui/app.js ui/style.css
var uiFiles embed.FS

// uiTypes are the content types of the UI's files, fixed here rather than
// taken from the system's mime tables.
var uiTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// serveUI serves "/" (index.html) and "/ui/{file}"; anything else is 404.
func (a *API) serveUI(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/" || p == "/ui" || p == "/ui/":
		p = "ui/index.html"
	case strings.HasPrefix(p, "/ui/"):
		p = path.Clean(strings.TrimPrefix(p, "/"))
	default:
		notFound(w)
		return
	}
	b, err := uiFiles.ReadFile(p)
	ct, known := uiTypes[path.Ext(p)]
	if err != nil || !known {
		notFound(w)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}
