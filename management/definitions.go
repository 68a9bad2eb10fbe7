package management

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/vhost"
)

// Definitions is RabbitMQ's definitions file.
type Definitions struct {
	RabbitVersion    string          `json:"rabbit_version,omitempty"`
	RabbitMQVersion  string          `json:"rabbitmq_version,omitempty"`
	ProductName      string          `json:"product_name,omitempty"`
	ProductVersion   string          `json:"product_version,omitempty"`
	Users            []defUser       `json:"users"`
	VHosts           []defVHost      `json:"vhosts"`
	Permissions      []defPermission `json:"permissions"`
	TopicPermissions []any           `json:"topic_permissions"`
	Parameters       []any           `json:"parameters"`
	GlobalParameters []any           `json:"global_parameters"`
	Policies         []any           `json:"policies"`
	Queues           []defQueue      `json:"queues"`
	Exchanges        []defExchange   `json:"exchanges"`
	Bindings         []defBinding    `json:"bindings"`
}

type defUser struct {
	Name string `json:"name"`
	// Password is a clear-text password, which hand-written files may give
	// instead of PasswordHash; it is hashed on import and never exported.
	Password         string         `json:"password,omitempty"`
	PasswordHash     string         `json:"password_hash"`
	HashingAlgorithm string         `json:"hashing_algorithm"`
	Tags             tagList        `json:"tags"`
	Limits           map[string]any `json:"limits"`
}

// tagList reads tags as RabbitMQ writes them: a list (3.9+) or a
// comma-separated string (before).
type tagList []string

func (t *tagList) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*t = nil
		for _, x := range strings.Split(s, ",") {
			if x = strings.TrimSpace(x); x != "" {
				*t = append(*t, x)
			}
		}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*t = l
	return nil
}

type defVHost struct {
	Name   string `json:"name"`
	Limits []any  `json:"limits"`
	// Metadata is where RabbitMQ 3.10 writes a vhost's description and tags.
	Metadata *defVHostMetadata `json:"metadata,omitempty"`
	// Description and Tags at the top level are read too.
	Description string  `json:"description,omitempty"`
	Tags        tagList `json:"tags,omitempty"`
}

type defVHostMetadata struct {
	Description string  `json:"description"`
	Tags        tagList `json:"tags"`
}

