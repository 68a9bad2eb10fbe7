// Package plugins lists the RabbitMQ plugins whose features Warren has built
// in. They cannot be enabled or disabled: they are always on. The management
// API reports them (/api/nodes' enabled_plugins) and rabbitmq-plugins lists
// them, so both say the same thing; add a plugin here when Warren gains what
// it provides.
package plugins

// Plugin is one built-in RabbitMQ plugin.
type Plugin struct {
	// Name is RabbitMQ's name for it, e.g. "rabbitmq_management".
	Name string
	// Implicit marks a plugin RabbitMQ enables only as another's dependency
	// (shown as "e", not "E", by rabbitmq-plugins list).
	Implicit bool
}

// Builtin are the plugins Warren provides, sorted by name.
var Builtin = []Plugin{
	{Name: "rabbitmq_consistent_hash_exchange"},
	{Name: "rabbitmq_delayed_message_exchange"},
	{Name: "rabbitmq_event_exchange"},
	{Name: "rabbitmq_management"},
	{Name: "rabbitmq_management_agent", Implicit: true},
	{Name: "rabbitmq_message_deduplication"},
	{Name: "rabbitmq_prometheus"},
	{Name: "rabbitmq_random_exchange"},
	{Name: "rabbitmq_shovel"},
	{Name: "rabbitmq_shovel_management"},
	{Name: "rabbitmq_web_dispatch", Implicit: true},
}

// Lookup returns the built-in plugin with that name.
func Lookup(name string) (Plugin, bool) {
	for _, p := range Builtin {
		if p.Name == name {
			return p, true
		}
	}
	return Plugin{}, false
}

// Names are the names of the built-in plugins.
func Names() []string {
	out := make([]string, len(Builtin))
	for i, p := range Builtin {
		out[i] = p.Name
	}
	return out
}
