package jobs

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/creditsd/creditsd/entitlements/sqlite"
)

// Scheduler runs enabled jobs on their schedules with robfig/cron.
type Scheduler struct {
	runner *Runner
	jobs   []Job
	cron   *cron.Cron
	cancel context.CancelFunc
	ctx    context.Context
	wg     sync.WaitGroup // the catch-up runs
}

// NewScheduler schedules jobs, run by r.
func NewScheduler(r *Runner, jobs []Job) *Scheduler {
	return &Scheduler{runner: r, jobs: jobs}
}

// Start starts cron, then runs, in the background, each enabled job's most
// recent slot if no run is recorded for it: a slot missed while no process
// was up runs once at the next start (only the latest one, not every one
// missed). Cron starts first so that no slot falls between the two.
//
// Jobs keep running when ctx ends, until Stop: serve stops HTTP first.
func (s *Scheduler) Start(ctx context.Context) {
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.cron = cron.New(cron.WithLocation(time.UTC), cron.WithLogger(cronLogger{s.runner.log()}))
	for _, j := range s.jobs {
		if j.Enabled {
			s.cron.Schedule(j.Schedule, cron.FuncJob(func() { s.fire(j) }))
		}
	}
	s.cron.Start()
	for _, j := range s.jobs {
		if j.Enabled {
			s.wg.Go(func() { s.fire(j) })
		}
	}
}

// Stop cancels running jobs (they end at their next batch), stops cron
// and waits for every run to be recorded.
func (s *Scheduler) Stop() {
	if s.cron == nil {
		return
	}
	s.cancel()
	<-s.cron.Stop().Done()
	s.wg.Wait()
}

// fire runs the job's most recent slot, unless it already ran. Computing
// the slot from the schedule, rather than from the clock, names the planned
// time even when cron fires late or the process was down.
func (s *Scheduler) fire(j Job) {
	slot, ok := Prev(j.Schedule, s.runner.now())
	if !ok {
		return
	}
	rep, err := s.runner.Run(s.ctx, j, slot, false)
	switch {
	case err == nil, errors.Is(err, sqlite.ErrSlotDone):
	case rep.Outcome != "": // it ran, at shutdown too, and its record failed
		s.runner.log().Error("job's run not recorded", "job", j.Name, "slot", slot, "err", err)
	case s.ctx.Err() != nil:
	default:
		s.runner.log().Warn("job not run", "job", j.Name, "slot", slot, "err", err)
	}
}

// cronLogger sends robfig/cron's log lines to slog.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, kv ...any) { l.log.Debug("cron: "+msg, kv...) }

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(kv, "err", err)...)
}
