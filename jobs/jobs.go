// Package jobs runs creditsd's background work: plain functions of
// (ctx, now), each run recorded in the database and guarded by a lease so
// that a job never runs twice at once and a scheduled slot runs once, even
// when several processes share the database or one restarts. The cron
// wiring is thin: a scheduled fire and the catch-up at start are the same
// call, "run the most recent slot if nobody has".
package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The jobs creditsd knows.
const (
	ExpirySweepName        = "expiry-sweep"
	DailyResetName         = "daily-reset"
	ReconcileName          = "reconcile"
	ConsumptionAnswersName = "consumption-answers"
)

// Func is a job: it does its work as of now and says what it did. It
// returns at the next safe point once ctx is done (shutdown, or its lease
// lost), with ctx's error.
type Func func(ctx context.Context, now time.Time) (Result, error)

// Result counts what a run did, e.g. {"lots": 3, "credits": 30}; it is
// stored with the run as JSON. A job may also keep there a mark for its
// next runs to read back (sqlite.DB.LatestJobCount), such as how far
// reconcile read each environment's history.
type Result map[string]int64

// Schedule is when a job runs; robfig/cron's schedules satisfy it.
type Schedule interface {
	// Next is the first activation strictly after t.
	Next(t time.Time) time.Time
}

// Job is a named Func and its schedule.
type Job struct {
	Name     string
	Schedule Schedule
	Enabled  bool // a disabled job is not scheduled, but still runs by hand
	Run      Func
}

// Outcome is how a run ended.
type Outcome string

// The outcomes of a run. Interrupted runs (shutdown, lost lease) leave
// their slot free, so the next start runs it again.
const (
	OK          Outcome = "ok"
	Failed      Outcome = "failed"
	Skipped     Outcome = "skipped"
	Panicked    Outcome = "panicked"
	Interrupted Outcome = "interrupted"
)

// SkipError is a job declining to run, and why.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "skipped: " + e.Reason }

// Skip is the error a job returns when it cannot run for a reason that is
// not a failure, such as missing credentials.
func Skip(reason string) error { return &SkipError{Reason: reason} }

// NotConfigured is the job for a feature whose configuration is missing:
// every run skips, saying so.
func NotConfigured(what string) Func {
	return func(context.Context, time.Time) (Result, error) {
		return nil, Skip(what + " is not configured")
	}
}

// PanicError is a recovered panic of a job.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// outcome classifies a run's error; ctx is the run's own context.
func outcome(ctx context.Context, err error) Outcome {
	var skip *SkipError
	var panicked *PanicError
	switch {
	case err == nil:
		return OK
	case errors.As(err, &skip):
		return Skipped
	case errors.As(err, &panicked):
		return Panicked
	case ctx.Err() != nil:
		return Interrupted
	}
	return Failed
}
