package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/creditsd/creditsd/jobs"
)

// sweepResult is the expiry sweep's wall time and what the requests
// running beside it saw: spends, or with --sweep-beside read, reads.
type sweepResult struct {
	// In says who ran the sweep: "server" (the server's own scheduler, its
	// batches queued on the writer with any writes, as in production) or
	// "process" (`creditsd jobs run expiry-sweep` beside the server).
	In            string      `json:"in"`
	Seconds       float64     `json:"seconds"`        // server: as run_seconds; process: the command's wall time
	RunSeconds    float64     `json:"run_seconds"`    // the run as job_runs recorded it, claim to finish
	WarmupSeconds float64     `json:"warmup_seconds"` // requests beside it before the sweep started
	Slot          string      `json:"slot,omitempty"` // server: the scheduled slot it ran for
	Output        string      `json:"output"`         // the job's report line, as `jobs run` prints it
	ExpiredLots   int         `json:"expired_lots_seeded"`
	Swept         jobs.Result `json:"swept"`                   // the run's own counts: lots, credits, batches
	Check         sweepCheck  `json:"check"`                   // the database after it, checked against the seed
	Beside        string      `json:"beside"`                  // what the clients beside it sent: spend or read
	SpendsBefore  *Summary    `json:"spends_before,omitempty"` // Beside spend
	SpendsDuring  *Summary    `json:"spends_during,omitempty"`
	ReadsBefore   *Summary    `json:"reads_before,omitempty"` // Beside read
	ReadsDuring   *Summary    `json:"reads_during,omitempty"`
}

// beside is what the requests beside the sweep saw during it and before
// it, and what they were, as the report names them.
func (sw *sweepResult) beside() (during, before Summary, name string) {
	pair := [2]*Summary{sw.SpendsDuring, sw.SpendsBefore}
	name = "spends"
	if sw.Beside == "read" {
		pair, name = [2]*Summary{sw.ReadsDuring, sw.ReadsBefore}, "reads"
	}
	if pair[0] != nil && pair[1] != nil {
		during, before = *pair[0], *pair[1]
	}
	return during, before, name
}

// sweepRun is one sweep as the scenario saw it: when it ran, in time since
// the requests beside it started, and its job_runs record.
type sweepRun struct {
	from, to time.Duration
	run      jobRun
	output   string
}

// errNoSweepJob means the binary measured predates the expiry sweep.
var errNoSweepJob = errors.New("this creditsd has no expiry-sweep job")

// sweep runs the expiry sweep beside a live server while spends (or, with
// --sweep-beside read, reads) keep coming, and reports the sweep's wall
// time and their latency before and during it. With --sweep-in server the
// server is restarted with the sweep on its schedule; with process,
// `creditsd jobs run` runs it.
func (e *env) sweep(ctx context.Context) (scenarioResult, error) {
	if e.srv == nil {
		return scenarioResult{Note: "skipped: the sweep needs the server's config and binary; run without --target"}, nil
	}
	conc, _, _ := e.opts.phase("sweep")
	beside, err := e.besideSweep()
	if err != nil {
		return scenarioResult{}, err
	}
	e.settle("sweep")
	lead, await := e.opts.sweepWarmup, e.sweepByProcess
	if e.opts.sweepIn == sweepInServer {
		slot, err := e.scheduleSweep(ctx)
		if err != nil {
			return scenarioResult{}, err
		}
		lead, await = time.Until(slot), func(ctx context.Context, start time.Time) (sweepRun, error) {
			return e.awaitScheduledSweep(ctx, start, slot)
		}
	}
	besideCtx, stopBeside := context.WithCancel(ctx)
	defer stopBeside()
	l := load{name: "sweep " + e.opts.sweepBeside + "s", concurrency: conc, duration: lead + e.opts.sweepTimeout + 5*time.Second,
		progress: e.stderr, rss: e.rss}
	start, before := time.Now(), readCPU(e.pid())
	type ran struct {
		samples []sample
		elapsed time.Duration
	}
	done := make(chan ran, 1)
	go func() {
		s, el := l.run(besideCtx, beside)
		done <- ran{s, el}
	}()
	sw, sweepErr := await(ctx, start)
	if sweepErr == nil {
		_ = sleep(ctx, time.Second) // a second after, to see the writer recover
	}
	stopBeside()
	r := <-done
	all := summarize(r.samples, r.elapsed)
	all.setCores(before.cores(readCPU(e.pid()), r.elapsed))
	res := scenarioResult{Concurrency: conc, Runs: []Summary{all}}
	if errors.Is(sweepErr, errNoSweepJob) {
		res.Note = "skipped: " + sw.output
		return res, nil
	}
	if sweepErr != nil {
		return res, fmt.Errorf("expiry sweep (in %s): %w", e.opts.sweepIn, sweepErr)
	}
	res.Sweep = e.sweepResult(sw, r.samples)
	if res.Sweep.Check, err = checkSweep(ctx, e.files.Database, e.seededAt); err != nil {
		return res, fmt.Errorf("checking the sweep: %w", err)
	}
	during, _, what := res.Sweep.beside()
	fmt.Fprintf(e.stderr, "[sweep] in %s: %.2fs: %s; %s during it: %.0f/s, p99 %.2f ms\n", res.Sweep.In,
		res.Sweep.Seconds, res.Sweep.Output, what, during.PerSecond, during.P99ms)
	return res, res.Sweep.Check.verify(sw.run.Counts, e.opts.expired, lotCredits)
}

