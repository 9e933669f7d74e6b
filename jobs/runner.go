package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/creditsd/creditsd/entitlements/sqlite"
)

// Store records runs and keeps the leases; *sqlite.DB is one.
type Store interface {
	ClaimJobRun(ctx context.Context, c sqlite.JobClaim) (int64, error)
	RenewJobLease(ctx context.Context, job, holder string, ttl time.Duration) error
	FinishJobRun(ctx context.Context, f sqlite.JobFinish) error
}

// Defaults of the Runner's durations. Wait is longer than a lease, so that
// a lease left by a process that died expires before a waiting run gives up.
const (
	DefaultLeaseTTL = 30 * time.Second
	DefaultWait     = 45 * time.Second
	pollEvery       = 200 * time.Millisecond
)

// Runner runs one job at a time under its lease and records the run.
type Runner struct {
	Store    Store
	Holder   string // names this process in leases, e.g. host:pid
	Log      *slog.Logger
	Now      func() time.Time
	LeaseTTL time.Duration // renewed every third of it while the run lasts
	Wait     time.Duration // how long a run waits for a lease another run holds
}

// Report is how a run went.
type Report struct {
	Job     string
	Slot    time.Time
	Manual  bool
	Outcome Outcome
	Result  Result
	Err     error // the job's error, panic or reason for skipping
}

// BusyError means the job's lease stayed held for all of Runner.Wait.
type BusyError struct {
	Held   *sqlite.LeaseHeldError
	Waited time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%v; gave up after waiting %s, try again when it has finished", e.Held, e.Waited)
}

func (e *BusyError) Unwrap() error { return e.Held }

// RunNow runs j once, now, outside its schedule: its own start is its slot,
// marked manual, so it never uses up a scheduled slot. It still takes the
// job's lease, waiting up to Runner.Wait for a run in progress to end.
func (r *Runner) RunNow(ctx context.Context, j Job) (Report, error) {
	return r.Run(ctx, j, r.now(), true)
}

// Run runs j for slot unless that scheduled slot already ran (then it
// answers sqlite.ErrSlotDone). The job gets a context that ends when ctx
// does or when the lease is lost. A panic is recovered and recorded. The
// error is about running at all, or recording the run; how the job went is
// in the Report.
func (r *Runner) Run(ctx context.Context, j Job, slot time.Time, manual bool) (Report, error) {
	rep := Report{Job: j.Name, Slot: slot.Truncate(time.Millisecond), Manual: manual}
	holder := r.Holder + "/" + randomHex()
	id, err := r.claim(ctx, sqlite.JobClaim{Job: j.Name, Slot: rep.Slot, Manual: manual, Holder: holder, TTL: r.ttl()})
	if err != nil {
		return rep, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopRenewing := r.keepLease(runCtx, cancel, j.Name, holder)
	started := time.Now()
	rep.Result, rep.Err = call(runCtx, j.Run, r.now())
	stopRenewing()
	rep.Outcome = outcome(runCtx, rep.Err)
	r.logRun(rep, time.Since(started))
	f := sqlite.JobFinish{RunID: id, Job: j.Name, Holder: holder, Outcome: string(rep.Outcome), Counts: rep.Result}
	if rep.Err != nil {
		f.Error = rep.Err.Error()
	}
	// Recorded even when ctx is done: shutdown must not lose the record.
	// A run whose record failed stays `running` until its lease lapses,
	// and reconcile's mark does not move: the caller must hear of it.
	if err := r.Store.FinishJobRun(context.WithoutCancel(ctx), f); errors.Is(err, sqlite.ErrLeaseLost) {
		return rep, fmt.Errorf("the run ended %s after its lease lapsed and another run took the job over; "+
			"it is recorded as abandoned: %w", rep.Outcome, err)
	} else if err != nil {
		return rep, fmt.Errorf("the run ended %s, but recording it failed: %w", rep.Outcome, err)
	}
	return rep, nil
}

// claim takes the lease and records the run, polling while another run
// holds the lease, for at most Wait.
func (r *Runner) claim(ctx context.Context, c sqlite.JobClaim) (int64, error) {
	start := time.Now()
	for told := false; ; told = true {
		id, err := r.Store.ClaimJobRun(ctx, c)
		var held *sqlite.LeaseHeldError
		if !errors.As(err, &held) {
			return id, err
		}
		if !told && c.Manual { // jobs run: say at once why nothing happens yet
			r.log().Info("waiting for the job's run in progress", "job", c.Job, "held_by", held.Holder,
				"until", held.Until, "wait_at_most", r.wait().String())
		}
		if waited := time.Since(start); waited >= r.wait() {
			return 0, &BusyError{Held: held, Waited: waited.Round(time.Millisecond)}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// keepLease renews the lease until stopped; if the lease is lost, it
// cancels the run, which then stops at its next batch.
func (r *Runner) keepLease(ctx context.Context, cancel context.CancelFunc, job, holder string) (stop func()) {
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		tick := time.NewTicker(r.ttl() / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			err := r.Store.RenewJobLease(ctx, job, holder, r.ttl())
			if errors.Is(err, sqlite.ErrLeaseLost) {
				r.log().Error("job lost its lease; stopping it", "job", job)
				cancel()
				return
			}
			if err != nil && ctx.Err() == nil {
				r.log().Warn("renewing the job's lease", "job", job, "err", err)
			}
		}
	}()
	return func() { close(done); <-exited }
}

// call runs f, turning a panic into a *PanicError.
func call(ctx context.Context, f Func, now time.Time) (res Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return f(ctx, now)
}

func (r *Runner) logRun(rep Report, took time.Duration) {
	attrs := []any{"job", rep.Job, "slot", rep.Slot, "manual", rep.Manual, "outcome", rep.Outcome,
		"counts", rep.Result, "took", took.Round(time.Millisecond).String()}
	var skip *SkipError
	var p *PanicError
	switch {
	case errors.As(rep.Err, &skip):
		r.log().Info(skip.Error(), attrs...)
	case errors.As(rep.Err, &p):
		r.log().Error("job panicked", append(attrs, "panic", fmt.Sprint(p.Value), "stack", string(p.Stack))...)
	case rep.Outcome == Interrupted:
		// A shutdown (every deploy during a run) or a lost lease: the slot
		// stays free and runs again, so it is not a failure to page for.
		r.log().Warn("job interrupted", append(attrs, "err", rep.Err)...)
	case rep.Err != nil:
		r.log().Error("job failed", append(attrs, "err", rep.Err)...)
	default:
		r.log().Info("job finished", attrs...)
	}
}

func (r *Runner) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

func (r *Runner) ttl() time.Duration {
	if r.LeaseTTL <= 0 {
		return DefaultLeaseTTL
	}
	return r.LeaseTTL
}

func (r *Runner) wait() time.Duration {
	if r.Wait <= 0 {
		return DefaultWait
	}
	return r.Wait
}

func (r *Runner) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

func randomHex() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
