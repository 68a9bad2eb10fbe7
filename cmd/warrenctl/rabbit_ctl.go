package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ctlCommands are rabbitmqctl's commands.
func (t *rabbitTool) ctlCommands() map[string]func() error {
	return map[string]func() error{
		"status":             t.status,
		"await_startup":      t.awaitStartup,
		"list_queues":        t.listQueues,
		"list_exchanges":     t.listExchanges,
		"list_bindings":      t.listBindings,
		"list_connections":   t.listConnections,
		"list_consumers":     t.listConsumers,
		"list_users":         t.listUsers,
		"list_vhosts":        t.listVhosts,
		"list_permissions":   t.listPermissions,
		"list_policies":      t.listPolicies,
		"add_user":           t.addUser,
		"delete_user":        t.deleteUser,
		"change_password":    t.changePassword,
		"set_user_tags":      t.setUserTags,
		"add_vhost":          t.addVhost,
		"delete_vhost":       t.deleteVhost,
		"set_permissions":    t.setPermissions,
		"clear_permissions":  t.clearPermissions,
		"set_policy":         t.setPolicy,
		"clear_policy":       t.clearPolicy,
		"purge_queue":        t.purgeQueue,
		"delete_queue":       t.deleteQueue,
		"close_connection":   t.closeConnection,
		"import_definitions": t.importDefinitions,
		"export_definitions": t.exportDefinitions,
		"set_vhost_limits":   t.setVhostLimits,
		"set_user_limits":    t.setUserLimits,
		"clear_vhost_limits": t.clearVhostLimits,
		"clear_user_limits":  t.clearUserLimits,
		"list_vhost_limits":  t.listVhostLimits,
		"list_user_limits":   t.listUserLimits,
		"set_parameter":      t.setParameter,
		"clear_parameter":    t.clearParameter,
		"list_parameters":    t.listParameters,
		"trace_on":           func() error { return t.trace(true) },
		"trace_off":          func() error { return t.trace(false) },
	}
}

// Info keys rabbitmqctl accepts for its listings (RabbitMQ 3.10).
var (
	queueKeys = strings.Fields(`name durable auto_delete arguments policy pid owner_pid exclusive
		exclusive_consumer_pid exclusive_consumer_tag messages_ready messages_unacknowledged messages
		messages_ready_ram messages_unacknowledged_ram messages_ram messages_persistent message_bytes
		message_bytes_ready message_bytes_unacknowledged message_bytes_ram message_bytes_persistent
		head_message_timestamp disk_reads disk_writes consumers consumer_utilisation consumer_capacity
		memory slave_pids synchronised_slave_pids state type leader members online`)
	exchangeKeys   = strings.Fields(`name type durable auto_delete internal arguments policy`)
	bindingKeys    = strings.Fields(`source_name source_kind destination_name destination_kind routing_key arguments`)
	connectionKeys = strings.Fields(`pid name port host peer_port peer_host ssl ssl_protocol ssl_key_exchange
		ssl_cipher ssl_hash peer_cert_subject peer_cert_issuer peer_cert_validity state channels protocol
		auth_mechanism user vhost timeout frame_max channel_max client_properties recv_oct recv_cnt send_oct
		send_cnt send_pend connected_at`)
	consumerKeys = strings.Fields(`queue_name channel_pid consumer_tag ack_required prefetch_count active activity_status arguments`)
	vhostKeys    = strings.Fields(`name description tags default_queue_type tracing cluster_state`)
)

// columns checks the asked columns against keys, or gives the defaults.
func (t *rabbitTool) columns(keys, defaults []string) ([]string, error) {
	if len(t.args) == 0 {
		return defaults, nil
	}
	var cols, bad []string
	for _, a := range t.args {
		for _, c := range strings.Split(a, ",") {
			if c = strings.TrimSpace(c); c == "" {
				continue
			}
			if !slices.Contains(keys, c) {
				bad = append(bad, c)
			}
			cols = append(cols, c)
		}
	}
	if len(bad) > 0 {
		return nil, &usageFailure{text: fmt.Sprintf("Info key(s) %s are not supported", strings.Join(bad, ","))}
	}
	return cols, nil
}

// listing fetches a list from the API; a vhost that does not exist lists
// nothing, as rabbitmqctl's listings do.
func (t *rabbitTool) listing(path string) ([]map[string]any, error) {
	var rows []map[string]any
	err := t.get(path, &rows)
	if isStatus(err, http.StatusNotFound) {
		return nil, nil
	}
	return rows, err
}

