package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/creditsd/creditsd/entitlements/sqlite"
)

var ledgerCredits = prometheus.NewDesc("creditsd_ledger_credits_total",
	"Credits moved by the ledger, by entry kind (grant, admin_grant, spend, reverse, refund, debt, expire, …) and product.",
	[]string{"kind", "product"}, nil)

var ledgerEntries = prometheus.NewDesc("creditsd_ledger_entries_total",
	"Ledger entries written, by kind and product.", []string{"kind", "product"}, nil)

// ledgerCollector exports the ledger's running totals, which the store's
// writer keeps in the database with each commit's entries: exact for every
// entry the store writes, whichever path wrote it, and cheap to read.
type ledgerCollector struct {
	db  *sqlite.DB
	log *slog.Logger
}

func (c ledgerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- ledgerCredits
	ch <- ledgerEntries
}

func (c ledgerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	totals, err := c.db.Totals(ctx)
	if err != nil {
		c.log.Warn("reading ledger totals for /metrics", "err", err)
		return
	}
	for _, t := range totals {
		ch <- prometheus.MustNewConstMetric(ledgerCredits, prometheus.CounterValue, t.Credits, t.Kind, t.Product)
		ch <- prometheus.MustNewConstMetric(ledgerEntries, prometheus.CounterValue, float64(t.Entries), t.Kind, t.Product)
	}
}

var (
	dbCommits = prometheus.NewDesc("creditsd_db_commits_total",
		"Group commits of the database writer (one fsync each).", nil, nil)
	dbWrites = prometheus.NewDesc("creditsd_db_writes_total",
		"Write transactions committed; divided by creditsd_db_commits_total, the group commit's batch size.", nil, nil)
	dbWriterSeconds = prometheus.NewDesc("creditsd_db_writer_seconds_total",
		"Time the one writer spent waiting for another process's write lock (phase=lock_wait), running write transactions (phase=run) and committing them (phase=commit: WAL writes and fsync).",
		[]string{"phase"}, nil)
)

// writerCollector exports the database writer's counters. All writes go
// through one writer, so its busy time (run + commit per second of wall
// time) is the first thing to read when writes slow down: near 1, they queue.
type writerCollector struct{ db *sqlite.DB }

func (c writerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- dbCommits
	ch <- dbWrites
	ch <- dbWriterSeconds
}

func (c writerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.db.WriterStats()
	ch <- prometheus.MustNewConstMetric(dbCommits, prometheus.CounterValue, float64(s.Commits))
	ch <- prometheus.MustNewConstMetric(dbWrites, prometheus.CounterValue, float64(s.Writes))
	ch <- prometheus.MustNewConstMetric(dbWriterSeconds, prometheus.CounterValue, s.Run.Seconds(), "run")
	ch <- prometheus.MustNewConstMetric(dbWriterSeconds, prometheus.CounterValue, s.Commit.Seconds(), "commit")
	ch <- prometheus.MustNewConstMetric(dbWriterSeconds, prometheus.CounterValue, s.LockWait.Seconds(), "lock_wait")
}

// sharedGatherer lets scrapes that wait for a gathering share the next
// one. A scrape costs ~2.5 ms of CPU and a read of the ledger's totals;
// /metrics is open to anyone, and a flood of scrapes slowed reads eightfold
// (an audit). Gatherings run one at a time, and a scrape is answered from
// one that began after it arrived, so no answer is older than its request:
// a flood costs at most one gathering at a time, a single scrape nothing.
type sharedGatherer struct {
	g   prometheus.Gatherer
	now func() time.Time

	mu    sync.Mutex
	begun time.Time // when the last gathering began
	mfs   []*dto.MetricFamily
	err   error
}

func (s *sharedGatherer) Gather() ([]*dto.MetricFamily, error) {
	asked := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.begun.IsZero() && !s.begun.Before(asked) {
		return s.mfs, s.err // begun while this scrape waited: as fresh as a gathering of its own
	}
	s.begun = s.now()
	s.mfs, s.err = s.g.Gather()
	return s.mfs, s.err
}

var (
	jobLastRun = prometheus.NewDesc("creditsd_job_last_run_timestamp_seconds",
		"When each job's newest run ended (started, while it runs), by its outcome: ok, failed, skipped, panicked, interrupted, abandoned or running.",
		[]string{"job", "outcome"}, nil)
	jobLastSuccess = prometheus.NewDesc("creditsd_job_last_success_timestamp_seconds",
		"When each job's newest run that ended ok finished; absent until one has.", []string{"job"}, nil)
)

// jobsCollector exports when each job last ran, and last succeeded, from
// the record of runs in the database, so that runs of any process count
// (a jobs run beside serve too) and a restart loses nothing: alert on
// time() - creditsd_job_last_success_timestamp_seconds{job="reconcile"}.
type jobsCollector struct {
	db   *sqlite.DB
	log  *slog.Logger
	jobs []string
}

func (c jobsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jobLastRun
	ch <- jobLastSuccess
}

func (c jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, job := range c.jobs {
		runs, err := c.db.JobRuns(ctx, job, 1)
		if err != nil {
			c.log.Warn("reading job runs for /metrics", "job", job, "err", err)
			return
		}
		if len(runs) == 1 {
			at := runs[0].StartedAt
			if runs[0].FinishedAt != nil {
				at = *runs[0].FinishedAt
			}
			ch <- prometheus.MustNewConstMetric(jobLastRun, prometheus.GaugeValue, seconds(at), job, runs[0].Outcome)
		}
		at, ok, err := c.db.LastJobSuccess(ctx, job)
		if err != nil {
			c.log.Warn("reading job runs for /metrics", "job", job, "err", err)
			return
		}
		if ok {
			ch <- prometheus.MustNewConstMetric(jobLastSuccess, prometheus.GaugeValue, seconds(at), job)
		}
	}
}

func seconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }
