package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/creditsd/creditsd/entitlements/sqlite"
)

// errLedgerMismatch is `ledger check`'s failure: its lines say what.
var errLedgerMismatch = errors.New("the ledger does not rebuild every figure stored beside it")

// ledgerCommand is `creditsd ledger check`: rebuild, from the append-only
// entries, every figure stored beside them (lots' remaining, debts, the
// allowance counters of the days the daily reset keeps, ledger_totals), print each that differs,
// and fail if any does. It opens the database read-only, neither creating
// the database nor migrating it, and reads one snapshot, so it may run beside a live
// server without taking its write lock; it reads every entry several
// times.
func ledgerCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	fs, configPath := newFlagSet("ledger", stderr)
	keptFrom := fs.String("kept-from", "", "the first `DAY` (YYYY-MM-DD) whose allowance counters must all be there "+
		"(default: the first day the daily reset has kept whole, as it recorded)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 || rest[0] != "check" {
		return usageError{msg: "usage: creditsd ledger check [--config FILE] [--kept-from DAY]"}
	}
	s, _, err := loadLogged(*configPath, getenv, stderr)
	if err != nil {
		return err
	}
	if *keptFrom != "" {
		if err := checkKeptFrom(*keptFrom, s.Allowance.Day(time.Now()).Key); err != nil {
			return err
		}
	}
	db, err := sqlite.OpenReadOnly(ctx, s.Config.Database)
	if err != nil {
		return checkFailed(ctx, err)
	}
	defer func() { err = errors.Join(err, db.Close()) }()
	c, err := db.CheckLedger(ctx, *keptFrom)
	if err != nil {
		return checkFailed(ctx, err)
	}
	return printCheck(stdout, c)
}

// checkFailed is the error of a check that did not finish: one stopped by
// a signal (ctx) says so, and exits 3, rather than leave the operator a
// driver's error and a mismatch's exit code.
func checkFailed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return stoppedError{fmt.Errorf("ledger check: stopped before it finished: %w", err)}
	}
	return fmt.Errorf("ledger check: %w", err)
}

// printCheck prints the mismatches c lists and a summary line, and fails
// if c found any.
func printCheck(w io.Writer, c sqlite.LedgerCheck) error {
	for _, m := range c.Mismatches {
		if _, err := fmt.Fprintln(w, m); err != nil {
			return err
		}
	}
	verdict := "ok"
	if c.Found > 0 {
		verdict = fmt.Sprintf("%d mismatch", c.Found)
		if c.Found > 1 {
			verdict += "es"
		}
		if int64(len(c.Mismatches)) < c.Found {
			verdict += fmt.Sprintf(" (the first %d listed)", len(c.Mismatches))
		}
	}
	if _, err := fmt.Fprintf(w, "ledger check: %d lots, %d users, %d allowance counters, %d totals: %s\n",
		c.Lots, c.Users, c.AllowanceCounters, c.Totals, verdict); err != nil {
		return err
	}
	if c.Found > 0 {
		return errLedgerMismatch
	}
	return nil
}

// checkKeptFrom refuses a --kept-from that is not a day, or is after today
// (a day key): from a later day on, no missing counter would be reported,
// today's included, the one spends read.
func checkKeptFrom(day, today string) error {
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return usageError{msg: fmt.Sprintf("--kept-from %q: want a day as YYYY-MM-DD: %v", day, err)}
	}
	if day > today {
		return usageError{msg: fmt.Sprintf("--kept-from %s is after today, %s, whose counters the reset keeps", day, today)}
	}
	return nil
}
