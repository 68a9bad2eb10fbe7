// Command warren runs the Warren AMQP 0-9-1 broker.
//
// With no flags it uses the built-in configuration (configs/warren.yaml):
// AMQP on :5672, data in ./data. See warren --help for the layering of
// --config files, WARREN_* environment variables and flags.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/broker"
	"github.com/warrenmq/warren/configs"
	"github.com/warrenmq/warren/management"
	"github.com/warrenmq/warren/plugins"
	"github.com/warrenmq/warren/shovel"
	"github.com/warrenmq/warren/storage"
)

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1 // the broker could not start or stop cleanly
	exitConfig = 2 // bad flags or configuration: nothing was started
)

// shutdownTimeout bounds how long a signal waits for connections to close.
const shutdownTimeout = 30 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// run is the whole command, apart from the process's globals, and returns the
// exit code.
func run(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	conf, err := loadConfig(args, lookupEnv)
	switch {
	case errors.Is(err, pflag.ErrHelp):
		configs.Usage(stdout)
		return exitOK
	case errors.Is(err, configs.ErrVersion):
		fmt.Fprintf(stdout, "warren %s\n", broker.Version)
		return exitOK
	case err != nil:
		var ce *configs.Error
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "warren: %v\n", err)
		} else {
			// A flag error: the user may not know the flag names.
			fmt.Fprintf(stderr, "warren: %v (see warren --help)\n", err)
		}
		return exitConfig
	}
	if len(conf.Cluster.Peers) > 0 {
		// Checked, but not run: a node that half-joins a cluster is worse
		// than one that says it cannot.
		fmt.Fprintf(stderr, "warren: cluster.peers: clustering is not finished in Warren %s; leave cluster.peers empty to run a single node (docs/clustering.md)\n", broker.Version)
		return exitConfig
	}
	cfg := brokerConfig(conf)

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: conf.LogLevel}))
	if conf.Plugins != nil {
		log.Info("enabled_plugins read", "plugins", strings.Join(conf.Plugins, ","))
	}
	for _, w := range conf.Warnings {
		log.Warn(w)
	}
	if cfg.MemoryHighWatermark > 0 {
		// Let the garbage collector work harder as the heap nears the
		// watermark, rather than raise the memory alarm with garbage.
		debug.SetMemoryLimit(int64(cfg.MemoryHighWatermark))
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		fmt.Fprintf(stderr, "warren: storage.dir: %v\n", err)
		return exitFail
	}
	srv, err := amqp.NewServer(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "warren: %v\n", err)
		if errors.Is(err, storage.ErrCorrupt) || errors.Is(err, storage.ErrNewerFormat) || errors.Is(err, storage.ErrLocked) {
			// The data directory cannot be used as it is: never start empty.
			return exitConfig
		}
		return exitFail
	}
	// Every listener is bound before anything is served: one that cannot
	// bind (say, a RabbitMQ beside it holds the port) stops the start with
	// one line naming it, rather than leave a broker without the API or
	// metrics it was asked for.
	var ls listeners
	defer ls.close()
	fail := func(key string, err error) int {
		fmt.Fprintf(stderr, "warren: %s: %v\n", key, err)
		ls.close()
		_ = srv.Shutdown(context.Background()) // releases the data directory
		return exitFail
	}
	for _, addr := range conf.Listen {
		if err := ls.bind("amqp", "started TCP listener on %s", addr, srv.Serve); err != nil {
			return fail("amqp.listen", err)
		}
	}
	for _, addr := range conf.TLS.Listen {
		if err := ls.bind("amqps", "started TLS (SSL) listener on %s", addr, srv.ServeTLS); err != nil {
			return fail("amqp.tls.listen", err)
		}
	}
	shovels, err := shovel.NewManager(shovel.Options{Store: srv.Broker().Storage(), Local: srv.DialDirect, Log: log})
	if err != nil {
		return fail("shovels", err)
	}
	defer shovels.Close()
	api := management.New(srv, management.Options{Log: log, Shovels: shovels})
	defer api.Close()
	mux := http.NewServeMux()
	mux.Handle("/metrics", api.Metrics())
	mux.Handle("/metrics/", api.Metrics())
	for _, h := range []struct {
		key, addr, started string
		handler            http.Handler
		protocol           string // as the health checks name it; "" is not listed
	}{
		{"http.listen", conf.HTTPListen, "Management plugin: HTTP (non-TLS) listener started on port %s", api, "http"},
		{"prometheus.listen", conf.PrometheusListen, "Prometheus metrics: HTTP (non-TLS) listener started on port %s", mux,
			"http/prometheus"},
		{"pprof.listen", conf.PprofListen, "Go profiler: HTTP listener started on %s", pprofHandler(), ""},
	} {
		if h.addr == "" {
			continue
		}
		hs := &http.Server{Handler: h.handler, ReadHeaderTimeout: 10 * time.Second}
		if err := ls.bindHTTP(strings.TrimSuffix(h.key, ".listen"), h.started, h.protocol, h.addr, hs); err != nil {
			return fail(h.key, err)
		}
	}
	if conf.DefinitionsFile != "" {
		if err := srv.Broker().ImportFile(conf.DefinitionsFile); err != nil {
			fmt.Fprintf(stderr, "warren: definitions.import_file: %v\n", err)
			ls.close()
			_ = srv.Shutdown(context.Background())
			return exitConfig
		}
		log.Info("definitions imported", "file", conf.DefinitionsFile)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	served := ls.serve(srv, log)
	// RabbitMQ's words, which tools wait for (testcontainers' RabbitMQ
	// module waits for "Server startup complete"), with Warren's attributes:
	// scripts read the bound addresses (amqp=...) from this line.
	started := startedPlugins(conf.HTTPListen != "", conf.PrometheusListen != "")
	log.Info(fmt.Sprintf("Server startup complete; %d plugins started.", len(started)),
		append(append([]any{"product", "Warren", "version", broker.Version}, ls.attrs()...), "data", cfg.DataDir)...)
	for _, p := range started {
		log.Info(" * " + p)
	}

	select {
	case err := <-served:
		// Serve only returns before Shutdown if accepting failed.
		log.Error("listener failed", "err", err)
		return exitFail
	case <-ctx.Done():
	}
	// Restore default signal handling so a second Ctrl-C kills a stuck shutdown.
	stop()
	log.Info("shutting down", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	shovels.Close() // before the broker, so that no shovel reconnects to it
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown incomplete", "err", err)
		return exitFail
	}
	for range ls.amqp {
		if err := <-served; err != nil && !errors.Is(err, amqp.ErrServerClosed) {
			log.Error("listener failed", "err", err)
			return exitFail
		}
	}
	log.Info("warren stopped")
	return exitOK
}

