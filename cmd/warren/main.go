// Command warren runs the Warren AMQP 0-9-1 broker.
//
// With no flags it uses the built-in configuration (configs/warren.yaml):
// AMQP on :5672, data in ./data. See warren --help for the layering of
// --config files, WARREN_* environment variables and flags.
package main

import (
	"context"
	"encoding/json"
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
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/warrenmq/warren/amqp"
	"github.com/warrenmq/warren/management"
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
	cfg, level := conf.Broker, conf.Level
	switch {
	case errors.Is(err, pflag.ErrHelp):
		usage(stdout)
		return exitOK
	case errors.Is(err, errVersion):
		fmt.Fprintf(stdout, "warren %s\n", amqp.Version)
		return exitOK
	case err != nil:
		var ce *configError
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "warren: %v\n", err)
		} else {
			// A flag error: the user may not know the flag names.
			fmt.Fprintf(stderr, "warren: %v (see warren --help)\n", err)
		}
		return exitConfig
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
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
	// Listening here rather than in ListenAndServe reports "address in use"
	// before the start line, and lets that line show the bound address.
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintf(stderr, "warren: amqp.listen: %v\n", err)
		_ = srv.Shutdown(context.Background()) // releases the data directory
		return exitFail
	}
	var tl net.Listener
	attrs := []any{"version", amqp.Version, "amqp", l.Addr().String()}
	if cfg.TLS.Listen != "" {
		if tl, err = net.Listen("tcp", cfg.TLS.Listen); err != nil {
			fmt.Fprintf(stderr, "warren: amqp.tls.listen: %v\n", err)
			l.Close()
			_ = srv.Shutdown(context.Background())
			return exitFail
		}
		attrs = append(attrs, "amqps", tl.Addr().String())
	}
	api := management.New(srv, management.Options{Log: log})
	defer api.Close()
	if conf.DefinitionsFile != "" {
		if err := importDefinitions(api, conf.DefinitionsFile); err != nil {
			fmt.Fprintf(stderr, "warren: definitions.import_file: %v\n", err)
			l.Close()
			_ = srv.Shutdown(context.Background())
			return exitConfig
		}
		log.Info("definitions imported", "file", conf.DefinitionsFile)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", api.Metrics())
	for _, h := range []struct {
		key, addr string
		handler   http.Handler
		protocol  string // as the health checks name it; "" is not listed
	}{{"http", conf.HTTPListen, api, "http"}, {"prometheus", conf.PrometheusListen, mux, "http/prometheus"}, {"pprof", conf.PprofListen, pprofHandler(), ""}} {
		if h.addr == "" {
			continue
		}
		// The AMQP service comes first: a management port in use (say, by a
		// RabbitMQ beside it) is an error in the log, not a reason to stop.
		hl, err := net.Listen("tcp", h.addr)
		if err != nil {
			log.Error("cannot serve "+h.key, "err", err)
			continue
		}
		hs := &http.Server{Handler: h.handler, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = hs.Serve(hl) }()
		defer hs.Close()
		if h.protocol != "" {
			defer srv.AddListener(amqp.Listener{Protocol: h.protocol, Addr: hl.Addr()})()
		}
		attrs = append(attrs, h.key, hl.Addr().String())
	}
	log.Info("warren started", append(attrs, "data", cfg.DataDir)...)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 2)
	go func() { served <- srv.Serve(l) }()
	listeners := 1
	if tl != nil {
		listeners++
		go func() { served <- srv.ServeTLS(tl) }()
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
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown incomplete", "err", err)
		return exitFail
	}
	for range listeners {
		if err := <-served; err != nil && !errors.Is(err, amqp.ErrServerClosed) {
			log.Error("listener failed", "err", err)
			return exitFail
		}
	}
	log.Info("warren stopped")
	return exitOK
}

// importDefinitions loads a definitions file into the broker before it
// accepts connections.
func importDefinitions(api *management.API, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var d management.Definitions
	dec := json.NewDecoder(f)
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return api.Import(&d, "")
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