// rowsOf picks the columns out of API objects, with pick mapping a column
// to its value (nil: the field of the same name).
func rowsOf(objs []map[string]any, cols []string, pick func(o map[string]any, col string) (any, bool)) [][]cell {
	rows := make([][]cell, len(objs))
	for i, o := range objs {
		r := make([]cell, len(cols))
		for j, c := range cols {
			v, ok := any(nil), false
			if pick != nil {
				v, ok = pick(o, c)
			}
			if !ok {
				v = o[c]
				if c == "arguments" {
					m, _ := v.(map[string]any)
					v = erlangArgs(m)
				}
			}
			r[j] = v
		}
		rows[i] = r
	}
	return rows
}

func (t *rabbitTool) listQueues() error {
	cols, err := t.columns(queueKeys, []string{"name", "messages"})
	if err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	t.banner("Timeout: %.1f seconds ...", t.timeout.Seconds())
	t.banner("Listing queues for vhost %s ...", t.vhost)
	objs, err := t.listing("/api/queues/" + esc(t.vhost))
	if err != nil {
		return err
	}
	t.printRows(cols, rowsOf(objs, cols, func(o map[string]any, c string) (any, bool) {
		switch c {
		case "policy", "pid", "owner_pid", "exclusive_consumer_tag", "exclusive_consumer_pid", "leader":
			if o[c] == nil {
				return "", true
			}
		case "message_bytes":
			return o["message_bytes_ready"], o["message_bytes"] == nil
		case "slave_pids", "synchronised_slave_pids", "members", "online":
			if o[c] == nil {
				return "", true
			}
		}
		return nil, false
	}))
	return nil
}

func (t *rabbitTool) listExchanges() error {
	cols, err := t.columns(exchangeKeys, []string{"name", "type"})
	if err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	t.banner("Listing exchanges for vhost %s ...", t.vhost)
	objs, err := t.listing("/api/exchanges/" + esc(t.vhost))
	if err != nil {
		return err
	}
	t.printRows(cols, rowsOf(objs, cols, func(o map[string]any, c string) (any, bool) {
		if c == "policy" && o[c] == nil {
			return "", true
		}
		return nil, false
	}))
	return nil
}

func (t *rabbitTool) listBindings() error {
	cols, err := t.columns(bindingKeys, bindingKeys)
	if err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	t.banner("Listing bindings for vhost %s...", t.vhost)
	objs, err := t.listing("/api/bindings/" + esc(t.vhost))
	if err != nil {
		return err
	}
	t.printRows(cols, rowsOf(objs, cols, func(o map[string]any, c string) (any, bool) {
		switch c {
		case "source_name":
			return o["source"], true
		case "source_kind":
			return "exchange", true
		case "destination_name":
			return o["destination"], true
		case "destination_kind":
			return o["destination_type"], true
		}
		return nil, false
	}))
	return nil
}

func (t *rabbitTool) listConnections() error {
	cols, err := t.columns(connectionKeys, []string{"user", "peer_host", "peer_port", "state"})
	if err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	t.banner("Listing connections ...")
	objs, err := t.listing("/api/connections")
	if err != nil {
		return err
	}
	t.printRows(cols, rowsOf(objs, cols, func(o map[string]any, c string) (any, bool) {
		if c == "pid" {
			return o["name"], true
		}
		return nil, false
	}))
	return nil
}

func (t *rabbitTool) listConsumers() error {
	cols, err := t.columns(consumerKeys, slices.DeleteFunc(slices.Clone(consumerKeys), func(k string) bool { return k == "activity_status" }))
	if err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	t.banner("Listing consumers in vhost %s ...", t.vhost)
	objs, err := t.listing("/api/consumers/" + esc(t.vhost))
	if err != nil {
		return err
	}
	t.printRows(cols, rowsOf(objs, cols, func(o map[string]any, c string) (any, bool) {
		switch c {
		case "queue_name":
			q, _ := o["queue"].(map[string]any)
			return q["name"], true
		case "channel_pid":
			ch, _ := o["channel_details"].(map[string]any)
			return ch["name"], true
		}
		return nil, false
	}))
	return nil
}

func (t *rabbitTool) listUsers() error {
	if err := t.need(0, 0); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	t.banner("Listing users ...")
	objs, err := t.listing("/api/users")
	if err != nil {
		return err
	}
	cols := []string{"user", "tags"}
	t.printRows(cols, rowsOf(objs, cols, func(o map[string]any, c string) (any, bool) {
		if c == "user" {
			return o["name"], true
		}
		return erlangList(tagList(o["tags"])), true
	}))
	return nil
}