// startedPlugins names the built-in plugins that run, as RabbitMQ's startup
// line counts them: those served over the management listener (the
// management and web_dispatch plugins, *_management) or the Prometheus one
// only when it is on.
func startedPlugins(httpOn, prometheusOn bool) []string {
	var out []string
	for _, name := range plugins.Names() {
		switch {
		case name == "rabbitmq_prometheus":
			if !prometheusOn {
				continue
			}
		case strings.HasPrefix(name, "rabbitmq_management"), name == "rabbitmq_web_dispatch",
			strings.HasSuffix(name, "_management"):
			if !httpOn {
				continue
			}
		}
		out = append(out, name)
	}
	return out
}

// listeners are the command's bound listeners, bound all before any is
// served.
type listeners struct {
	amqp []amqpListener
	http []httpListener
	// serving is set once the AMQP listeners are handed to the server,
	// whose Shutdown then closes them.
	serving bool
}

type amqpListener struct {
	l       net.Listener
	serve   func(net.Listener) error
	started string
	key     string // amqp or amqps, for the startup line
}

type httpListener struct {
	key      string // http, prometheus or pprof, for the startup line
	l        net.Listener
	srv      *http.Server
	started  string
	protocol string
	// remove takes it off the server's list of listeners.
	remove func()
}

// bind listens on addr for an AMQP (or AMQPS) server; started is the log
// line, with %s for the bound address.
func (ls *listeners) bind(key, started, addr string, serve func(net.Listener) error) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ls.amqp = append(ls.amqp, amqpListener{key: key, l: l, serve: serve, started: fmt.Sprintf(started, l.Addr())})
	return nil
}

// bindHTTP listens on addr for an HTTP server; started is the log line,
// with %s for the bound port.
func (ls *listeners) bindHTTP(key, started, protocol, addr string, srv *http.Server) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	port := l.Addr().String()
	if strings.Contains(started, "port") {
		if _, p, err := net.SplitHostPort(port); err == nil {
			port = p
		}
	}
	ls.http = append(ls.http, httpListener{key: key, l: l, srv: srv, started: fmt.Sprintf(started, port), protocol: protocol})
	return nil
}

// attrs are the bound addresses as log attributes: amqp=127.0.0.1:5672 ...
func (ls *listeners) attrs() []any {
	var a []any
	for _, l := range ls.amqp {
		a = append(a, l.key, l.l.Addr().String())
	}
	for _, l := range ls.http {
		a = append(a, l.key, l.l.Addr().String())
	}
	return a
}

// serve starts every listener, logging each as RabbitMQ does, and returns
// where the AMQP listeners' Serve results arrive.
func (ls *listeners) serve(srv *amqp.Server, log *slog.Logger) <-chan error {
	for i, h := range ls.http {
		go func() { _ = h.srv.Serve(h.l) }()
		if h.protocol != "" {
			// The health checks and /api/overview list it.
			ls.http[i].remove = srv.AddListener(amqp.Listener{Protocol: h.protocol, Addr: h.l.Addr()})
		}
		log.Info(h.started)
	}
	served := make(chan error, len(ls.amqp))
	ls.serving = true
	for _, a := range ls.amqp {
		go func() { served <- a.serve(a.l) }()
		log.Info(a.started)
	}
	return served
}

// close closes the HTTP servers and any listener not yet served; the AMQP
// ones that are served close with the server's Shutdown.
func (ls *listeners) close() {
	for _, h := range ls.http {
		if h.remove != nil {
			h.remove()
		}
		h.srv.Close()
		h.l.Close()
	}
	ls.http = nil
	if !ls.serving {
		for _, a := range ls.amqp {
			a.l.Close()
		}
		ls.amqp = nil
	}
}

// pprofHandler serves the Go profiler on its own listener (pprof.listen),
// so that it is never reachable through the management port by accident.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
