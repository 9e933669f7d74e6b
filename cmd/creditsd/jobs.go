package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/creditsd/creditsd/jobs"
)

// jobNames are the jobs `creditsd jobs run NAME` knows.
var jobNames = []string{jobs.ExpirySweepName, jobs.DailyResetName, jobs.ReconcileName, jobs.ConsumptionAnswersName}

// jobsCommand is `creditsd jobs run NAME`: run one job now, beside a live
// server if there is one. It takes the job's lease: if a run is in
// progress it waits for it (up to jobs.DefaultWait), then fails saying so.
// A disabled job runs too: disabling only takes it off the schedule. A job
// that skips (missing credentials) exits 0 and says why.
func jobsCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	fs, configPath := newFlagSet("jobs", stderr)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 2 || rest[0] != "run" {
		return usageError{msg: fmt.Sprintf("usage: creditsd jobs run NAME [--config FILE]; NAME is one of %s", strings.Join(jobNames, ", "))}
	}
	name := rest[1]
	if !slices.Contains(jobNames, name) {
		return usageError{msg: fmt.Sprintf("unknown job %q; want one of %s", name, strings.Join(jobNames, ", "))}
	}
	a, err := openApp(ctx, *configPath, getenv, stderr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, a.close()) }()
	set, err := a.jobSet(true)
	if err != nil {
		return err
	}
	j, err := pickJob(set, name)
	if err != nil {
		return err
	}
	rep, err := a.runner().RunNow(ctx, j)
	if err != nil {
		err = fmt.Errorf("jobs run %s: %w", name, err)
	}
	if rep.Outcome == "" { // it never ran
		return err
	}
	return errors.Join(report(stdout, rep), err) // how it went, then what became of its record
}

// pickJob is the job of set named name. Job names live in three lists,
// jobNames, the configured jobs (config_jobs.go) and their work (jobSet),
// and TestJobListsAgree keeps them in step; should they drift, this says
// so instead of indexing out of range or running a nil Func.
func pickJob(set []jobs.Job, name string) (jobs.Job, error) {
	i := slices.IndexFunc(set, func(j jobs.Job) bool { return j.Name == name })
	if i < 0 || set[i].Run == nil {
		return jobs.Job{}, fmt.Errorf("job %q has no configuration or no work in this binary: its job lists disagree", name)
	}
	return set[i], nil
}

// report prints a manual run's outcome, e.g. "expiry-sweep: ok
// {"credits":30,"lots":3}", and fails unless it was ok or skipped.
func report(w io.Writer, rep jobs.Report) error {
	line := fmt.Sprintf("%s: %s", rep.Job, rep.Outcome)
	if len(rep.Result) > 0 {
		counts, _ := json.Marshal(rep.Result) // a map of int64 always encodes
		line += " " + string(counts)
	}
	var skip *jobs.SkipError
	if errors.As(rep.Err, &skip) {
		line += ": " + skip.Reason
	} else if rep.Err != nil {
		line += ": " + rep.Err.Error()
	}
	if _, err := fmt.Fprintln(w, line); err != nil {
		return err
	}
	if rep.Outcome != jobs.OK && rep.Outcome != jobs.Skipped {
		return fmt.Errorf("job %s %s: %w", rep.Job, rep.Outcome, rep.Err)
	}
	return nil
}