// tagList reads tags given as a list or as a comma-separated string.
func tagList(v any) []string {
	var out []string
	switch v := v.(type) {
	case []any:
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
	case string:
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

func (t *rabbitTool) listVhosts() error {
	cols, err := t.columns(vhostKeys, []string{"name"})
	if err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	t.banner("Listing vhosts ...")
	objs, err := t.listing("/api/vhosts")
	if err != nil {
		return err
	}
	t.printRows(cols, rowsOf(objs, cols, func(o map[string]any, c string) (any, bool) {
		switch c {
		case "tags":
			return erlangList(tagList(o["tags"])), true
		case "tracing":
			return o["tracing"] == true, true
		case "cluster_state":
			return "[{" + t.node + ",running}]", true
		case "default_queue_type":
			if o[c] == nil {
				return "classic", true
			}
		}
		return nil, false
	}))
	return nil
}

func (t *rabbitTool) listPermissions() error {
	if err := t.need(0, 0); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	t.banner("Listing permissions for vhost \"%s\" ...", t.vhost)
	objs, err := t.listing("/api/vhosts/" + esc(t.vhost) + "/permissions")
	if err != nil {
		return err
	}
	cols := []string{"user", "configure", "write", "read"}
	t.printRows(cols, rowsOf(objs, cols, nil))
	return nil
}

func (t *rabbitTool) listPolicies() error {
	if err := t.need(0, 0); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	t.banner("Listing policies for vhost \"%s\" ...", t.vhost)
	objs, err := t.listing("/api/policies/" + esc(t.vhost))
	if err != nil {
		return err
	}
	cols := []string{"vhost", "name", "pattern", "apply-to", "definition", "priority"}
	if len(objs) == 0 && !t.json && !t.silent {
		fmt.Fprintln(t.out) // rabbitmqctl prints an empty line for no policies
		return nil
	}
	t.printRows(cols, rowsOf(objs, cols, func(o map[string]any, c string) (any, bool) {
		if c == "definition" {
			b, _ := json.Marshal(o[c])
			return string(b), true
		}
		return nil, false
	}))
	return nil
}

// ---- users ----

func userPath(name string) string { return "/api/users/" + esc(name) }

// userExists asks the API about a user.
func (t *rabbitTool) userExists(name string) (map[string]any, bool, error) {
	var u map[string]any
	err := t.get(userPath(name), &u)
	if isStatus(err, http.StatusNotFound) {
		return nil, false, nil
	}
	return u, err == nil, err
}

func (t *rabbitTool) addUser() error {
	if err := t.need(1, 2); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	name := t.args[0]
	t.banner("Adding user \"%s\" ...", name)
	pw := ""
	if len(t.args) == 2 {
		pw = t.args[1]
	} else {
		// rabbitmqctl reads the password from standard input when it is not given.
		b, _ := io.ReadAll(io.LimitReader(os.Stdin, 1<<16))
		pw = strings.TrimRight(string(b), "\r\n")
	}
	// The API's PUT replaces a user; rabbitmqctl refuses an existing one.
	_, exists, err := t.userExists(name)
	if err != nil {
		return err
	}
	if exists {
		return fail(exitSoftware, "User \"%s\" already exists", name)
	}
	if err := t.do("PUT", userPath(name), map[string]any{"password": pw, "tags": ""}); err != nil {
		return apiFailure(err)
	}
	t.say("Done. Don't forget to grant the user permissions to some virtual hosts! See 'rabbitmqctl help set_permissions' to learn more.")
	return nil
}

// apiFailure is an API error as a rabbitmqctl error (exit 69, the API's reason).
func apiFailure(err error) error {
	if ae, ok := err.(*apiError); ok {
		if ae.Reason != "" {
			return fail(exitUnavailable, "%s", ae.Reason)
		}
		return fail(exitUnavailable, "%s", ae.Error())
	}
	return err
}

func (t *rabbitTool) deleteUser() error {
	if err := t.need(1, 1); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	name := t.args[0]
	t.banner("Deleting user \"%s\" ...", name)
	err := t.do("DELETE", userPath(name), nil)
	if isStatus(err, http.StatusNotFound) {
		return fail(exitNoUser, "User \"%s\" does not exist", name)
	}
	return apiFailure(err)
}

func (t *rabbitTool) changePassword() error {
	if err := t.need(2, 2); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	name := t.args[0]
	t.banner("Changing password for user \"%s\" ...", name)
	u, exists, err := t.userExists(name)
	if err != nil {
		return err
	}
	if !exists {
		return fail(exitNoUser, "User \"%s\" does not exist", name)
	}
	return apiFailure(t.do("PUT", userPath(name), map[string]any{"password": t.args[1], "tags": strings.Join(tagList(u["tags"]), ",")}))
}

func (t *rabbitTool) setUserTags() error {
	if err := t.need(1, -1); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	name, tags := t.args[0], t.args[1:]
	t.banner("Setting tags for user \"%s\" to [%s] ...", name, strings.Join(tags, ", "))
	u, exists, err := t.userExists(name)
	if err != nil {
		return err
	}
	if !exists {
		return fail(exitNoUser, "User \"%s\" does not exist", name)
	}
	body := map[string]any{"tags": strings.Join(tags, ",")}
	if h, _ := u["password_hash"].(string); h != "" {
		body["password_hash"], body["hashing_algorithm"] = h, u["hashing_algorithm"]
	}
	return apiFailure(t.do("PUT", userPath(name), body))
}

// ---- vhosts and permissions ----

func (t *rabbitTool) vhostExists(name string) (bool, error) {
	err := t.get("/api/vhosts/"+esc(name), nil)
	if isStatus(err, http.StatusNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (t *rabbitTool) addVhost() error {
	if err := t.need(1, 1); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	name := t.args[0]
	t.banner("Adding vhost \"%s\" ...", name)
	body := map[string]any{"description": t.opts["description"], "tags": t.opts["tags"]}
	if q := t.opts["default-queue-type"]; q != "" {
		body["default_queue_type"] = q
	}
	return apiFailure(t.do("PUT", "/api/vhosts/"+esc(name), body))
}

func (t *rabbitTool) deleteVhost() error {
	if err := t.need(1, 1); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	name := t.args[0]
	t.banner("Deleting vhost \"%s\" ...", name)
	err := t.do("DELETE", "/api/vhosts/"+esc(name), nil)
	if isStatus(err, http.StatusNotFound) {
		return &cliError{code: exitDataErr, text: fmt.Sprintf("Virtual host '%s' does not exist", name), plain: true}
	}
	return apiFailure(err)
}

// userAndVhost checks that both exist, with rabbitmqctl's errors.
func (t *rabbitTool) userAndVhost(user string) error {
	_, ok, err := t.userExists(user)
	if err != nil {
		return err
	}
	if !ok {
		return fail(exitNoUser, "User %s does not exist", user)
	}
	if ok, err = t.vhostExists(t.vhost); err != nil {
		return err
	}
	if !ok {
		return fail(exitUnavailable, "Virtual host %s does not exist", t.vhost)
	}
	return nil
}

func (t *rabbitTool) setPermissions() error {
	if err := t.need(4, 4); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	user := t.args[0]
	t.banner("Setting permissions for user \"%s\" in vhost \"%s\" ...", user, t.vhost)
	if err := t.userAndVhost(user); err != nil {
		return err
	}
	return apiFailure(t.do("PUT", "/api/permissions/"+esc(t.vhost)+"/"+esc(user),
		map[string]any{"configure": t.args[1], "write": t.args[2], "read": t.args[3]}))
}

func (t *rabbitTool) clearPermissions() error {
	if err := t.need(1, 1); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	user := t.args[0]
	t.banner("Clearing permissions for user \"%s\" in vhost \"%s\" ...", user, t.vhost)
	if err := t.userAndVhost(user); err != nil {
		return err
	}
	err := t.do("DELETE", "/api/permissions/"+esc(t.vhost)+"/"+esc(user), nil)
	if isStatus(err, http.StatusNotFound) {
		return nil // nothing to clear: rabbitmqctl says nothing either
	}
	return apiFailure(err)
}

// ---- policies ----

func (t *rabbitTool) setPolicy() error {
	if err := t.need(3, 3); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	name, pattern, def := t.args[0], t.args[1], t.args[2]
	prio := t.opts["priority"]
	if prio == "" {
		prio = "0"
	}
	t.banner("Setting policy \"%s\" for pattern \"%s\" to \"%s\" with priority \"%s\" for vhost \"%s\" ...", name, pattern, def, prio, t.vhost)
	n, err := strconv.Atoi(prio)
	if err != nil {
		return fail(exitUnavailable, "Priority must be an integer")
	}
	var d map[string]any
	dec := json.NewDecoder(strings.NewReader(def))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return fail(exitUnavailable, "JSON decoding error. Reason: badarg")
	}
	applyTo := t.opts["apply-to"]
	if applyTo == "" {
		applyTo = "all"
	}
	err = t.do("PUT", "/api/policies/"+esc(t.vhost)+"/"+esc(name),
		map[string]any{"pattern": pattern, "definition": d, "priority": n, "apply-to": applyTo})
	if ae, ok := err.(*apiError); ok && ae.Status == http.StatusBadRequest {
		return validationFailed(ae.Reason)
	}
	return apiFailure(err)
}

// validationFailed is RabbitMQ's error for a definition the node refused;
// RabbitMQ's own API gives the whole text (HTML-escaped), Warren's the reason.
func validationFailed(reason string) error {
	reason = html.UnescapeString(reason)
	if !strings.HasPrefix(reason, "Validation failed") {
		reason = "Validation failed\n\n" + reason + "\n"
	}
	return fail(exitUnavailable, "%s", reason)
}

func (t *rabbitTool) clearPolicy() error {
	if err := t.need(1, 1); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	name := t.args[0]
	t.banner("Clearing policy \"%s\" on vhost \"%s\" ...", name, t.vhost)
	err := t.do("DELETE", "/api/policies/"+esc(t.vhost)+"/"+esc(name), nil)
	if isStatus(err, http.StatusNotFound) {
		return fail(exitUnavailable, "Parameter does not exist")
	}
	return apiFailure(err)
}

// ---- queues and connections ----

func (t *rabbitTool) purgeQueue() error {
	if err := t.need(1, 1); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	name := t.args[0]
	t.banner("Purging queue '%s' in vhost '%s' ...", name, t.vhost)
	err := t.do("DELETE", "/api/queues/"+esc(t.vhost)+"/"+esc(name)+"/contents", nil)
	if isStatus(err, http.StatusNotFound) {
		return fail(exitUnavailable, "not_found")
	}
	return apiFailure(err)
}

func (t *rabbitTool) deleteQueue() error {
	if err := t.need(1, 1); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	name := t.args[0]
	t.banner("Deleting queue '%s' on vhost '%s' ...", name, t.vhost)
	path := "/api/queues/" + esc(t.vhost) + "/" + esc(name)
	var q map[string]any
	if err := t.get(path, &q); err != nil {
		if isStatus(err, http.StatusNotFound) {
			return fail(exitUsage, "Queue not found")
		}
		return err
	}
	var cond []string
	if t.flags["if-empty"] {
		cond = append(cond, "if-empty=true")
	}
	if t.flags["if-unused"] {
		cond = append(cond, "if-unused=true")
	}
	if len(cond) > 0 {
		path += "?" + strings.Join(cond, "&")
	}
	err := t.do("DELETE", path, nil)
	switch {
	case isStatus(err, http.StatusNotFound):
		return fail(exitUsage, "Queue not found")
	case isStatus(err, http.StatusBadRequest) && t.flags["if-empty"]:
		return fail(exitUnavailable, "Queue is not empty")
	case isStatus(err, http.StatusBadRequest) && t.flags["if-unused"]:
		return fail(exitUnavailable, "Queue is in use")
	case err != nil:
		return apiFailure(err)
	}
	ready := q["messages_ready"]
	if ready == nil {
		ready = 0 // RabbitMQ's API leaves it out until the queue's first stats
	}
	t.say("Queue was successfully deleted with %v ready messages", ready)
	return nil
}

func (t *rabbitTool) closeConnection() error {
	if err := t.need(2, 2); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	name, reason := t.args[0], t.args[1]
	t.banner("Closing connection %s, reason: %s...", name, reason)
	err := t.downOr(t.c.callWith("DELETE", "/api/connections/"+esc(name), map[string]string{"X-Reason": reason}, nil, nil))
	if isStatus(err, http.StatusNotFound) {
		return fail(exitUnavailable, "Connection %s not found (name it as list_connections name shows it)", name)
	}
	return apiFailure(err)
}

// ---- definitions ----

func (t *rabbitTool) importDefinitions() error {
	if err := t.need(1, 1); err != nil {
		return err
	}
	path := t.args[0]
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
		if os.IsNotExist(err) {
			return &usageFailure{text: "Bad argument: File " + path + " does not exist", code: exitDataErr}
		}
	}
	if err != nil {
		return fail(exitDataErr, "Could not read from file %s: %v", path, err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return fail(exitDataErr, "File %s is zero-sized", path)
	}
	if !json.Valid(data) {
		return fail(exitDataErr, "Failed to deserialise input (format: JSON) (error: invalid JSON)")
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	if path == "-" {
		t.banner("Importing definitions in JSON from standard input ...")
	} else {
		t.banner("Importing definitions in JSON from a file at \"%s\" ...", path)
	}
	if err := t.do("POST", "/api/definitions", json.RawMessage(data)); err != nil {
		return apiFailure(err)
	}
	if t.json {
		fmt.Fprintf(t.out, "{\"node\":\"%s\",\"result\":\"ok\"}\n", t.node)
		return nil
	}
	if !t.quiet {
		// Warren's import is done when the API answers; the words are RabbitMQ's.
		fmt.Fprintln(t.out, "Successfully started definition import. This process is asynchronous and can take some time.")
	}
	return nil
}

func (t *rabbitTool) exportDefinitions() error {
	if err := t.need(1, 1); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	path := t.args[0]
	if path != "-" {
		t.banner("Exporting definitions in JSON to a file at \"%s\" ...", path)
	}
	var defs json.RawMessage
	if err := t.get("/api/definitions", &defs); err != nil {
		return apiFailure(err)
	}
	if path == "-" {
		fmt.Fprintln(t.out, string(defs))
		return nil
	}
	if err := os.WriteFile(path, defs, 0o644); err != nil {
		return fail(exitDataErr, "Could not write to file %s: %v", path, err)
	}
	return nil
}

// ---- limits ----

// limitNames are the limits a vhost and a user may have, as RabbitMQ's.
var (
	vhostLimitNames = []string{"max-connections", "max-queues"}
	userLimitNames  = []string{"max-channels", "max-connections"}
)

// parseLimits reads a limits definition, a JSON object of integers, and
// checks it whole before anything is changed, with RabbitMQ's words (in
// the user's words for user limits, which RabbitMQ does not prefix).
func parseLimits(def string, known []string, user bool) (map[string]int64, error) {
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(def))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, fail(exitUnavailable, "JSON decoding error. Reason: badarg")
	}
	wrap := func(text string) error {
		if user {
			return fail(exitUnavailable, "%s", text)
		}
		return fail(exitUnavailable, "Validation failed\n\n%s\n", text)
	}
	out := make(map[string]int64, len(m))
	var unknown []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		n, ok := m[k].(json.Number)
		v, err := n.Int64()
		if !ok || err != nil {
			return nil, wrap(fmt.Sprintf("%s should be a number, actually was %s", k, erlangTerm(m[k])))
		}
		if !slices.Contains(known, k) {
			unknown = append(unknown, fmt.Sprintf("{<<\"%s\">>,%d}", k, v))
		}
		out[k] = v
	}
	if len(unknown) > 0 {
		in := "limits"
		if user {
			in = "user-limits"
		}
		return nil, wrap(fmt.Sprintf("Unrecognised terms [%s] in %s", strings.Join(unknown, ","), in))
	}
	return out, nil
}

// erlangTerm prints a JSON value as RabbitMQ's validation messages do.
func erlangTerm(v any) string {
	if s, ok := v.(string); ok {
		return `<<"` + s + `">>`
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// setVhostLimits replaces the vhost's limits with the given ones, as
// RabbitMQ's set_vhost_limits does (limits not named are cleared).
func (t *rabbitTool) setVhostLimits() error {
	if err := t.need(1, 1); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	def := t.args[0]
	t.banner("Setting vhost limits to \"%s\" for vhost \"%s\" ...", def, t.vhost)
	m, err := parseLimits(def, vhostLimitNames, false)
	if err != nil {
		return err
	}
	if ok, err := t.vhostExists(t.vhost); err != nil {
		return err
	} else if !ok {
		return &cliError{code: exitDataErr, text: fmt.Sprintf("Virtual host '%s' does not exist", t.vhost), plain: true}
	}
	for _, k := range vhostLimitNames {
		if v, ok := m[k]; ok {
			err = t.do("PUT", "/api/vhost-limits/"+esc(t.vhost)+"/"+esc(k), map[string]any{"value": v})
		} else {
			err = t.do("DELETE", "/api/vhost-limits/"+esc(t.vhost)+"/"+esc(k), nil)
		}
		if err != nil {
			return t.limitsFailure(err)
		}
	}
	return nil
}

func (t *rabbitTool) clearVhostLimits() error {
	if err := t.need(0, 0); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	t.banner("Clearing vhost \"%s\" limits ...", t.vhost)
	for _, k := range vhostLimitNames {
		err := t.do("DELETE", "/api/vhost-limits/"+esc(t.vhost)+"/"+esc(k), nil)
		if isStatus(err, http.StatusNotFound) {
			return fail(exitUnavailable, "Parameter does not exist")
		}
		if err != nil {
			return t.limitsFailure(err)
		}
	}
	return nil
}

// listVhostLimits prints the vhost's limits as a JSON object, or with
// --global every vhost's.
func (t *rabbitTool) listVhostLimits() error {
	if err := t.need(0, 0); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	var objs []map[string]any
	if !t.flags["global"] {
		t.banner("Listing limits for vhost \"%s\" ...", t.vhost)
		if err := t.get("/api/vhost-limits/"+esc(t.vhost), &objs); err != nil && !isStatus(err, http.StatusNotFound) {
			return err
		}
		if t.json {
			b, _ := json.Marshal(limitsOf(objs))
			fmt.Fprintln(t.out, string(b))
			return nil
		}
		if len(objs) == 0 {
			t.say("")
			return nil
		}
		b, _ := json.Marshal(objs[0]["value"])
		t.say("%s", b)
		return nil
	}
	t.banner("Listing limits for all vhosts ...")
	if err := t.get("/api/vhost-limits", &objs); err != nil {
		return err
	}
	var vhosts []map[string]any
	if err := t.get("/api/vhosts", &vhosts); err != nil {
		return err
	}
	byName := map[string]any{}
	for _, o := range objs {
		if n, ok := o["vhost"].(string); ok {
			byName[n] = o["value"]
		}
	}
	rows := make([]map[string]any, 0, len(vhosts))
	for _, v := range vhosts {
		l, ok := byName[fmt.Sprint(v["name"])]
		if !ok {
			l = map[string]any{}
		}
		b, _ := json.Marshal(l)
		rows = append(rows, map[string]any{"vhost": v["name"], "limits": string(b)})
	}
	cols := []string{"vhost", "limits"}
	t.printRows(cols, rowsOf(rows, cols, nil))
	return nil
}

// limitsOf is the value of the first entry of a limits listing, {} if none.
func limitsOf(objs []map[string]any) any {
	if len(objs) == 0 {
		return map[string]any{}
	}
	return objs[0]["value"]
}

// listUserLimits is rabbitmqctl's list_user_limits: one user's limits
// (--user, guest by default) as JSON, or with --global every user that has
// any, one row each.
func (t *rabbitTool) listUserLimits() error {
	if err := t.need(0, 0); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	var objs []map[string]any
	if !t.flags["global"] {
		user := t.opts["user"]
		if user == "" {
			user = "guest"
		}
		t.banner("Listing limits for user \"%s\" ...", user)
		if err := t.userForLimits(user); err != nil {
			return err
		}
		if err := t.get("/api/user-limits/"+esc(user), &objs); err != nil && !isStatus(err, http.StatusNotFound) {
			return err
		}
		b, _ := json.Marshal(limitsOf(objs))
		if t.json {
			m, _ := json.Marshal(map[string]string{"message": string(b)})
			fmt.Fprintln(t.out, string(m))
			return nil
		}
		t.say("%s", b)
		return nil
	}
	t.banner("Listing limits for all users ...")
	if err := t.get("/api/user-limits", &objs); err != nil {
		return err
	}
	rows := make([]map[string]any, 0, len(objs))
	for _, o := range objs {
		b, _ := json.Marshal(o["value"])
		rows = append(rows, map[string]any{"user": o["user"], "limits": string(b)})
	}
	cols := []string{"user", "limits"}
	t.printRows(cols, rowsOf(rows, cols, nil))
	return nil
}

// setUserLimits adds the given limits to the user's, as RabbitMQ's
// set_user_limits does (limits not named stay).
func (t *rabbitTool) setUserLimits() error {
	if err := t.need(2, 2); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	user, def := t.args[0], t.args[1]
	t.banner("Setting user limits to \"%s\" for user \"%s\" ...", def, user)
	m, err := parseLimits(def, userLimitNames, true)
	if err != nil {
		return err
	}
	if err := t.userForLimits(user); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if err := t.do("PUT", "/api/user-limits/"+esc(user)+"/"+esc(k), map[string]any{"value": m[k]}); err != nil {
			return t.limitsFailure(err)
		}
	}
	return nil
}

// clearUserLimits clears one of a user's limits, or "all".
func (t *rabbitTool) clearUserLimits() error {
	if err := t.need(2, 2); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	user, name := t.args[0], t.args[1]
	names := []string{name}
	if name == "all" {
		t.banner("Clearing all limits for user \"%s\" ...", user)
		names = userLimitNames
	} else {
		t.banner("Clearing \"%s\" limit for user \"%s\" ...", name, user)
	}
	if err := t.userForLimits(user); err != nil {
		return err
	}
	for _, k := range names {
		if err := t.do("DELETE", "/api/user-limits/"+esc(user)+"/"+esc(k), nil); err != nil {
			return t.limitsFailure(err)
		}
	}
	return nil
}

// userForLimits fails as rabbitmqctl does for a user that does not exist.
func (t *rabbitTool) userForLimits(user string) error {
	_, ok, err := t.userExists(user)
	if err != nil {
		return err
	}
	if !ok {
		return fail(exitUnavailable, "{:no_such_user, \"%s\"}", user)
	}
	return nil
}

// limitsFailure is an API error from a limits endpoint as rabbitmqctl's.
func (t *rabbitTool) limitsFailure(err error) error {
	if ae, ok := err.(*apiError); ok && ae.Status == http.StatusBadRequest {
		return fail(exitUnavailable, "%s", html.UnescapeString(ae.Reason))
	}
	return apiFailure(err)
}

// ---- node ----

func (t *rabbitTool) awaitStartup() error {
	if err := t.need(0, 0); err != nil {
		return err
	}
	// RabbitMQ waits up to 300 s by default; --timeout shortens it.
	wait := 300 * time.Second
	if _, ok := t.opts["timeout"]; ok {
		wait = t.timeout
	}
	deadline := time.Now().Add(wait)
	for {
		_, err := t.connect()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		if _, down := err.(*nodeDown); !down {
			return err
		}
		time.Sleep(min(time.Second, time.Until(deadline)+time.Millisecond))
	}
}

// ---- runtime parameters and tracing ----

func paramPath(component, vhost, name string) string {
	return "/api/parameters/" + esc(component) + "/" + esc(vhost) + "/" + esc(name)
}

func (t *rabbitTool) setParameter() error {
	if err := t.need(3, 3); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	component, name, value := t.args[0], t.args[1], t.args[2]
	t.banner("Setting runtime parameter \"%s\" for component \"%s\" to \"%s\" in vhost \"%s\" ...", name, component, value, t.vhost)
	var v any
	dec := json.NewDecoder(strings.NewReader(value))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return fail(exitUnavailable, "JSON decoding error. Reason: badarg")
	}
	err := t.do("PUT", paramPath(component, t.vhost, name), map[string]any{"value": v})
	if ae, ok := err.(*apiError); ok && ae.Status == http.StatusBadRequest {
		return validationFailed(ae.Reason)
	}
	return apiFailure(err)
}

func (t *rabbitTool) clearParameter() error {
	if err := t.need(2, 2); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	component, name := t.args[0], t.args[1]
	t.banner("Clearing runtime parameter \"%s\" for component \"%s\" on vhost \"%s\" ...", name, component, t.vhost)
	err := t.do("DELETE", paramPath(component, t.vhost, name), nil)
	if isStatus(err, http.StatusNotFound) {
		return fail(exitUnavailable, "Parameter does not exist")
	}
	return apiFailure(err)
}

func (t *rabbitTool) listParameters() error {
	if err := t.need(0, 0); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	t.banner("Listing runtime parameters for vhost \"%s\" ...", t.vhost)
	objs, err := t.listing("/api/parameters")
	if err != nil {
		return err
	}
	objs = slices.DeleteFunc(objs, func(o map[string]any) bool { return o["vhost"] != t.vhost })
	cols := []string{"component", "name", "value"}
	if len(objs) == 0 && !t.json && !t.silent {
		fmt.Fprintln(t.out) // as for policies: an empty line for none
		return nil
	}
	t.printRows(cols, rowsOf(objs, cols, func(o map[string]any, c string) (any, bool) {
		if c == "value" {
			b, _ := json.Marshal(o[c])
			return string(b), true
		}
		return nil, false
	}))
	return nil
}

// trace turns the vhost's firehose (amq.rabbitmq.trace) on or off.
func (t *rabbitTool) trace(on bool) error {
	if err := t.need(0, 0); err != nil {
		return err
	}
	if _, err := t.connect(); err != nil {
		return err
	}
	verb, done := "Stopping", "disabled"
	if on {
		verb, done = "Starting", "enabled"
	}
	t.banner("%s tracing for vhost \"%s\" ...", verb, t.vhost)
	err := t.do("PUT", "/api/vhosts/"+esc(t.vhost), map[string]any{"tracing": on})
	if err != nil {
		return apiFailure(err)
	}
	t.say("Trace %s for vhost %s", done, t.vhost)
	return nil
}
