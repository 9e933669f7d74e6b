package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
		"Time the one writer spent running write transactions (phase=run) and committing them (phase=commit: WAL writes and fsync).",
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
}
