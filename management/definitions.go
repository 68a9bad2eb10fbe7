package management

import (
	"net/http"

	"github.com/warrenmq/warren/broker"
)

// The definitions format, its import and its export are the broker's
// (broker/definitions.go); these are their HTTP endpoints.

func (a *API) exportDefinitions(q *request) {
	if !q.u.admin() {
		notAuthorised(q.w, notAdmin)
		return
	}
	vs, ok := a.visibleVHosts(q, 1)
	if !ok {
		return
	}
	d := a.broker.Export(vs, len(q.segs) == 1)
	if q.r.URL.Query().Get("download") != "" {
		q.w.Header().Set("Content-Disposition", `attachment; filename="`+q.r.URL.Query().Get("download")+`"`)
	}
	q.reply(d)
}

func (a *API) importDefinitions(q *request) {
	var d broker.Definitions
	if !readBody(q, &d) {
		return
	}
	only := ""
	if len(q.segs) > 1 {
		if a.vhost(q, q.segs[1]) == nil {
			return
		}
		only = q.segs[1]
	}
	if err := a.broker.Import(&d, only, q.u.name); err != nil {
		brokerError(q.w, err)
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}
