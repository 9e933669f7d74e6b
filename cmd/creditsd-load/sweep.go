package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// sweepResult is the expiry sweep's wall time and what the spends running
// beside it saw.
type sweepResult struct {
	Seconds      float64 `json:"seconds"`
	Output       string  `json:"output"` // the job's own report line
	ExpiredLots  int     `json:"expired_lots_seeded"`
	SpendsBefore Summary `json:"spends_before"`
	SpendsDuring Summary `json:"spends_during"`
}

// sweep runs `creditsd jobs run expiry-sweep` beside a live server while
// spends keep coming, and reports the sweep's wall time and the spends'
// latency before and during it.
func (e *env) sweep(ctx context.Context) (scenarioResult, error) {
	if e.srv == nil {
		return scenarioResult{Note: "skipped: the sweep needs the server's config and binary; run without --target"}, nil
	}
	conc, _, _ := e.opts.phase("sweep")
	token, err := mint(e.secret, "creditsd-load", "credits:spend", 24*time.Hour)
	if err != nil {
		return scenarioResult{}, err
	}
	e.settle("sweep")
	spendCtx, stopSpends := context.WithCancel(ctx)
	defer stopSpends()
	l := load{name: "sweep spends", concurrency: conc, duration: e.opts.sweepWarmup + e.opts.sweepTimeout + 5*time.Second,
		progress: e.stderr, rss: e.rss}
	start, before := time.Now(), readCPU(e.pid())
	type ran struct {
		samples []sample
		elapsed time.Duration
	}
	done := make(chan ran, 1)
	go func() {
		s, el := l.run(spendCtx, e.spendRequest(token, e.runID+"-sweep"))
		done <- ran{s, el}
	}()
	if err := sleep(ctx, e.opts.sweepWarmup); err != nil {
		return scenarioResult{}, err
	}
	from := time.Since(start)
	out, jobErr := e.runSweepJob(ctx)
	to := time.Since(start)
	_ = sleep(ctx, time.Second) // a second after, to see the writer recover
	stopSpends()
	r := <-done
	all := summarize(r.samples, r.elapsed)
	all.ServerCores, all.LoadCores, all.OtherCores = before.cores(readCPU(e.pid()), r.elapsed)
	res := scenarioResult{Concurrency: conc, Runs: []Summary{all}}
	if jobErr != nil {
		if strings.Contains(out, "unknown job") || strings.Contains(out, "not implemented") {
			res.Note = "skipped: this creditsd has no expiry-sweep job: " + out
			return res, nil
		}
		return res, fmt.Errorf("expiry sweep: %w: %s", jobErr, out)
	}
	res.Sweep = &sweepResult{Seconds: (to - from).Seconds(), Output: out, ExpiredLots: e.opts.expired,
		SpendsBefore: summarize(window(r.samples, 0, from), from),
		SpendsDuring: summarize(window(r.samples, from, to), to-from)}
	fmt.Fprintf(e.stderr, "[sweep] %.2fs: %s; spends during it: %.0f/s, p99 %.2f ms\n",
		res.Sweep.Seconds, out, res.Sweep.SpendsDuring.PerSecond, res.Sweep.SpendsDuring.P99ms)
	return res, nil
}

// runSweepJob runs the job as an operator would, a second process on the
// live server's database and config, and returns what it printed.
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
