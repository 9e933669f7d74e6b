package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/entitlements/sqlite"
	"github.com/creditsd/creditsd/notifications"
	"github.com/creditsd/creditsd/receipts"
)

// shutdownGrace is how long in-flight requests get to finish on SIGTERM.
const shutdownGrace = 15 * time.Second

// writeTimeout is how long a request has, from the end of its headers, to
// be answered: past it net/http closes the connection, and the client gets
// no answer at all while the handler runs on.
const writeTimeout = 30 * time.Second

// idleTimeout is how long a kept-alive connection may wait for its next
// request; each one held costs a goroutine and its buffers.
const idleTimeout = time.Minute

// maxHeaderBytes bounds a request's headers. The largest the service
// reads is a bearer token of at most 8 KiB; net/http's default of 1 MiB
// let each connection hold a megabyte for ReadHeaderTimeout.
const maxHeaderBytes = 32 << 10

// maxMaxConnections bounds the max_connections key: past it, the limit
// guards nothing the process's file limit does not.
const maxMaxConnections = 1 << 20

// receiptTimeout bounds a StoreKit 1 receipt's lookup at Apple well under
// writeTimeout. The API client alone may take minutes (4 tries of up to 30 s
// each, 429 waits of up to 30 s, in each environment), so the app got an
// EOF where it should have been told to try again, and the claim applied
// after it went unseen. The 10 s left are for the claim and the answer,
// which may wait for the database's one writer.
const receiptTimeout = 20 * time.Second

// receiptBurst and receiptEvery bound, per user, the purchases that app
// receipts may look up at the App Store, whose rate limit reconcile and the
// consumption answers share: a receipt is unsigned, so each of its ten ids
// may be forged, and costs up to two calls (Production, then Sandbox). A
// pack the user already holds is not looked up again, so an honest app
// spends about one a purchase, plus what it cannot claim and keeps sending
// (its subscription's newest period, a pack bought without its token):
// thirty at once (a restore of ten, and room to spare), then one every two
// minutes. A receipt takes what is left, newest first, so the purchase
// just made is asked first.
const (
	receiptBurst = 30
	receiptEvery = 2 * time.Minute
)

func serveCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	fs, configPath := newFlagSet("serve", stderr)
	var listen string
	// Checked as the config's listen is, before the database is opened.
	fs.Func("listen", "`ADDR` to listen on, overriding the config's listen (e.g. 127.0.0.1:0)", func(v string) error {
		listen = v
		return checkListen(v)
	})
	if rest, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(rest) > 0 {
		return usageError{msg: fmt.Sprintf("serve takes no arguments, got %q", rest)}
	}
	tuneGC(getenv)
	tuneProcs(getenv)
	a, err := openApp(ctx, *configPath, getenv, stderr)
	if err != nil {
		return err
	}
	if listen != "" {
		a.settings.Config.Listen = listen
	}
	defer func() { err = errors.Join(err, a.close()) }()
	return a.serve(ctx)
}

// serveGCPercent is the server's GOGC unless the environment sets one. Its
// live heap is small (~10 MB), so at Go's default of 100 it collected many
// times a second under load: GC was ~4 % of the webhook's CPU, and 400
// gave ~7 % more notifications a second for ~12 MB more RSS (BENCHMARKS.md).
const serveGCPercent = 400

// tuneGC sets serveGCPercent, leaving an operator's GOGC alone.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
}

// serveProcsPerCPU is how many Ps (GOMAXPROCS) the server runs a CPU. A
// goroutine that the network readies waits for a P, and with one P a CPU
// it waits while the thread holding that P is off the CPU, taken by the
// kernel for another process sharing the cores. At 10 read clients beside
// the load tool such waits had a p99 of 4.6 ms, most of the reads' 5.4 ms;
// with two Ps a CPU the reads' p99 fell to 2.9–3.7 ms (BENCHMARKS.md,
// session 24). The store sizes its readers by the Ps at start, not by this
// (sqlite's readerCount, which keeps its own copy of startProcs).
const serveProcsPerCPU = 2

// startProcs is the GOMAXPROCS the runtime chose at start (the CPUs it may
// use, a cgroup's CPU quota included), before tuneProcs changed it.
var startProcs = runtime.GOMAXPROCS(0)

// tuneProcs sets the Ps procsFor chooses.
func tuneProcs(getenv func(string) string) {
	if n, ok := procsFor(getenv("GOMAXPROCS"), startProcs, runtime.NumCPU()); ok {
		runtime.GOMAXPROCS(n)
	}
}

// procsFor is serveProcsPerCPU Ps for each of the start's, unless an
// operator set GOMAXPROCS, or a CPU quota made the runtime choose fewer
// Ps than the CPUs: under a quota more Ps spend it faster and the kernel
// throttles the whole process, and the runtime's own choice follows the
// quota as it changes, which setting GOMAXPROCS would stop.
func procsFor(env string, start, cpus int) (int, bool) {
	if env != "" || start < cpus {
		return 0, false
	}
	return serveProcsPerCPU * start, true
}

// app is the wired program: settings, database, verifier and handlers.
type app struct {
	settings *Settings
	log      *slog.Logger
	db       *sqlite.DB
	registry *prometheus.Registry
	verifier *receipts.Verifier
	ledger   *entitlements.Handler
	inbox    *notifications.Processor
}

