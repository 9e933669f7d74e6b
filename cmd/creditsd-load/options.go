package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// options are the command line.
type options struct {
	scenario    string
	concurrency int
	rate        float64
	duration    time.Duration
	count       int
	runs        int

	users, lots, expired int
	expiredLayout        string
	lotOrder             string

	creditsd  string // the binary to start; built when empty
	logLevel  string
	keep      bool
	seedCache string // a directory of seeded databases to copy instead of seeding

	target, secret, caDir, env string // an already running server
	pid                        int

	jsonOut                   string
	peer                      bool
	peerDir                   string
	peerCount                 int
	sweepWarmup, sweepTimeout time.Duration
	sweepIn                   string // sweepInServer or sweepInProcess
	sweepBeside               string // what the clients beside the sweep send: "spend" or "read"
	settle                    time.Duration
	profileDir                string // a CPU profile of the server per timed run goes here
}

var scenarios = []string{"read", "spend", "webhook", "sweep"} // "all" runs them in this order

// floor is a scenario run only when named: GET /healthz, what a request
// costs with no work behind it (env.healthz).
const floor = "healthz"

// Where the sweep scenario runs the expiry sweep: on the server's own
// schedule, as production does, or as `creditsd jobs run` beside it.
const (
	sweepInServer  = "server"
	sweepInProcess = "process"
)

