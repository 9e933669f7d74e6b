package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/entitlements/sqlite"
)

// runJob runs `creditsd jobs run args...` to the end: stdout, stderr and
// the exit code.
func runJob(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return cli(t, "", nil, append([]string{"jobs", "run"}, args...)...)
}

// withJobs writes a copy of w's config with a jobs section added.
func (w *world) withJobs(name, jobs string) string {
	base, err := os.ReadFile(w.config)
	require.NoError(w.t, err)
	path := filepath.Join(w.dir, name)
	require.NoError(w.t, os.WriteFile(path, append(base, []byte("jobs:\n"+jobs)...), 0o600))
	return path
}

// grantExpired gives user an admin lot that expired an hour ago, straight
// into the database while no server runs: the API refuses such a grant.
func (w *world) grantExpired(user string, credits int64) string {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(w.dir, "creditsd.db"))
	require.NoError(w.t, err)
	defer db.Close()
	exp := time.Now().Add(-time.Hour)
	db.Now = func() time.Time { return exp.Add(-time.Hour) } // a new grant must expire in the future
	lot, _, _, err := db.AdminGrant(ctx, entitlements.GrantRequest{UserID: user, Token: w.tokens.Token(user),
		Key: "expired-goodwill", Hash: "h", Credits: credits, ExpiresAt: &exp, Reason: "goodwill", Actor: "admin:test"})
	require.NoError(w.t, err)
	return lot.LotID
}

func TestJobsRunEndToEnd(t *testing.T) {
	w := newWorld(t)
	// The live server must not sweep the lot itself: its sweep is off.
	config := w.withJobs("no-sweep.yaml", "  expiry_sweep: {enabled: false}\n")
	w.proc.stop(t)
	lotID := w.grantExpired("erin", 10)
	w.proc = start(t, "serve", "--config", config)
	require.Equal(t, int64(0), w.entitlement("erin").Credits.Balance, "the balance ignores an expired lot already")

	stdout, stderr, code := runJob(t, "expiry-sweep", "--config", config)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, `expiry-sweep: ok {"batches":1,"credits":10,"lots":1}`+"\n", stdout)

	a := w.do("GET", "/v1/users/erin/ledger", w.token("ops", "credits:admin", time.Minute), nil)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	var ledger struct{ Entries []entitlements.Entry }
	require.NoError(t, json.Unmarshal([]byte(a.raw), &ledger))
	require.NotEmpty(t, ledger.Entries)
	e := ledger.Entries[0]
	require.NotNil(t, e.LotID)
	require.Equal(t, []any{"expire", int64(-10), lotID, "expired", "job:expiry-sweep"},
		[]any{e.Kind, e.Credits, *e.LotID, e.Reason, e.Actor})

	m := w.do("GET", "/metrics", "", nil)
	require.Contains(t, m.raw, `creditsd_ledger_credits_total{kind="expire",product=""} 10`, "expired credits are counted")

	stdout, _, code = runJob(t, "--config", config, "expiry-sweep")
	require.Equal(t, 0, code)
	require.Contains(t, stdout, `"lots":0`, "a second sweep changes nothing")

	stdout, _, code = runJob(t, "reconcile", "--config", config)
	require.Equal(t, 0, code, "a job without its credentials skips, which is not a failure")
	require.Equal(t, "reconcile: skipped: app_store_api is not configured\n", stdout)

	// The server's /metrics reads the record of runs: the sweeps another
	// process ran count, and a skipped run is no success.
	m = w.do("GET", "/metrics", "", nil)
	require.Regexp(t, `\ncreditsd_job_last_success_timestamp_seconds\{job="expiry-sweep"\} \d\.\d+e\+09\n`, m.raw)
	require.Regexp(t, `\ncreditsd_job_last_run_timestamp_seconds\{job="expiry-sweep",outcome="ok"\} \d\.\d+e\+09\n`, m.raw)
	require.Regexp(t, `\ncreditsd_job_last_run_timestamp_seconds\{job="reconcile",outcome="skipped"\} \d\.\d+e\+09\n`, m.raw)
	require.NotContains(t, m.raw, `creditsd_job_last_success_timestamp_seconds{job="reconcile"}`)

	_, stderr, code = runJob(t, "nope", "--config", config)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `unknown job "nope"`)
}

func TestServeRecordsSkippedJobs(t *testing.T) {
	w := newWorld(t)
	// At its first start every job's latest slot is due: reconcile skips.
	require.Eventually(t, func() bool {
		return strings.Contains(w.proc.log(), "skipped: app_store_api is not configured")
	}, 10*time.Second, 50*time.Millisecond, w.proc.log())
	w.proc.stop(t)
	db, err := sqlite.Open(context.Background(), filepath.Join(w.dir, "creditsd.db"))
	require.NoError(t, err)
	defer db.Close()
	runs, err := db.JobRuns(context.Background(), "consumption-answers", 10)
	require.NoError(t, err)
	require.NotEmpty(t, runs)
	require.Equal(t, "skipped", runs[0].Outcome)
}

