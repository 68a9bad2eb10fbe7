package broker

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/warrenmq/warren/amqp/wire"
	"github.com/warrenmq/warren/event"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/queue"
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
	// Type is the queue type ("classic", "quorum"), as RabbitMQ 3.10
	// writes it.
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

// Export builds the definitions of vs; with all, users, vhosts and
// permissions too (the per-vhost export leaves them out, as RabbitMQ's does).
func (b *Broker) Export(vs []*vhost.VHost, all bool) Definitions {
	d := Definitions{
		RabbitVersion: "3.10.0", RabbitMQVersion: "3.10.0", ProductName: "Warren", ProductVersion: Version,
		Users: []defUser{}, VHosts: []defVHost{}, Permissions: []defPermission{},
		TopicPermissions: []any{}, Parameters: []any{}, GlobalParameters: []any{}, Policies: []any{},
		Queues: []defQueue{}, Exchanges: []defExchange{}, Bindings: []defBinding{},
	}
	if all {
		for _, u := range b.Users() {
			d.Users = append(d.Users, defUser{Name: u.Name, PasswordHash: u.PasswordHash,
				HashingAlgorithm: u.HashingAlgorithm, Tags: nonNil(u.Tags), Limits: exportLimits(u.Limits)})
			for _, vh := range slices.Sorted(maps.Keys(u.Permissions)) {
				p := u.Permissions[vh]
				d.Permissions = append(d.Permissions, defPermission{User: u.Name, VHost: vh,
					Configure: p.Configure, Write: p.Write, Read: p.Read})
			}
		}
	}
	if all {
		for _, tp := range b.TopicPermissions("", "") {
			d.TopicPermissions = append(d.TopicPermissions, tp)
		}
		for _, name := range b.GlobalParameterNames() {
			v, _ := b.GlobalParameter(name)
			d.GlobalParameters = append(d.GlobalParameters, map[string]any{"name": name, "value": v})
		}
	}
	// RabbitMQ writes a vhost's limits as a runtime parameter of the
	// vhost-limits component, also in a per-vhost export.
	for _, v := range vs {
		if l := b.ownVhostLimits(v.Name); len(l) > 0 {
			// The per-vhost export keeps the vhost here, as RabbitMQ's does.
			pj := map[string]any{"vhost": v.Name, "component": vhostLimitsComponent, "name": "limits", "value": exportLimits(l)}
			d.Parameters = append(d.Parameters, pj)
		}
	}
	// Operator policies are runtime parameters of the operator_policy
	// component in RabbitMQ's definitions, with their vhost.
	for _, v := range vs {
		for _, op := range v.OperatorPolicies() {
			d.Parameters = append(d.Parameters, map[string]any{"vhost": v.Name, "component": operatorPolicyComponent, "name": op.Name,
				"value": map[string]any{"pattern": op.Pattern, "apply-to": op.ApplyTo, "priority": op.Priority, "definition": JSONTable(op.Definition)}})
		}
	}
	if p := b.parameterStore(); p != nil {
		for _, v := range vs {
			for _, pj := range p.ExportParameters(v.Name) {
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
			info, _ := b.VHostInfo(v.Name)
			d.VHosts = append(d.VHosts, defVHost{Name: v.Name, Limits: []any{},
				Metadata: &defVHostMetadata{Description: info.Description, Tags: nonNil(info.Tags)}})
		}
		for _, pol := range v.Policies() {
			d.Policies = append(d.Policies, map[string]any{
				"vhost": vn, "name": pol.Name, "pattern": pol.Pattern, "apply-to": pol.ApplyTo,
				"priority": pol.Priority, "definition": JSONTable(pol.Definition),
			})
		}
		qs := v.Queues()
		sort.Slice(qs, func(i, j int) bool { return qs[i].Declared().Name < qs[j].Declared().Name })
		for _, q := range qs {
			if q.Declared().Exclusive {
				continue
			}
			d.Queues = append(d.Queues, defQueue{Name: q.Declared().Name, VHost: vn, Durable: q.Declared().Durable, AutoDelete: q.Declared().AutoDelete, Arguments: JSONTable(q.Declared().Args), Type: q.Declared().Type.String()})
		}
		es := v.Exchanges()
		sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
		for _, e := range es {
			if e.Name == "" || vhost.Reserved(e.Name) {
				continue
			}
			d.Exchanges = append(d.Exchanges, defExchange{Name: e.Name, VHost: vn, Type: e.Kind.String(), Durable: e.Durable,
				AutoDelete: e.AutoDelete, Internal: e.Internal, Arguments: JSONTable(e.Args)})
		}
		for _, e := range es {
			if e.Name == "" {
				continue
			}
			for _, bd := range sortedBindings(e) {
				if q := findQueue(v, bd.Destination.Name); !bd.Destination.Exchange && q != nil && q.Declared().Exclusive {
					continue
				}
				dt := "queue"
				if bd.Destination.Exchange {
					dt = "exchange"
				}
				d.Bindings = append(d.Bindings, defBinding{Source: bd.Source, VHost: vn, Destination: bd.Destination.Name,
					DestinationType: dt, RoutingKey: bd.Key, Arguments: JSONTable(bd.Args)})
			}
		}
	}
	return d
}

// Import applies definitions as RabbitMQ's import does: users, vhosts and
// permissions, then policies, exchanges, queues and bindings, each an Op
// through Apply. Objects without a vhost go to only (or "/"). With only set
// (a per-vhost import), users, vhosts and permissions are ignored, as
// RabbitMQ ignores them. acting is the user importing, who is given full
// permissions on the vhosts the import creates, as RabbitMQ does; "" is the
// broker itself (definitions.import_file at start).
func (b *Broker) Import(d *Definitions, only, acting string) error {
	vh := func(name string) (*vhost.VHost, error) {
		if only != "" {
			name = only
		} else if name == "" {
			name = "/"
		}
		v := b.VHost(name)
		if v == nil {
			return nil, noVhost(name)
		}
		return v, nil
	}
	apply := func(v *vhost.VHost, op vhost.Op) error {
		_, err := b.ApplyAs(VhostOp{Vhost: v.Name, Op: op}, importer(acting))
		return err
	}
	if only == "" {
		if err := b.importAccess(d, acting); err != nil {
			return err
		}
		if err := b.importTopicPermissions(d, acting); err != nil {
			return err
		}
		if err := b.importGlobals(d, acting); err != nil {
			return err
		}
	} else if n := len(d.Users) + len(d.VHosts) + len(d.Permissions); n > 0 {
		b.log.Info("definitions import into one vhost: users, vhosts and permissions are ignored",
			"users", len(d.Users), "vhosts", len(d.VHosts), "permissions", len(d.Permissions))
	}
	if err := b.importParameters(d, vh); err != nil {
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
		prio, _ := TableValue(pol["priority"]).(int64)
		def, _ := pol["definition"].(map[string]any)
		if err := apply(v, vhost.SetPolicy{Name: str("name"), Pattern: str("pattern"), ApplyTo: str("apply-to"),
			Priority: int(prio), Definition: TableArgs(def)}); err != nil {
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
		if err := apply(v, vhost.DeclareExchange{Name: e.Name, Kind: e.Type, Durable: e.Durable, AutoDelete: e.AutoDelete,
			Internal: e.Internal, Args: TableArgs(e.Arguments)}); err != nil {
			return err
		}
	}
	for _, qd := range d.Queues {
		v, err := vh(qd.VHost)
		if err != nil {
			return err
		}
		args := TableArgs(qd.Arguments)
		if _, ok := args["x-queue-type"]; !ok && qd.Type != "" && qd.Type != "classic" {
			// The type field alone names the type in some exports.
			if args == nil {
				args = map[string]any{}
			}
			args["x-queue-type"] = qd.Type
		}
		if err := apply(v, vhost.DeclareQueue{Name: qd.Name, Durable: qd.Durable, AutoDelete: qd.AutoDelete, Args: args}); err != nil {
			return err
		}
	}
	for _, bd := range d.Bindings {
		v, err := vh(bd.VHost)
		if err != nil {
			return err
		}
		if bd.Source == "" {
			continue // the default exchange's bindings are implicit
		}
		toEx := bd.DestinationType == "exchange"
		if err := apply(v, vhost.Bind{Source: bd.Source, Destination: bd.Destination, ToExchange: toEx, Key: bd.RoutingKey,
			Args: TableArgs(bd.Arguments), Owner: ownerOf(v, bd.Destination, toEx)}); err != nil {
			return err
		}
	}
	return nil
}

// importAccess creates or updates the users, creates the missing vhosts
// and sets the permissions of d.
func (b *Broker) importAccess(d *Definitions, acting string) error {
	version := d.RabbitVersion
	if version == "" {
		version = d.RabbitMQVersion
	}
	for _, u := range d.Users {
		op := PutUser{Name: u.Name, PasswordHash: u.PasswordHash, HashingAlgorithm: u.HashingAlgorithm, Tags: u.Tags}
		switch {
		case u.PasswordHash == "" && u.Password != "":
			op.PasswordHash, op.HashingAlgorithm = NewPasswordHash(u.Password), ""
		case op.HashingAlgorithm == "" && before36(version):
			// RabbitMQ before 3.6 hashed with MD5 and did not say so.
			op.HashingAlgorithm = "rabbit_password_hashing_md5"
		}
		if _, err := b.ApplyAs(op, importer(acting)); err != nil {
			return fmt.Errorf("user '%s': %w", u.Name, err)
		}
		if err := b.importUserLimits(u.Name, u.Limits); err != nil {
			return fmt.Errorf("user '%s': %w", u.Name, err)
		}
	}
	for _, v := range d.VHosts {
		if b.VHost(v.Name) != nil {
			continue // as RabbitMQ 3.10: an existing vhost is left as it is
		}
		op := PutVhost{Name: v.Name, Description: v.Description, Tags: v.Tags}
		if v.Metadata != nil {
			op.Description, op.Tags = v.Metadata.Description, v.Metadata.Tags
		}
		if _, err := b.ApplyAs(op, importer(acting)); err != nil {
			return err
		}
		if _, ok := b.User(acting); ok {
			_, err := b.ApplyAs(SetPermissions{User: acting, Vhost: v.Name, Configure: ".*", Write: ".*", Read: ".*"}, importer(acting))
			if err != nil {
				return err
			}
		}
	}
	for _, p := range d.Permissions {
		if _, err := b.ApplyAs(SetPermissions{User: p.User, Vhost: p.VHost, Configure: p.Configure, Write: p.Write, Read: p.Read}, importer(acting)); err != nil {
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

// ReadDefinitions decodes a definitions file as RabbitMQ writes it (numbers
// kept exact).
func ReadDefinitions(r io.Reader) (*Definitions, error) {
	var d Definitions
	dec := json.NewDecoder(r)
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return nil, err
	}
	return &d, nil
}

// ImportFile imports a definitions file as the broker itself
// (definitions.import_file at start).
func (b *Broker) ImportFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	d, err := ReadDefinitions(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return b.Import(d, "", "")
}

// sortedBindings are e's bindings by destination, then PropertiesKey, as
// RabbitMQ lists them.
func sortedBindings(e *exchange.Exchange) []exchange.Binding {
	bs := e.Bindings()
	sort.Slice(bs, func(i, j int) bool {
		if bs[i].Destination.Name != bs[j].Destination.Name {
			return bs[i].Destination.Name < bs[j].Destination.Name
		}
		return PropertiesKey(bs[i].Key, bs[i].Args) < PropertiesKey(bs[j].Key, bs[j].Args)
	})
	return bs
}

// PropertiesKey identifies a binding in URLs as RabbitMQ does: the routing
// key ("~" when empty), then "~" and a hash of the arguments if any.
func PropertiesKey(key string, args map[string]any) string {
	pk := url.PathEscape(key)
	if key == "" {
		pk = "~"
	}
	if len(args) == 0 {
		return pk
	}
	b, _ := json.Marshal(JSONTable(args)) // map keys are sorted: stable
	sum := sha256.Sum256(b)
	if key == "" {
		pk = ""
	}
	return pk + "~" + base64.RawURLEncoding.EncodeToString(sum[:12])
}

// findQueue returns a queue whatever its owner (exports and the API see
// exclusive queues too, as RabbitMQ's do).
func findQueue(v *vhost.VHost, name string) queue.Interface {
	for _, q := range v.Queues() {
		if q.Declared().Name == name {
			return q
		}
	}
	return nil
}

// ownerOf is the owner to act as on a queue binding: an import may bind
// exclusive queues, as RabbitMQ's may.
func ownerOf(v *vhost.VHost, dest string, toEx bool) uint64 {
	if toEx {
		return 0
	}
	if q := findQueue(v, dest); q != nil {
		return q.Declared().Owner
	}
	return 0
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// JSONValue turns a field-table value into what RabbitMQ's definitions and
// API show.
func JSONValue(v any) any {
	switch v := v.(type) {
	case wire.Table:
		return JSONTable(v)
	case map[string]any:
		return JSONTable(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = JSONValue(x)
		}
		return out
	case []byte:
		return string(v)
	case time.Time:
		return v.Unix()
	case wire.Decimal:
		return v.Value
	}
	return v
}

// JSONTable is JSONValue for a table.
func JSONTable(t map[string]any) map[string]any {
	out := make(map[string]any, len(t))
	for k, v := range t {
		out[k] = JSONValue(v)
	}
	return out
}

// TableValue turns a JSON value (decoded with UseNumber) into a field-table
// value: integers become int64, other numbers float64.
func TableValue(v any) any {
	switch v := v.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		f, _ := v.Float64()
		return f
	case float64:
		if v == float64(int64(v)) {
			return int64(v)
		}
		return v
	case map[string]any:
		return TableArgs(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = TableValue(x)
		}
		return out
	}
	return v
}

// TableArgs converts a JSON arguments object; nil for an empty one.
func TableArgs(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = TableValue(v)
	}
	return out
}

// ParameterStore keeps a component's runtime parameters (RabbitMQ's
// set_parameter), such as shovels, which live above the broker; it takes
// part in definitions import and export once registered.
type ParameterStore interface {
	// ImportParameter sets one parameter of an import; handled is false
	// when the component is not this store's.
	ImportParameter(component, vhost, name string, value json.RawMessage) (handled bool, err error)
	// ExportParameters returns a vhost's parameters as definitions entries
	// (component, vhost, name, value).
	ExportParameters(vhost string) []map[string]any
}

// RegisterParameters makes p take part in definitions import and export.
func (b *Broker) RegisterParameters(p ParameterStore) {
	b.closersMu.Lock()
	b.params = p
	b.closersMu.Unlock()
}

func (b *Broker) parameterStore() ParameterStore {
	b.closersMu.Lock()
	defer b.closersMu.Unlock()
	return b.params
}

// operatorPolicyComponent is the runtime parameter component RabbitMQ
// exports operator policies under.
const operatorPolicyComponent = "operator_policy"

// importParameters hands the parameters of d to the registered store;
// others are logged and skipped.
func (b *Broker) importParameters(d *Definitions, vh func(string) (*vhost.VHost, error)) error {
	ps := b.parameterStore()
	for _, raw := range d.Parameters {
		p, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		comp, _ := p["component"].(string)
		name, _ := p["name"].(string)
		vn, _ := p["vhost"].(string)
		if comp == vhostLimitsComponent {
			v, err := vh(vn)
			if err != nil {
				return err
			}
			value, _ := p["value"].(map[string]any)
			if err := b.importVhostLimits(v.Name, value); err != nil {
				return err
			}
			continue
		}
		if comp == operatorPolicyComponent {
			v, err := vh(vn)
			if err != nil {
				return err
			}
			value, _ := p["value"].(map[string]any)
			str := func(k string) string { s, _ := value[k].(string); return s }
			prio, _ := TableValue(value["priority"]).(int64)
			def, _ := value["definition"].(map[string]any)
			if _, err := b.ApplyAs(VhostOp{Vhost: v.Name, Op: vhost.SetOperatorPolicy{Name: name, Pattern: str("pattern"), ApplyTo: str("apply-to"),
				Priority: int(prio), Definition: TableArgs(def)}}, ""); err != nil {
				return fmt.Errorf("operator policy '%s': %w", name, err)
			}
			continue
		}
		handled := false
		if ps != nil {
			v, err := vh(vn)
			if err != nil {
				return err
			}
			value, err := json.Marshal(p["value"])
			if err != nil {
				return err
			}
			if handled, err = ps.ImportParameter(comp, v.Name, name, value); err != nil {
				return err
			}
		}
		if !handled {
			b.log.Info("definitions import: parameter skipped: no such component", "component", comp, "name", name)
		}
	}
	return nil
}

// importer is who an import's events name: the importing user, or the
// broker itself for the definitions file read at start.
func importer(acting string) string {
	if acting == "" {
		return event.Internal
	}
	return acting
}

// importGlobals sets the global parameters of d.
func (b *Broker) importGlobals(d *Definitions, acting string) error {
	for _, raw := range d.GlobalParameters {
		p, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		name, _ := p["name"].(string)
		value, err := json.Marshal(p["value"])
		if err != nil {
			return invalid("global parameter '%s': %v", name, err)
		}
		if _, err := b.ApplyAs(SetGlobalParameter{Name: name, Value: value}, importer(acting)); err != nil {
			return fmt.Errorf("global parameter '%s': %w", name, err)
		}
	}
	return nil
}

// importTopicPermissions sets the topic permissions of d.
func (b *Broker) importTopicPermissions(d *Definitions, acting string) error {
	for _, raw := range d.TopicPermissions {
		p, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		str := func(k string) string { s, _ := p[k].(string); return s }
		op := SetTopicPermission{User: str("user"), Vhost: str("vhost"), Exchange: str("exchange"), Write: str("write"), Read: str("read")}
		if _, err := b.ApplyAs(op, importer(acting)); err != nil {
			return fmt.Errorf("topic permission of user '%s' in vhost '%s': %w", op.User, op.Vhost, err)
		}
	}
	return nil
}
