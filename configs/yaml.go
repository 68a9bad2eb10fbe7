package configs

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// rabbitHashLen is a rabbit_password_hashing_sha256 hash once base64
// decoded: a 4-byte salt followed by a SHA-256 digest.
const rabbitHashLen = 4 + 32

// readYAML reads one of Warren's YAML files into a layer. Unknown keys are
// refused, so that a typo does not silently leave a default in force. Map
// keys keep their case (vhost names are case-sensitive) and every value
// keeps its line for error messages.
func readYAML(data []byte, name string) (layer, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config: %s: %w", name, err)
	}
	l := layer{}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return l, nil // an empty file changes nothing
	}
	at := func(n *yaml.Node) string { return fmt.Sprintf("in %s line %d", name, n.Line) }
	root := doc.Content[0]
	if isNull(root) {
		return l, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Key: "(top level)", Msg: "must be a mapping of keys", From: at(root)}
	}
	sections := map[string][]string{}
	for _, s := range settings {
		section, leaf, _ := strings.Cut(s.key, ".")
		if sub, _, nested := strings.Cut(leaf, "."); nested {
			leaf = sub // amqp.tls.listen: amqp has tls
		}
		if !slices.Contains(sections[section], leaf) {
			sections[section] = append(sections[section], leaf)
		}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, val := root.Content[i], root.Content[i+1]
		switch key := k.Value; key {
		case "vhosts":
			vhosts, err := decodeVhosts(val, at(val))
			if err != nil {
				return nil, err
			}
			l[key] = entry{list: vhosts, isList: true, from: at(val)}
		case "loopback_users":
			names, err := decodeNames(key, val, at(val))
			if err != nil {
				return nil, err
			}
			l[key] = entry{list: names, isList: true, from: at(val)}
		case "users":
			users, err := decodeUsers(val, at(val))
			if err != nil {
				return nil, err
			}
			l[key] = entry{users: users, isList: true, from: at(val)}
		default:
			leaves, ok := sections[key]
			if !ok {
				known := slices.Sorted(func(yield func(string) bool) {
					for k := range sections {
						yield(k)
					}
				})
				known = append(known, listKeys...)
				slices.Sort(known)
				return nil, &Error{Key: key, Msg: "unknown key (known: " + strings.Join(known, ", ") + ")", From: at(k)}
			}
			if isNull(val) {
				continue // an empty section changes nothing
			}
			if err := readSection(key, leaves, val, at, l); err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

// readSection reads the keys of one section's mapping, descending into
// nested sections such as amqp.tls.
func readSection(key string, leaves []string, val *yaml.Node, at func(*yaml.Node) string, l layer) error {
	if val.Kind != yaml.MappingNode {
		return &Error{Key: key, Msg: "must be a mapping of keys", From: at(val)}
	}
	for j := 0; j+1 < len(val.Content); j += 2 {
		lk, lv := val.Content[j], val.Content[j+1]
		full := key + "." + lk.Value
		if !slices.Contains(leaves, lk.Value) {
			return &Error{Key: full, Msg: "unknown key (" + key + " has " + strings.Join(leaves, ", ") + ")", From: at(lk)}
		}
		if sub := subKeys(full); sub != nil {
			if isNull(lv) {
				continue // an empty section changes nothing
			}
			if err := readSection(full, sub, lv, at, l); err != nil {
				return err
			}
			continue
		}
		// A null would otherwise quietly keep the default.
		s, ok := scalar(lv)
		if !ok {
			return &Error{Key: full, Msg: "must be a single value", From: at(lv)}
		}
		l[full] = entry{text: s, from: at(lv)}
	}
	return nil
}

// subKeys lists the keys directly under a nested section such as amqp.tls,
// or nil if prefix is a setting rather than a section.
func subKeys(prefix string) []string {
	var leaves []string
	for _, s := range settings {
		rest, ok := strings.CutPrefix(s.key, prefix+".")
		if !ok {
			continue
		}
		leaf, _, _ := strings.Cut(rest, ".")
		if !slices.Contains(leaves, leaf) {
			leaves = append(leaves, leaf)
		}
	}
	return leaves
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// scalar returns a scalar node's text, or false if n is not a single value.
func scalar(n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		return "", false
	}
	return n.Value, true
}

func line(n *yaml.Node) string { return fmt.Sprintf("line %d", n.Line) }

func decodeVhosts(n *yaml.Node, from string) ([]string, error) {
	if isNull(n) {
		return []string{}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, &Error{Key: "vhosts", Msg: "must be a list of names", From: from}
	}
	vhosts := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		key := fmt.Sprintf("vhosts[%d]", i)
		name, ok := scalar(item)
		if !ok || name == "" {
			return nil, &Error{Key: key, Msg: "must be a non-empty name", From: line(item)}
		}
		if slices.Contains(vhosts, name) {
			return nil, &Error{Key: key, Msg: fmt.Sprintf("duplicate vhost %q", name), From: line(item)}
		}
		vhosts = append(vhosts, name)
	}
	return vhosts, nil
}

// decodeNames reads a list of non-empty names, such as loopback_users.
func decodeNames(key string, n *yaml.Node, from string) ([]string, error) {
	if isNull(n) {
		return []string{}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, &Error{Key: key, Msg: "must be a list of names", From: from}
	}
	names := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		name, ok := scalar(item)
		if !ok || name == "" {
			return nil, &Error{Key: fmt.Sprintf("%s[%d]", key, i), Msg: "must be a non-empty name", From: line(item)}
		}
		names = append(names, name)
	}
	return names, nil
}

