package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/receipts/devca"
)

// env is the server under load and what the scenarios need to reach it.
type env struct {
	opts        options
	stderr      io.Writer
	base        string // http://host:port
	client      *wireClient
	secret      string
	ca          *devca.CA
	environment string
	rootFile    string
	runID       string // makes ids unique across runs against one database
	rss         *rssSampler
	pastHWMMB   float64 // the peak RSS of servers stopped before this one
	seeded      *seedReport
	seededAt    time.Time // the seed's now: lots expiring by then are the expired ones

	// Set only when the load tool started the server itself.
	dir       string
	bin       string
	files     serverFiles
	srv       *server
	pprofAddr string // where it serves profiles, with --profile
}

// lotCredits is what each seeded lot holds, the most one lot may: enough
// that spends never run out, however long a run lasts.
const lotCredits = entitlements.MaxCredits

func setup(ctx context.Context, o options, stderr io.Writer) (*env, error) {
	e := &env{opts: o, stderr: stderr, runID: newRunID()}
	var err error
	if o.target != "" {
		err = e.setupTarget(ctx)
	} else {
		err = e.setupLocal(ctx)
	}
	if err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// setupLocal makes the CA, config and seeded database, then starts the
// server on them.
func (e *env) setupLocal(ctx context.Context) error {
	var err error
	if e.dir, err = os.MkdirTemp("", "creditsd-load-"); err != nil {
		return err
	}
	// Valid from an hour ago, so payloads signed now are inside its validity.
	if e.ca, err = devca.New(devca.Options{Now: time.Now().Add(-time.Hour)}); err != nil {
		return err
	}
	if e.files, err = writeConfig(e.dir, e.ca.RootPEM(), e.opts.logLevel); err != nil {
		return err
	}
	e.secret, e.environment, e.rootFile = e.files.Secret, environment, e.files.Root
	e.seededAt = time.Now()
	plan := seedPlan{users: e.opts.users, lots: e.opts.lots, expired: e.opts.expired, credits: lotCredits, now: e.seededAt,
		together: e.opts.expiredLayout == "together", byTime: e.opts.lotOrder == "time"}
	fmt.Fprintf(e.stderr, "seeding %d users, %d lots (%d expired, %s; by %s) into %s\n", plan.users, plan.lots, plan.expired,
		e.opts.expiredLayout, e.opts.lotOrder, e.files.Database)
	rep, seededAt, err := seedCached(ctx, e.opts.seedCache, e.files.Database, plan, e.stderr)
	if err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	e.seededAt = seededAt
	e.seeded = &rep
	if !rep.Cached {
		fmt.Fprintf(e.stderr, "seeded in %.1fs (%.0f lots/s)\n", rep.Seconds, rep.LotsPerSec)
	}
	if e.bin = e.opts.creditsd; e.bin == "" {
		if e.bin, err = buildServer(ctx, e.dir, e.stderr); err != nil {
			return err
		}
	}
	return e.start()
}

// start starts the binary on the config and samples its memory.
func (e *env) start() error {
	var env []string
	if e.opts.profileDir != "" {
		if err := os.MkdirAll(e.opts.profileDir, 0o755); err != nil {
			return err
		}
		var err error
		if e.pprofAddr, err = freeLocalAddr(); err != nil {
			return err
		}
		env = append(env, pprofEnv+"="+e.pprofAddr)
	}
	srv, err := startServer(e.bin, e.files.Config, env...)
	if err != nil {
		return err
	}
	if e.pprofAddr != "" {
		if err := checkProfiles(context.Background(), e.pprofAddr, 5*time.Second); err != nil {
			return errors.Join(err, srv.stop())
		}
	}
	e.srv, e.base = srv, "http://"+srv.addr
	if e.client, err = newWireClient(e.base, e.idleConns()); err != nil {
		return err
	}
	e.rss = newRSSSampler(srv.pid())
	fmt.Fprintf(e.stderr, "creditsd pid %d listening on %s\n", srv.pid(), srv.addr)
	return nil
}

// stop stops the server the load tool started, keeping its peak RSS
// for the report, so that it can be started again on a new config.
func (e *env) stop() error {
	e.pastHWMMB = max(e.pastHWMMB, e.rss.hwmMB())
	e.rss.close()
	err := e.srv.stop()
	e.srv = nil
	e.client.CloseIdleConnections() // they lead to the old port; start makes a new client
	return err
}

// idleConns is how many connections the client keeps: one per worker,
// and the admin API's seeding runs 64.
func (e *env) idleConns() int { return max(e.opts.concurrency, 64) }

// serverHWMMB is the peak RSS over the life of every server started.
func (e *env) serverHWMMB() float64 { return max(e.pastHWMMB, e.rss.hwmMB()) }

// setupTarget reaches a running server. Its database cannot be seeded from
// here, so the users get their lots through the admin API instead.
func (e *env) setupTarget(ctx context.Context) error {
	var err error
	if e.ca, err = devca.Load(e.opts.caDir); err != nil {
		return err
	}
	e.base = strings.TrimSuffix(e.opts.target, "/")
	if e.client, err = newWireClient(e.base, e.idleConns()); err != nil {
		return err
	}
	e.secret, e.environment, e.rootFile = e.opts.secret, e.opts.env, filepath.Join(e.opts.caDir, "root.pem")
	e.rss = newRSSSampler(e.opts.pid)
	return e.grantViaAPI(ctx)
}

// grantViaAPI gives every load user one big lot, once: the idempotency
// key makes a second run's grants replays.
func (e *env) grantViaAPI(ctx context.Context) error {
	token, err := mint(e.secret, "creditsd-load", "credits:admin", time.Hour)
	if err != nil {
		return err
	}
	body := []byte(fmt.Sprintf(`{"idempotency_key":"creditsd-load-seed","credits":%d,"reason":"load test"}`, lotCredits))
	l := load{name: "grant", concurrency: 16, count: e.opts.users, progress: e.stderr}
	samples, _ := l.run(ctx, func(ctx context.Context, i int) (int, error) {
		return send(ctx, e.client, "POST", "/v1/users/"+seedUserID(i)+"/grants", token, body)
	})
	if s := summarize(samples, 0); s.OK != e.opts.users {
		return fmt.Errorf("granting lots through the admin API: %d of %d succeeded, errors %v", s.OK, e.opts.users, s.Errors)
	}
	return nil
}

func (e *env) close() error {
	var err error
	if e.srv != nil {
		err = e.srv.stop()
	}
	e.rss.close()
	if e.dir != "" {
		if e.opts.keep {
			fmt.Fprintln(e.stderr, "kept", e.dir)
		} else {
			os.RemoveAll(e.dir)
		}
	}
	return err
}

// scenario runs one scenario and reports it with the server's peak RSS
// while it ran.
func (e *env) scenario(ctx context.Context, name string) (scenarioResult, error) {
	e.rss.resetPeak()
	var res scenarioResult
	var err error
	switch name {
	case "webhook":
		res, err = e.webhook(ctx)
	case "spend":
		res, err = e.spend(ctx)
	case "read":
		res, err = e.read(ctx)
	case "sweep":
		res, err = e.sweep(ctx)
	case floor:
		res, err = e.healthz(ctx)
	}
	res.Name = name
	res.PeakRSSMB = e.rss.peakMB()
	return res, err
}

// pid is the server's, when known (0 for a --target without --pid).
func (e *env) pid() int {
	if e.srv != nil {
		return e.srv.pid()
	}
	return e.opts.pid
}

func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