// loadSettings reads the config named by --config or CREDITSD_CONFIG, or
// prepares the local profile when there is none.
func loadSettings(path string, getenv func(string) string) (*Settings, []string, error) {
	if path == "" {
		path = getenv("CREDITSD_CONFIG")
	}
	var cfg Config
	var notes []string
	var err error
	if path == "" {
		cfg, notes, err = PrepareLocal(DefaultLocalDir, time.Now())
	} else {
		cfg, err = LoadConfig(path, getenv)
	}
	if err != nil {
		return nil, nil, err
	}
	s, err := cfg.Resolve()
	nameFile(err, path) // "" for the local profile, which has no file
	hideEnv(err, cfg.fromEnv)
	if s != nil {
		s.File = path
	}
	return s, notes, err
}

// loadLogged is loadSettings for a command, with the logger its settings
// ask for, which has told the local profile's notes.
func loadLogged(configPath string, getenv func(string) string, stderr io.Writer) (*Settings, *slog.Logger, error) {
	s, notes, err := loadSettings(configPath, getenv)
	if err != nil {
		return nil, nil, err
	}
	log := newLogger(s.Config.Log, stderr)
	for _, n := range notes {
		log.Warn(n)
	}
	return s, log, nil
}

func openApp(ctx context.Context, configPath string, getenv func(string) string, stderr io.Writer) (*app, error) {
	s, log, err := loadLogged(configPath, getenv, stderr)
	if err != nil {
		return nil, err
	}
	db, err := openDatabase(ctx, s, log)
	if err != nil {
		return nil, err
	}
	db.Policy = sqlite.Policy{Allowance: s.Allowance, Refund: s.Refund}
	a := &app{settings: s, log: log, db: db, registry: prometheus.NewRegistry()}
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		ledgerCollector{db: db, log: log}, writerCollector{db: db},
		jobsCollector{db: db, log: log, jobs: jobNames})
	a.verifier = &receipts.Verifier{Roots: s.Roots, BundleID: s.Config.Apple.BundleID,
		AppAppleID: s.Config.Apple.AppAppleID, Environments: s.Config.Apple.Environments}
	a.ledger = &entitlements.Handler{Store: db, Verifier: a.verifier, Catalog: s.Catalog,
		Allowance: s.Allowance, Pricing: s.Pricing, Tokens: s.Tokens, Now: time.Now, Log: log,
		Metrics: entitlements.NewMetrics(a.registry)}
	a.registerCertExpiry()
	if s.AppStore != nil {
		a.ledger.Receipts = receiptLookup{client: s.AppStore, environments: s.Config.Apple.Environments}
		a.ledger.ReceiptTimeout = receiptTimeout
		a.ledger.ReceiptBudget = &entitlements.Budget{Burst: receiptBurst, Every: receiptEvery}
	}
	a.inbox = &notifications.Processor{Verifier: a.verifier, Store: db, Catalog: s.Catalog, Now: time.Now,
		Log: log, Metrics: notifications.NewMetrics(a.registry)}
	return a, nil
}

// openDatabase opens the store at the database key's path. A path that
// cannot hold a database is a config error naming the key, as any other
// bad value is: SQLite's own message names neither the key nor the file.
func openDatabase(ctx context.Context, s *Settings, log *slog.Logger) (*sqlite.DB, error) {
	// The first start after an upgrade can migrate for minutes before it
	// listens (44 s to 1 min 40 s on the 10M-lot seed): said at once, so
	// that an operator, or a probe's author, knows it is not hung. A file
	// Pending cannot read is Open's to refuse.
	pending, _ := sqlite.Pending(ctx, s.Config.Database)
	start := time.Now()
	if len(pending) > 0 {
		log.Info("migrating the database", "database", s.Config.Database, "pending", pending)
	}
	db, err := sqlite.Open(ctx, s.Config.Database)
	if sqlite.UnusablePath(err) {
		err = keyErrorf("database", "%w", err)
		nameFile(err, s.File)
	}
	if err == nil && len(pending) > 0 {
		log.Info("database migrated", "database", s.Config.Database, "applied", len(pending),
			"took", time.Since(start).Round(time.Millisecond).String())
	}
	return db, err
}

// serve answers HTTP and runs the scheduler until ctx ends, then shuts down
// in order: stop taking requests and let in-flight ones finish, stop the
// scheduler and wait for running jobs, then the caller closes the database.
func (a *app) serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.settings.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if warning := a.settings.Config.Auth.unboundWarning(); warning != "" {
		a.log.Warn(warning)
	}
	stopJobs, err := a.startJobs(ctx)
	if err != nil {
		return errors.Join(err, ln.Close())
	}
	defer stopJobs()
	limited := newLimitListener(ln, a.settings.Config.MaxConnections)
	srv := &http.Server{
		Handler:           a.routes(),
		ConnState:         limited.connState,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	a.log.Info("listening", "addr", ln.Addr().String(), "environments", a.settings.Config.Apple.Environments,
		"bundle_id", a.settings.Config.Apple.BundleID, "database", a.settings.Config.Database)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(problemListener{limited}) }() // net/http's own 4xx in problem+json too (rawerrors.go)
	go a.watchCertificates(ctx, time.Hour)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		// Past the grace, the connections still open are closed, so that
		// their handlers see their requests cancelled (Close does not wait
		// for them: a write after the database closes fails, unacknowledged).
		return errors.Join(fmt.Errorf("shutdown: %w", err), srv.Close())
	}
	return nil
}

// close closes the database. Its error is the command's, so that a
// database that would not close does not exit 0.
func (a *app) close() error {
	if err := a.db.Close(); err != nil {
		return fmt.Errorf("closing the database: %w", err)
	}
	return nil
}

func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated with the config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