// besideSweep is the request the clients beside the sweep send.
func (e *env) besideSweep() (request, error) {
	if e.opts.sweepBeside == "read" {
		tokens, err := e.mintReadTokens()
		if err != nil {
			return nil, err
		}
		return e.readRequest(tokens, 0), nil
	}
	token, err := mint(e.secret, "creditsd-load", "credits:spend", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	return e.spendRequest(token, e.runID+"-sweep"), nil
}

func (e *env) sweepResult(sw sweepRun, samples []sample) *sweepResult {
	res := &sweepResult{In: e.opts.sweepIn, Seconds: (sw.to - sw.from).Seconds(),
		RunSeconds: sw.run.Finished.Sub(sw.run.Started).Seconds(), WarmupSeconds: sw.from.Seconds(),
		Output: sw.output, ExpiredLots: e.opts.expired, Swept: sw.run.Counts, Beside: e.opts.sweepBeside}
	before := summarize(window(samples, 0, sw.from), sw.from)
	during := summarize(window(samples, sw.from, sw.to), sw.to-sw.from)
	if res.Beside == "read" {
		res.ReadsBefore, res.ReadsDuring = &before, &during
	} else {
		res.SpendsBefore, res.SpendsDuring = &before, &during
	}
	if !sw.run.Manual {
		res.Slot = sw.run.Slot.Format(time.RFC3339)
	}
	return res
}

// sweepByProcess runs the job as an operator would, a second process on
// the live server's database and config, after the warm-up.
func (e *env) sweepByProcess(ctx context.Context, start time.Time) (sweepRun, error) {
	if err := sleep(ctx, e.opts.sweepWarmup); err != nil {
		return sweepRun{}, err
	}
	from := time.Since(start)
	out, err := e.runSweepJob(ctx)
	to := time.Since(start)
	if err != nil {
		if strings.Contains(out, "unknown job") || strings.Contains(out, "not implemented") {
			return sweepRun{output: out}, fmt.Errorf("%w: %s", errNoSweepJob, out)
		}
		return sweepRun{output: out}, fmt.Errorf("%w: %s", err, out)
	}
	run, err := lastManualRun(ctx, e.files.Database)
	return sweepRun{from: from, to: to, run: run, output: out}, err
}

// runSweepJob runs `creditsd jobs run expiry-sweep` and returns what it
// printed.
func (e *env) runSweepJob(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opts.sweepTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.bin, "jobs", "run", "expiry-sweep", "--config", e.files.Config)
	cmd.Env = append(cmd.Environ(), "CREDITSD_CONFIG=")
	var out bytes.Buffer
	cmd.Stdout = &out
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	err := cmd.Run()
	text := strings.TrimSpace(out.String())
	if err != nil {
		text = strings.TrimSpace(text + "\n" + lastLines(errOut.String(), 5))
	}
	return text, err
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
