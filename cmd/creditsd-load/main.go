// Command creditsd-load measures creditsd from the outside, over HTTP, the
// way its callers load it: Apple's webhook, the generation backend's spends,
// the app's entitlement reads and the expiry sweep beside live spends.
//
// By default it makes a test CA, writes a config that trusts it, seeds a
// temp database straight into SQLite (before the server starts, so seeding
// is not measured as load), builds and starts creditsd, and reports
// throughput, latency percentiles, errors by status and the server's peak
// RSS. With --target it drives a server that is already running instead.
// Seeding loads about 60–70k lots a second on the 2-core benchmark machine
// (each lot with its ledger entry and admin_grants row): 1M users and 10M
// lots take about 2.5 minutes. See BENCHMARKS.md for the figures and the
// commands that produced them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "creditsd-load:", err)
		os.Exit(1)
	}
}

// run is the whole program: set up the server, run the scenarios, report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	e, err := setup(ctx, opts, stderr)
	if err != nil {
		return err
	}
	rep := report{Machine: describeMachine(), Seed: e.seeded}
	rep.Machine.Server = opts.creditsd
	if e.bin != "" {
		rep.Machine.ServerVersion = serverVersion(ctx, e.bin)
	}
	var runErr error
	rep.Scenarios, runErr = runScenarios(ctx, opts.list(), e.scenario)
	rep.ServerHWMMB = e.serverHWMMB()
	closeErr := e.close()
	if err := rep.write(stdout, stderr, opts.jsonOut); err != nil {
		return err
	}
	return errors.Join(runErr, closeErr)
}

// runScenarios runs each of names in turn, and keeps those that ran whole.
// It stops at the first that fails or that ctx cuts short (a Ctrl-C): that
// one's figures would read as a whole run's, and the scenarios after it
// would run on nothing.
func runScenarios(ctx context.Context, names []string,
	scenario func(context.Context, string) (scenarioResult, error)) ([]scenarioResult, error) {
	var done []scenarioResult
	for _, name := range names {
		res, err := scenario(ctx, name)
		if err == nil && ctx.Err() != nil {
			err = fmt.Errorf("interrupted: %w", context.Cause(ctx))
		}
		if err != nil {
			return done, fmt.Errorf("%s: %w", name, err)
		}
		done = append(done, res)
	}
	return done, nil
}
