package main

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The CLI runs where the broker runs (a container's HEALTHCHECK, docker
// exec): with no WARREN_USER/WARREN_PASSWORD/WARREN_URL it takes the
// credentials and management port the node was given the RabbitMQ way, so
// that `rabbitmq-diagnostics ping` works in a container started with
// RABBITMQ_DEFAULT_USER/RABBITMQ_DEFAULT_PASS, as RabbitMQ's CLI (which
// uses the Erlang cookie instead) does.

// rabbitDefaults are the default_user, default_pass and management.tcp.port
// of the node's RabbitMQ configuration ("" when not set): RABBITMQ_* variables
// over rabbitmq.conf and conf.d/*.conf, read as Warren reads them.
func rabbitDefaults(env func(string) (string, bool)) (user, pass, port string) {
	keys := map[string]string{}
	dir := "/etc/rabbitmq"
	if d, ok := env("WARREN_RABBITMQ_DIR"); ok {
		dir = d
	}
	if dir != "" {
		main := filepath.Join(dir, "rabbitmq.conf")
		if f, ok := env("RABBITMQ_CONFIG_FILE"); ok && f != "" {
			main = f
			if filepath.Ext(f) == "" {
				main = f + ".conf"
			}
		}
		readConfKeys(main, keys)
		confd := filepath.Join(dir, "conf.d")
		if d, ok := env("RABBITMQ_CONFIG_FILES"); ok && d != "" {
			confd = d
		}
		pattern := confd
		if fi, err := os.Stat(confd); err == nil && fi.IsDir() {
			pattern = filepath.Join(confd, "*.conf")
		}
		files, _ := filepath.Glob(pattern)
		sort.Strings(files)
		for _, f := range files {
			readConfKeys(f, keys)
		}
	}
	if v, ok := env("RABBITMQ_DEFAULT_USER"); ok && v != "" {
		keys["default_user"] = v
	}
	if v, ok := env("RABBITMQ_DEFAULT_PASS"); ok && v != "" {
		keys["default_pass"] = v
	}
	return keys["default_user"], keys["default_pass"], keys["management.tcp.port"]
}

// readConfKeys reads the keys the CLI needs from a rabbitmq.conf file;
// a file that cannot be read is skipped (the broker reports it).
func readConfKeys(path string, keys map[string]string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		} else if i := strings.Index(v, "#"); i >= 0 {
			v = strings.TrimSpace(v[:i])
		}
		switch k {
		case "default_user", "default_pass", "management.tcp.port":
			keys[k] = v
		}
	}
}