func TestJobsConfigErrors(t *testing.T) {
	w := newWorld(t)
	for jobs, key := range map[string]string{
		"  expiry_sweep: {schedule: '61 * * * *'}\n":        "jobs.expiry_sweep.schedule",
		"  reconcile: {schedule: '@every 5m'}\n":            "jobs.reconcile.schedule",
		"  timezone: Mars/Olympus\n":                        "jobs.timezone",
		"  daily_reset: {keep_days: 0}\n":                   "jobs.daily_reset.keep_days",
		"  daily_reset: {keep_runs_days: 3661}\n":           "jobs.daily_reset.keep_runs_days",
		"  daily_reset: {schedule: '0 0 * *'}\n":            "jobs.daily_reset.schedule",
		"  expiry_sweep: {schedule: '*/5 * * * *', x: 1}\n": "jobs.expiry_sweep",
	} {
		config := w.withJobs("bad.yaml", jobs)
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), []string{"jobs", "run", "expiry-sweep", "--config", config},
			func(string) string { return "" }, &stdout, &stderr)
		require.ErrorContains(t, err, key, jobs)
		require.Equal(t, 1, exitCode(err))
	}
}

// Apple refuses a history request that starts more than 180 days back
// (Production) or 30 (Sandbox), measured when it arrives: the window stops
// an hour short of 180 days, and says what Sandbox gets.
func TestReconcileWindowLimits(t *testing.T) {
	w := newWorld(t)
	window := func(v string) (time.Duration, error) {
		cfg, err := LoadConfig(w.withJobs("window.yaml", "  reconcile: {window: "+v+"}\n"), nil)
		if err != nil {
			return 0, err
		}
		js, err := cfg.Jobs.resolve(time.UTC)
		return js.reconcile.Window, err
	}
	got, err := window("4319h")
	require.NoError(t, err)
	require.Equal(t, 4319*time.Hour, got)
	got, err = window("1h")
	require.NoError(t, err)
	require.Equal(t, time.Hour, got)
	for _, v := range []string{"4320h", "59m"} {
		_, err = window(v)
		require.ErrorContains(t, err, "jobs.reconcile.window", v)
		require.ErrorContains(t, err, "from 1h to 4319h", v)
		require.ErrorContains(t, err, "719h", "what Sandbox gets is said")
	}
}

func TestJobsSchedules(t *testing.T) {
	w := newWorld(t)
	resolve := func(extra string) jobsSettings {
		cfg, err := LoadConfig(w.withJobs("zones.yaml", extra), nil)
		require.NoError(t, err)
		s, err := cfg.Resolve()
		require.NoError(t, err)
		js, err := cfg.Jobs.resolve(s.Allowance.Location)
		require.NoError(t, err)
		return js
	}
	next := func(js jobsSettings, name string, from time.Time) time.Time {
		for _, p := range js.plans {
			if p.name == name {
				return p.schedule.Next(from).UTC()
			}
		}
		t.Fatalf("no job %s", name)
		return time.Time{}
	}
	noon := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

	js := resolve("  reconcile: {enabled: false}\n")
	require.Equal(t, time.Date(2026, 11, 26, 3, 15, 0, 0, time.UTC), next(js, "expiry-sweep", noon), "nightly at 03:15")
	require.Equal(t, time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), next(js, "daily-reset", noon))
	require.Equal(t, time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC), next(js, "reconcile", noon), "hourly")
	require.Equal(t, time.Date(2026, 11, 25, 12, 5, 0, 0, time.UTC), next(js, "consumption-answers", noon))
	require.Equal(t, []bool{true, true, false, true},
		[]bool{js.plans[0].enabled, js.plans[1].enabled, js.plans[2].enabled, js.plans[3].enabled})
	require.Equal(t, 35, js.keepDays)
	require.Equal(t, 90, js.keepRunsDays)

	// daily-reset follows the allowance's day boundary; the others jobs.timezone.
	js = resolve("  timezone: America/New_York\n  daily_reset: {keep_days: 7, keep_runs_days: 30}\nallowance:\n  timezone: Europe/Paris\n")
	require.Equal(t, time.Date(2026, 11, 25, 23, 0, 0, 0, time.UTC), next(js, "daily-reset", noon), "midnight in Paris")
	require.Equal(t, time.Date(2026, 11, 26, 8, 15, 0, 0, time.UTC), next(js, "expiry-sweep", noon), "03:15 in New York")
	require.Equal(t, 7, js.keepDays)
	require.Equal(t, 30, js.keepRunsDays)
}
