package jobs

import (
	"context"
	"time"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/entitlements/sqlite"
)

// DefaultKeepDays is how many past days of allowance counters the daily
// reset keeps.
const DefaultKeepDays = 35

// DefaultKeepRunsDays is how many days of job runs the daily reset keeps.
const DefaultKeepRunsDays = 90

// pruneBatch is how many allowance counters, or job runs, one write
// transaction deletes.
const pruneBatch = 1000

// resummarise is how many of the latest days every run summarises again,
// so that a spend committed a moment after midnight is still counted.
const resummarise = 2

// AllowanceReporter summarises and prunes allowance use, and prunes the
// record of job runs; *sqlite.DB is one.
type AllowanceReporter interface {
	SummarisedAllowanceDays(ctx context.Context, from, to string) (map[string]bool, error)
	SummariseAllowanceDay(ctx context.Context, day string) ([]sqlite.AllowanceUse, error)
	PruneAllowanceUsage(ctx context.Context, before string, limit int) (int64, error)
	PruneJobRuns(ctx context.Context, before time.Time, batch int) (int64, error)
}

// DailyReset runs at the allowance day boundary. It summarises the days
// that ended (the last two again, and any earlier one of the last keepDays
// not summarised yet, e.g. while the service was down) into allowance_daily,
// then deletes allowance counters older than keepDays, and job runs older
// than keepRunsDays that no run reads back. Allowances do not depend on
// it: a day's counter is keyed by its day, nothing resets.
func DailyReset(store AllowanceReporter, allowance entitlements.AllowancePolicy, keepDays, keepRunsDays int) Func {
	return func(ctx context.Context, now time.Time) (Result, error) {
		res, err := summarise(ctx, store, allowance.Day(now).KeyBefore, keepDays)
		if err != nil {
			return res, err
		}
		n, err := store.PruneJobRuns(ctx, now.AddDate(0, 0, -keepRunsDays), pruneBatch)
		res["runs_pruned"] = n
		return res, err
	}
}

// summarise is the daily reset's work on the allowance: the days that
// ended, summarised, and the old counters pruned.
func summarise(ctx context.Context, store AllowanceReporter, day func(back int) string, keepDays int) (Result, error) {
	done, err := store.SummarisedAllowanceDays(ctx, day(keepDays), day(1))
	if err != nil {
		return nil, err
	}
	res := Result{"days": 0, "pruned": 0}
	for back := keepDays; back >= 1; back-- {
		if done[day(back)] && back > resummarise {
			continue
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if _, err := store.SummariseAllowanceDay(ctx, day(back)); err != nil {
			return res, err
		}
		res["days"]++
	}
	for {
		n, err := store.PruneAllowanceUsage(ctx, day(keepDays), pruneBatch)
		res["pruned"] += n
		if err != nil || n < pruneBatch {
			return res, err
		}
	}
}