type defPermission struct {
	User      string `json:"user"`
	VHost     string `json:"vhost"`
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

type defQueue struct {
	Name       string         `json:"name"`
	VHost      string         `json:"vhost,omitempty"`
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Arguments  map[string]any `json:"arguments"`
	// Type is always "classic" here; RabbitMQ 3.10 writes it.
	Type string `json:"type,omitempty"`
}

type defExchange struct {
	Name       string `json:"name"`
	VHost      string `json:"vhost,omitempty"`
	Type       string `json:"type"`
	Durable    bool   `json:"durable"`
	AutoDelete bool   `json:"auto_delete"`
	// Internal is left out when false, as RabbitMQ 3.10's export does.
	Internal  bool           `json:"internal,omitempty"`
	Arguments map[string]any `json:"arguments"`
}

type defBinding struct {
	Source          string         `json:"source"`
	VHost           string         `json:"vhost,omitempty"`
	Destination     string         `json:"destination"`
	DestinationType string         `json:"destination_type"`
	RoutingKey      string         `json:"routing_key"`
	Arguments       map[string]any `json:"arguments"`
}

// export builds the definitions of vs; with all, users, vhosts and
// permissions too (the per-vhost export leaves them out, as RabbitMQ's does).
func (a *API) export(vs []*vhost.VHost, all bool) Definitions {
	d := Definitions{
		RabbitVersion: "3.10.0", RabbitMQVersion: "3.10.0", ProductName: "Warren", ProductVersion: amqp.Version,
		Users: []defUser{}, VHosts: []defVHost{}, Permissions: []defPermission{},
		TopicPermissions: []any{}, Parameters: []any{}, GlobalParameters: []any{}, Policies: []any{},
		Queues: []defQueue{}, Exchanges: []defExchange{}, Bindings: []defBinding{},
	}
	if all {
		for _, u := range a.srv.Users() {
			d.Users = append(d.Users, defUser{Name: u.Name, PasswordHash: u.PasswordHash,
				HashingAlgorithm: u.HashingAlgorithm, Tags: nonNil(u.Tags), Limits: map[string]any{}})
			for _, vh := range slices.Sorted(maps.Keys(u.Permissions)) {
				p := u.Permissions[vh]
				d.Permissions = append(d.Permissions, defPermission{User: u.Name, VHost: vh,
					Configure: p.Configure, Write: p.Write, Read: p.Read})
			}
		}
	}
	if a.shovels != nil {
		for _, v := range vs {
			for _, p := range a.shovels.Parameters(v.Name) {
				pj := parameterJSON(p)
				if !all {
					delete(pj, "vhost") // as the per-vhost export leaves vhosts out
				}
				d.Parameters = append(d.Parameters, pj)
			}
		}
	}
	for _, v := range vs {
		vn := ""
		if all {
			vn = v.Name
			info, _ := a.srv.VHostInfo(v.Name)
			d.VHosts = append(d.VHosts, defVHost{Name: v.Name, Limits: []any{},
				Metadata: &defVHostMetadata{Description: info.Description, Tags: nonNil(info.Tags)}})
		}
		for _, pol := range v.Policies() {
			d.Policies = append(d.Policies, map[string]any{
				"vhost": vn, "name": pol.Name, "pattern": pol.Pattern, "apply-to": pol.ApplyTo,
				"priority": pol.Priority, "definition": jsonTable(pol.Definition),
			})
		}
		qs := v.Queues()
		sort.Slice(qs, func(i, j int) bool { return qs[i].Name < qs[j].Name })
		for _, q := range qs {
			if q.Exclusive {
				continue
			}
			d.Queues = append(d.Queues, defQueue{Name: q.Name, VHost: vn, Durable: q.Durable, AutoDelete: q.AutoDelete, Arguments: jsonTable(q.Args), Type: "classic"})
		}
		es := v.Exchanges()
		sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
		for _, e := range es {
			if e.Name == "" || vhost.Reserved(e.Name) {
				continue
			}
			d.Exchanges = append(d.Exchanges, defExchange{Name: e.Name, VHost: vn, Type: e.Kind.String(), Durable: e.Durable,
				AutoDelete: e.AutoDelete, Internal: e.Internal, Arguments: jsonTable(e.Args)})
		}
		for _, b := range allBindings(v, false) {
			if q := findQueue(v, b.Destination); b.DestinationType == "queue" && q != nil && q.Exclusive {
				continue
			}
			d.Bindings = append(d.Bindings, defBinding{Source: b.Source, VHost: vn, Destination: b.Destination,
				DestinationType: b.DestinationType, RoutingKey: b.RoutingKey, Arguments: b.Arguments})
		}
	}
	return d
}

func (a *API) exportDefinitions(q *request) {
	if !q.u.admin() {
		writeError(q.w, http.StatusForbidden, "not_authorised", "Not administrator user")
		return
	}
	vs, ok := a.visibleVHosts(q, 1)
	if !ok {
		return
	}
	d := a.export(vs, len(q.segs) == 1)
	if q.r.URL.Query().Get("download") != "" {
		q.w.Header().Set("Content-Disposition", `attachment; filename="`+q.r.URL.Query().Get("download")+`"`)
	}
	writeJSON(q.w, 200, d)
}

func (a *API) importDefinitions(q *request) {
	var d Definitions
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
	if err := a.importAs(&d, only, q.u.name); err != nil {
		brokerError(q.w, err)
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}

// Import applies definitions as RabbitMQ's import does: users, vhosts and
// permissions (each an amqp.ServerOp), then policies, exchanges, queues and
// bindings (each through vhost.Apply). Objects without a vhost go to only
// (or "/"). With only set (a per-vhost import), users, vhosts and
// permissions are ignored, as RabbitMQ ignores them.
func (a *API) Import(d *Definitions, only string) error {
	return a.importAs(d, only, "")
}

// importAs is Import on behalf of an API user, who is given full
// permissions on the vhosts the import creates, as RabbitMQ does; "" is the
// broker itself (definitions.import_file at start).
func (a *API) importAs(d *Definitions, only, acting string) error {
	vh := func(name string) (*vhost.VHost, error) {
		if only != "" {
			name = only
		} else if name == "" {
			name = "/"
		}
		v := a.srv.VHost(name)
		if v == nil {
			return nil, &vhost.Error{Kind: vhost.NotFound, Text: fmt.Sprintf("no vhost '%s'", name)}
		}
		return v, nil
	}
	if only == "" {
		if err := a.importAccess(d, acting); err != nil {
			return err
		}
	} else if n := len(d.Users) + len(d.VHosts) + len(d.Permissions); n > 0 {
		a.log.Info("definitions import into one vhost: users, vhosts and permissions are ignored",
			"users", len(d.Users), "vhosts", len(d.VHosts), "permissions", len(d.Permissions))
	}
	if err := a.importParameters(d, vh); err != nil {
		return err
	}
	// Policies first, so that the queues declared below take them at once.
	for _, raw := range d.Policies {
		pol, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		str := func(k string) string { s, _ := pol[k].(string); return s }
		v, err := vh(str("vhost"))
		if err != nil {
			return err
		}
		prio, _ := tableValue(pol["priority"]).(int64)
		def, _ := pol["definition"].(map[string]any)
		if _, err := v.Apply(vhost.SetPolicy{Name: str("name"), Pattern: str("pattern"), ApplyTo: str("apply-to"),
			Priority: int(prio), Definition: tableArgs(def)}); err != nil {
			return err
		}
	}
	for _, e := range d.Exchanges {
		v, err := vh(e.VHost)
		if err != nil {
			return err
		}
		if e.Name == "" || vhost.Reserved(e.Name) {
			continue
		}
		if _, err := v.Apply(vhost.DeclareExchange{Name: e.Name, Kind: e.Type, Durable: e.Durable, AutoDelete: e.AutoDelete,
			Internal: e.Internal, Args: tableArgs(e.Arguments)}); err != nil {
			return err
		}
	}
	for _, qd := range d.Queues {
		v, err := vh(qd.VHost)
		if err != nil {
			return err
		}
		if _, err := v.Apply(vhost.DeclareQueue{Name: qd.Name, Durable: qd.Durable, AutoDelete: qd.AutoDelete, Args: tableArgs(qd.Arguments)}); err != nil {
			return err
		}
	}
	for _, b := range d.Bindings {
		v, err := vh(b.VHost)
		if err != nil {
			return err
		}
		if b.Source == "" {
			continue // the default exchange's bindings are implicit
		}
		toEx := b.DestinationType == "exchange"
		if _, err := v.Apply(vhost.Bind{Source: b.Source, Destination: b.Destination, ToExchange: toEx, Key: b.RoutingKey,
			Args: tableArgs(b.Arguments), Owner: ownerOf(v, b.Destination, toEx)}); err != nil {
			return err
		}
	}
	return nil
}

// importAccess creates or updates the users, creates the missing vhosts
// and sets the permissions of d.
func (a *API) importAccess(d *Definitions, acting string) error {
	version := d.RabbitVersion
	if version == "" {
		version = d.RabbitMQVersion
	}
	for _, u := range d.Users {
		op := amqp.PutUser{Name: u.Name, PasswordHash: u.PasswordHash, HashingAlgorithm: u.HashingAlgorithm, Tags: u.Tags}
		switch {
		case u.PasswordHash == "" && u.Password != "":
			op.PasswordHash, op.HashingAlgorithm = amqp.NewPasswordHash(u.Password), ""
		case op.HashingAlgorithm == "" && before36(version):
			// RabbitMQ before 3.6 hashed with MD5 and did not say so.
			op.HashingAlgorithm = "rabbit_password_hashing_md5"
		}
		if err := a.srv.Apply(op); err != nil {
			return fmt.Errorf("user '%s': %w", u.Name, err)
		}
	}
	for _, v := range d.VHosts {
		if a.srv.VHost(v.Name) != nil {
			continue // as RabbitMQ 3.10: an existing vhost is left as it is
		}
		op := amqp.PutVhost{Name: v.Name, Description: v.Description, Tags: v.Tags}
		if v.Metadata != nil {
			op.Description, op.Tags = v.Metadata.Description, v.Metadata.Tags
		}
		if err := a.srv.Apply(op); err != nil {
			return err
		}
		if _, ok := a.srv.User(acting); ok {
			err := a.srv.Apply(amqp.SetPermissions{User: acting, Vhost: v.Name, Configure: fullAccess, Write: fullAccess, Read: fullAccess})
			if err != nil {
				return err
			}
		}
	}
	for _, p := range d.Permissions {
		if err := a.srv.Apply(amqp.SetPermissions{User: p.User, Vhost: p.VHost, Configure: p.Configure, Write: p.Write, Read: p.Read}); err != nil {
			return err
		}
	}
	return nil
}

// before36 reports whether a RabbitMQ version string is older than 3.6.
func before36(version string) bool {
	var major, minor int
	if _, err := fmt.Sscanf(version, "%d.%d", &major, &minor); err != nil {
		return false
	}
	return major < 3 || (major == 3 && minor < 6)
}