const usageText = `usage: creditsd-load [flags]

Starts creditsd on a fresh temp database seeded with --users and --lots (or
targets a running one with --target), drives the --scenario over HTTP and
prints throughput, latency percentiles, errors by status and the server's
peak RSS.

Flags:
`

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("creditsd-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usageText); fs.PrintDefaults() }
	fs.StringVar(&o.scenario, "scenario", "all", "webhook, spend, read, sweep, healthz (the floor: a request with no work behind it), a comma-separated list of them, or all (read, spend, webhook, sweep on one server)")
	fs.IntVar(&o.concurrency, "concurrency", 0, "concurrent clients (default: webhook 16, spend 32, read 32, sweep 32, healthz 32)")
	fs.Float64Var(&o.rate, "rate", 0, "timed runs send this many requests a second in an open loop, latency counted from when each was due (0: each client sends as soon as it has its answer)")
	fs.DurationVar(&o.duration, "duration", 0, "length of each timed run (default 10s; webhook: until --count is sent)")
	fs.IntVar(&o.count, "count", 0, "requests per timed run (webhook default 30000: that many notifications are pre-signed)")
	fs.IntVar(&o.runs, "runs", 1, "timed runs of each scenario against the same server (sweep always runs once)")
	fs.IntVar(&o.users, "users", 10_000, "users seeded into the database")
	fs.IntVar(&o.lots, "lots", -1, "admin lots seeded, each with its ledger entry (default 10 per user)")
	fs.IntVar(&o.expired, "expired", -1, "of the lots, how many already expired (default: a tenth with sweep or all, else 0)")
	fs.StringVar(&o.expiredLayout, "expired-layout", "spread", "when the expired lots were granted: spread (evenly among the others: the sweep's worst case) or together (first, in one block of ids and ledger entries, as lots bought the same days are)")
	fs.StringVar(&o.lotOrder, "lot-order", "time", "the order the seeded lots are granted in: time (in the order bought, lot i to user i mod users, as a year of purchases by many users leaves them) or user (each user's in turn: a read's best case, and every seed before session 11)")
	fs.StringVar(&o.creditsd, "creditsd", "", "creditsd binary to start (default: go build ./cmd/creditsd into a temp dir)")
	fs.StringVar(&o.seedCache, "seed-cache", "", "a directory to keep seeded databases in and copy them from, so runs with the same --users, --lots, --expired and layout skip seeding (delete it to seed afresh)")
	fs.StringVar(&o.logLevel, "log-level", "info", "the started server's log level")
	fs.BoolVar(&o.keep, "keep", false, "keep the temp dir (config, database, payloads) and say where it is")
	fs.StringVar(&o.target, "target", "", "URL of a running creditsd instead of starting one (no seeding: users get lots through the admin API)")
	fs.StringVar(&o.secret, "secret", "", "with --target: the HS256 secret its tokens are verified with")
	fs.StringVar(&o.caDir, "ca-dir", "", "with --target: the devca directory its root is trusted from (e.g. ./creditsd-local/ca)")
	fs.StringVar(&o.env, "env", "LocalTesting", "with --target: the App Store environment it accepts")
	fs.IntVar(&o.pid, "pid", 0, "with --target: the server's pid, to sample its RSS")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to FILE (- for stdout, the table then to stderr)")
	fs.BoolVar(&o.peer, "peer", false, "webhook: verify the same payloads with Apple's Node library (bench/peer) and print the ratio")
	fs.StringVar(&o.peerDir, "peer-dir", "bench/peer", "where bench/peer is")
	fs.IntVar(&o.peerCount, "peer-count", 3000, "webhook --peer: how many of the payloads Apple's library verifies")
	fs.DurationVar(&o.sweepWarmup, "sweep-warmup", 3*time.Second, "sweep: spends before the sweep starts (in the server: at least this, up to the next whole minute)")
	fs.StringVar(&o.sweepIn, "sweep-in", sweepInServer, "sweep: server (restart creditsd with the sweep scheduled a minute or so ahead; its scheduler runs it) or process (`creditsd jobs run expiry-sweep` beside the server)")
	fs.StringVar(&o.sweepBeside, "sweep-beside", "spend", "sweep: what the clients beside it send: spend (the issue's target: spends keep their p99) or read (entitlement reads, which share the server's read connections with each batch's walk)")
	fs.DurationVar(&o.sweepTimeout, "sweep-timeout", 10*time.Minute, "sweep: give up on the sweep after this long")
	fs.StringVar(&o.profileDir, "profile", "", "save a CPU profile of the server over each timed run (not the sweep) to DIR/SCENARIO-RUN.pprof; the server must be built with go build -tags pprof (a count-bound run, the webhook's, gets its first 10s)")
	fs.DurationVar(&o.settle, "settle", 0, "before each timed run, wait up to this long for other work on the machine to stop (0: don't wait)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, o.check()
}

func (o *options) check() error {
	if err := o.checkScenarios(); err != nil {
		return err
	}
	if err := o.checkTarget(); err != nil {
		return err
	}
	if err := o.checkChoices(); err != nil {
		return err
	}
	if err := o.checkPeer(); err != nil {
		return err
	}
	return o.checkCounts()
}

// checkScenarios refuses a scenario the tool does not have, or one named twice.
func (o *options) checkScenarios() error {
	for i, name := range o.list() {
		if !slices.Contains(scenarios, name) && name != floor {
			return fmt.Errorf("--scenario %q: want %s or %s, a comma-separated list of them, or all", o.scenario,
				strings.Join(scenarios, ", "), floor)
		}
		if slices.Contains(o.list()[:i], name) {
			// A second pass would replay the first one's keys and transactions: not the same load.
			return fmt.Errorf("--scenario %q: %s twice; use --runs for more runs", o.scenario, name)
		}
	}
	return nil
}

// checkTarget refuses what a server the tool did not start cannot give.
func (o *options) checkTarget() error {
	switch {
	case o.target == "":
		return nil
	case o.secret == "" || o.caDir == "":
		return errors.New("--target needs --secret and --ca-dir")
	case o.profileDir != "":
		return errors.New("--profile needs a server the tool starts: a --target serves its own /debug/pprof if built to")
	case o.peer:
		return errors.New("--peer needs the started server: Apple's library skips verification for LocalTesting data")
	}
	return nil
}

// checkPeer refuses a --peer that would print nothing, or a ratio of
// nothing: the peer verifies the webhook's payloads, after its runs.
func (o *options) checkPeer() error {
	switch {
	case !o.peer:
		return nil
	case !slices.Contains(o.list(), "webhook"):
		return errors.New("--peer compares Apple's library with the webhook: add webhook to --scenario")
	case o.peerCount < 1:
		return fmt.Errorf("--peer-count %d: want at least 1", o.peerCount)
	}
	return nil
}

// checkChoices refuses a flag's value outside its choices.
func (o *options) checkChoices() error {
	for _, c := range []struct {
		flag, value string
		want        []string
	}{
		{"--sweep-in", o.sweepIn, []string{sweepInServer, sweepInProcess}},
		{"--sweep-beside", o.sweepBeside, []string{"spend", "read"}},
		{"--expired-layout", o.expiredLayout, []string{"spread", "together"}},
		{"--lot-order", o.lotOrder, []string{"user", "time"}},
	} {
		if !slices.Contains(c.want, c.value) {
			return fmt.Errorf("%s %q: want %s", c.flag, c.value, strings.Join(c.want, " or "))
		}
	}
	return nil
}

// checkCounts refuses counts out of range, and sets the defaults that
// depend on others: --lots 10 a user, --expired a tenth of them when the
// sweep runs.
func (o *options) checkCounts() error {
	if o.users < 1 || o.runs < 1 || o.concurrency < 0 || o.count < 0 || o.duration < 0 || o.rate < 0 {
		return errors.New("--users and --runs must be at least 1; --concurrency, --count, --duration and --rate not negative")
	}
	// -1 is the flags' own "unset"; any other negative was a mistake,
	// which seeded the default instead.
	if o.lots < -1 || o.expired < -1 {
		return fmt.Errorf("--lots %d, --expired %d: want 0 or more", o.lots, o.expired)
	}
	if o.lots < 0 {
		o.lots = 10 * o.users
	}
	if o.expired < 0 {
		o.expired = 0
		if slices.Contains(o.list(), "sweep") {
			o.expired = o.lots / 10
		}
	}
	if o.expired > o.lots {
		return fmt.Errorf("--expired %d is more than --lots %d", o.expired, o.lots)
	}
	return nil
}

// list is the scenarios to run, in order.
func (o options) list() []string {
	if o.scenario == "all" {
		return scenarios
	}
	return strings.Split(o.scenario, ",")
}

// phase is one timed run's bounds for scenario name.
func (o options) phase(name string) (concurrency, count int, duration time.Duration) {
	concurrency = o.concurrency
	if concurrency == 0 {
		concurrency = 32
		if name == "webhook" {
			concurrency = 16
		}
	}
	count, duration = o.count, o.duration
	if name == "webhook" && count == 0 {
		count = 30_000
	}
	if count == 0 && duration == 0 {
		duration = 10 * time.Second
	}
	return concurrency, count, duration
}