// userAt is a configured user with where its permissions were set, so that
// a permission on a vhost that is not configured can be reported once the
// vhosts list (perhaps from another source) is known.
type userAt struct {
	User
	key     string            // users[0]
	permKey map[string]string // vhost -> users[0].permissions["v"]
	permAt  map[string]string // vhost -> "line N"
}

var (
	userFields = []string{"name", "password", "password_hash", "tags", "permissions"}
	permFields = []string{"configure", "write", "read"}
)

func decodeUsers(n *yaml.Node, from string) ([]userAt, error) {
	if isNull(n) {
		return []userAt{}, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, &Error{Key: "users", Msg: "must be a list of users", From: from}
	}
	users := make([]userAt, 0, len(n.Content))
	for i, item := range n.Content {
		u, err := decodeUser(fmt.Sprintf("users[%d]", i), item)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(users, func(o userAt) bool { return o.Name == u.Name }) {
			return nil, &Error{Key: fmt.Sprintf("users[%d].name", i), Msg: fmt.Sprintf("duplicate user %q", u.Name), From: line(item)}
		}
		users = append(users, u)
	}
	return users, nil
}

func decodeUser(key string, n *yaml.Node) (userAt, error) {
	u := userAt{key: key, permKey: map[string]string{}, permAt: map[string]string{}}
	bad := func(k string, at *yaml.Node, format string, args ...any) error {
		return &Error{Key: k, Msg: fmt.Sprintf(format, args...), From: line(at)}
	}
	if n.Kind != yaml.MappingNode {
		return u, bad(key, n, "must be a mapping with name, password or password_hash, tags, permissions")
	}
	u.Tags = []string{}
	u.Permissions = map[string]Permission{}
	var perms *yaml.Node
	var permsField string
	for j := 0; j+1 < len(n.Content); j += 2 {
		k, val := n.Content[j], n.Content[j+1]
		field := key + "." + k.Value
		if !slices.Contains(userFields, k.Value) {
			return u, bad(field, k, "unknown key (a user has %s)", strings.Join(userFields, ", "))
		}
		switch k.Value {
		case "name", "password", "password_hash":
			s, ok := scalar(val)
			if !ok {
				return u, bad(field, val, "must be a single value")
			}
			switch k.Value {
			case "name":
				u.Name = s
			case "password":
				u.Password = s
			case "password_hash":
				u.PasswordHash = s
			}
		case "tags":
			if val.Kind != yaml.SequenceNode {
				return u, bad(field, val, "must be a list")
			}
			for _, t := range val.Content {
				s, ok := scalar(t)
				if !ok || s == "" {
					return u, bad(field, t, "must be a list of non-empty tags")
				}
				u.Tags = append(u.Tags, s)
			}
		case "permissions":
			perms, permsField = val, field
		}
	}
	if u.Name == "" {
		return u, bad(key+".name", n, "a user needs a name")
	}
	if perms != nil {
		if err := decodePermissions(permsField, perms, &u); err != nil {
			return u, err
		}
	}
	// Say which user: the index alone is hard to match to a long file.
	key = fmt.Sprintf("%s (%s)", key, u.Name)
	switch {
	case u.Password != "" && u.PasswordHash != "":
		return u, bad(key+".password", n, "set password or password_hash, not both")
	case u.Password == "" && u.PasswordHash == "":
		return u, bad(key+".password", n, "set password or password_hash")
	case u.PasswordHash != "":
		raw, err := base64.StdEncoding.DecodeString(u.PasswordHash)
		if err != nil || len(raw) != rabbitHashLen {
			return u, bad(key+".password_hash", n,
				"must be RabbitMQ's base64 salted SHA-256 (%d bytes once decoded)", rabbitHashLen)
		}
	}
	return u, nil
}

func decodePermissions(key string, n *yaml.Node, u *userAt) error {
	bad := func(k string, at *yaml.Node, format string, args ...any) error {
		return &Error{Key: k, Msg: fmt.Sprintf(format, args...), From: line(at)}
	}
	if n.Kind != yaml.MappingNode {
		return bad(key, n, `must map vhost names to {configure, write, read}`)
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		vk, pv := n.Content[j], n.Content[j+1]
		vkey := fmt.Sprintf("%s[%q]", key, vk.Value)
		if pv.Kind != yaml.MappingNode {
			return bad(vkey, pv, "must be {configure: ..., write: ..., read: ...}")
		}
		got := map[string]string{}
		for i := 0; i+1 < len(pv.Content); i += 2 {
			pk, pat := pv.Content[i], pv.Content[i+1]
			field := vkey + "." + pk.Value
			if !slices.Contains(permFields, pk.Value) {
				return bad(field, pk, "unknown key (a permission has configure, write, read)")
			}
			// A null pattern would be easy to mistake for "everything".
			s, ok := scalar(pat)
			if !ok {
				return bad(field, pat, `must be a regular expression; "" grants nothing`)
			}
			if _, err := regexp.Compile(s); err != nil {
				return bad(field, pat, "invalid regular expression %q: %v", s, unwrapRegexp(err))
			}
			got[pk.Value] = s
		}
		// All three are required, as in rabbitmqctl set_permissions: a missing one
		// silently granting nothing would be a confusing way to lock a user out.
		for _, f := range permFields {
			if _, ok := got[f]; !ok {
				return bad(vkey+"."+f, pv, `missing; use "" to grant nothing`)
			}
		}
		u.Permissions[vk.Value] = Permission{Configure: got["configure"], Write: got["write"], Read: got["read"]}
		u.permKey[vk.Value] = vkey
		u.permAt[vk.Value] = line(vk)
	}
	return nil
}

// unwrapRegexp drops regexp's "error parsing regexp: " prefix, which repeats
// what the message already says.
func unwrapRegexp(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}
