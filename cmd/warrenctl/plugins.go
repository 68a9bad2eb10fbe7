package main

import (
	"encoding/json"
	"io"
	"net/url"
)

// plugins runs the rabbitmqctl-style commands of the built-in plugins:
// runtime parameters and shovels (rabbitmq_shovel) and the firehose
// (trace_on, trace_off), on --vhost; handled is
// false for any other command.
func (c *client) plugins(args []string, out io.Writer) (handled bool, err error) {
	vh := url.PathEscape(c.vhost)
	param := func(component, name string) string {
		return "/api/parameters/" + url.PathEscape(component) + "/" + vh + "/" + url.PathEscape(name)
	}
	switch args[0] {
	case "set_parameter":
		if len(args) != 4 {
			return true, usageError("set_parameter COMPONENT NAME JSON")
		}
		var value json.RawMessage
		if err := json.Unmarshal([]byte(args[3]), &value); err != nil {
			return true, usageError("set_parameter: the value is not JSON: " + err.Error())
		}
		return true, c.call("PUT", param(args[1], args[2]), map[string]any{"value": value}, nil)
	case "clear_parameter":
		if len(args) != 3 {
			return true, usageError("clear_parameter COMPONENT NAME")
		}
		return true, c.call("DELETE", param(args[1], args[2]), nil, nil)
	case "list_parameters":
		var rows []map[string]any
		if err := c.call("GET", "/api/parameters/shovel/"+vh, nil, &rows); err != nil {
			return true, err
		}
		for _, r := range rows {
			v, _ := json.Marshal(r["value"])
			r["value"] = string(v)
		}
		return true, table(out, rows, []string{"component", "name", "value"})
	case "shovel_status":
		var rows []map[string]any
		if err := c.call("GET", "/api/shovels", nil, &rows); err != nil {
			return true, err
		}
		return true, table(out, rows, []string{"name", "vhost", "type", "state", "src_uri", "dest_uri", "reason", "timestamp"})
	case "delete_shovel":
		if len(args) != 2 {
			return true, usageError("delete_shovel NAME")
		}
		return true, c.call("DELETE", param("shovel", args[1]), nil, nil)
	case "trace_on", "trace_off":
		if len(args) != 1 {
			return true, usageError(args[0] + " (on --vhost)")
		}
		return true, c.call("PUT", "/api/vhosts/"+vh, map[string]any{"tracing": args[0] == "trace_on"}, nil)
	case "restart_shovel":
		if len(args) != 2 {
			return true, usageError("restart_shovel NAME")
		}
		return true, c.call("DELETE", "/api/shovels/vhost/"+vh+"/"+url.PathEscape(args[1])+"/restart", nil, nil)
	}
	return false, nil
}
