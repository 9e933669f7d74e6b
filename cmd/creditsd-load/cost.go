package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Throughput here moves ±15 % between server starts, more than most
// changes worth measuring. What the server did per request moves much
// less: how long its one writer spent in SQL and in COMMIT per write, and
// how many bytes went through its read and write system calls and on to
// the disk. Every run reports them beside its throughput, so that a change
// shows up in its cost even when the throughput spread hides it.

// serverCounters are the server's running totals that a run's cost is the
// difference of.
type serverCounters struct {
	io      procIO
	writer  writerTotals
	handler handlerTotals
	ok      bool // /proc and /metrics were both read
}

// procIO is /proc/PID/io: bytes through read-like and write-like system
// calls (files through the page cache, and sockets: a request's body and
// its answer count too), and bytes the storage was asked to read (page
// cache misses) and to write.
type procIO struct{ rchar, wchar, readBytes, writeBytes int64 }

// writerTotals are the store's creditsd_db_* counters from /metrics.
type writerTotals struct {
	runSeconds, commitSeconds float64
	commits, writes           float64
}

// handlerTotals are the server's latency histogram from /metrics
// (creditsd_http_request_duration_seconds), summed over its routes but
// /metrics itself. It is the server's own clock, from a request's routing
// to its handler's return: set beside the latency the tool sees, it says
// how much of a request's time is the server's work, and how much is the
// sockets and the wait for a core on a machine the two share.
type handlerTotals struct {
	count, sum float64
	buckets    map[float64]float64 // upper bound in seconds → requests that took at most that long
}

// Cost is what one timed run cost the server, per request and per write.
type Cost struct {
	// The writer's, zero in a run that wrote nothing.
	WriterBusy      float64 `json:"writer_busy"`       // SQL + COMMIT time ÷ wall time
	SQLMicros       float64 `json:"writer_sql_us"`     // per write transaction
	CommitMicros    float64 `json:"writer_commit_us"`  // per write transaction
	WritesPerCommit float64 `json:"writes_per_commit"` // the group commit's batch

	// Per answered request.
	WrittenKiB   float64 `json:"written_kib_per_req"`    // through write system calls: WAL frames, checkpoints, the answer
	DiskWriteKiB float64 `json:"disk_write_kib_per_req"` // that the storage was asked to write
	ReadKiB      float64 `json:"read_kib_per_req"`       // through read system calls: pages (cached or not), the request
	DiskReadKiB  float64 `json:"disk_read_kib_per_req"`  // that missed the page cache

	// The server's own clock (handlerTotals), over the run's requests.
	HandlerMeanMs float64 `json:"handler_mean_ms"`
	HandlerP99Ms  float64 `json:"handler_p99_le_ms,omitempty"` // the bucket bound the 99th percentile is under; 0: no request, or past the last bound
}

// readServerCounters reads pid's I/O, and the writer's counters and the
// latency histogram at base; ok is false when either is out of reach (a
// --target without --pid).
func readServerCounters(ctx context.Context, pid int, base string) serverCounters {
	var c serverCounters
	if pid == 0 {
		return c
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return c
	}
	if c.io, err = parseProcIO(string(b)); err != nil {
		return c
	}
	c.writer, c.handler, err = scrapeMetrics(ctx, base)
	c.ok = err == nil
	return c
}

// cost is what happened between c and later, over the requests answered
// in wall.
func (c serverCounters) cost(later serverCounters, answered int, wall time.Duration) *Cost {
	if !c.ok || !later.ok || answered == 0 || wall <= 0 || later.io.wchar < c.io.wchar || later.writer.writes < c.writer.writes {
		return nil // nothing to divide by, or the counters went back: another server answered
	}
	perReq := func(d int64) float64 { return round2(float64(d) / 1024 / float64(answered)) }
	cost := &Cost{
		WrittenKiB:   perReq(later.io.wchar - c.io.wchar),
		DiskWriteKiB: perReq(later.io.writeBytes - c.io.writeBytes),
		ReadKiB:      perReq(later.io.rchar - c.io.rchar),
		DiskReadKiB:  perReq(later.io.readBytes - c.io.readBytes),
	}
	w := later.writer
	writes, commits := w.writes-c.writer.writes, w.commits-c.writer.commits
	if writes > 0 && commits > 0 {
		run, commit := w.runSeconds-c.writer.runSeconds, w.commitSeconds-c.writer.commitSeconds
		cost.WriterBusy = round2((run + commit) / wall.Seconds())
		cost.SQLMicros = round2(run * 1e6 / writes)
		cost.CommitMicros = round2(commit * 1e6 / writes)
		cost.WritesPerCommit = round2(writes / commits)
	}
	cost.HandlerMeanMs, cost.HandlerP99Ms = later.handler.since(c.handler)
	return cost
}

// since is the mean and the 99th percentile's bucket bound, in ms, of the
// requests h has counted since earlier.
func (h handlerTotals) since(earlier handlerTotals) (meanMs, p99Ms float64) {
	n := h.count - earlier.count
	if n <= 0 {
		return 0, 0
	}
	meanMs = round2((h.sum - earlier.sum) * 1e3 / n)
	bounds := make([]float64, 0, len(h.buckets))
	for le := range h.buckets {
		bounds = append(bounds, le)
	}
	slices.Sort(bounds)
	for _, le := range bounds {
		if 100*(h.buckets[le]-earlier.buckets[le]) >= 99*n && !math.IsInf(le, 1) { // whole counts: exact
			return meanMs, le * 1e3
		}
	}
	return meanMs, 0
}

// parseProcIO reads the four fields of /proc/PID/io a cost needs, and
// fails unless each of them is there.
func parseProcIO(s string) (procIO, error) {
	var p procIO
	fields := map[string]*int64{"rchar": &p.rchar, "wchar": &p.wchar, "read_bytes": &p.readBytes, "write_bytes": &p.writeBytes}
	found := make(map[string]bool, len(fields))
	for _, line := range strings.Split(s, "\n") {
		name, text, ok := strings.Cut(line, ":")
		dst := fields[name]
		if !ok || dst == nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		if err != nil {
			return procIO{}, fmt.Errorf("/proc io: %s: %w", name, err)
		}
		*dst, found[name] = v, true
	}
	if len(found) != len(fields) {
		return procIO{}, fmt.Errorf("/proc io: %d of %d fields", len(found), len(fields))
	}
	return p, nil
}

// scrapeMetrics reads the writer's counters and the latency histogram
// from the server's /metrics (open to anyone, per the contract). It runs
// outside the timed window.
func scrapeMetrics(ctx context.Context, base string) (writerTotals, handlerTotals, error) {
	var w writerTotals
	var h handlerTotals
	err := getMetrics(ctx, base, func(r io.Reader) (err error) {
		w, h, err = parseMetrics(r)
		return err
	})
	return w, h, err
}

// getMetrics hands the body of base's /metrics to parse.
func getMetrics(ctx context.Context, base string, parse func(io.Reader) error) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(base, "/")+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/metrics: %s", resp.Status)
	}
	return parse(resp.Body)
}

// grantedNotifications is how many notifications the server at base has
// granted a lot for, by its creditsd_notifications_total.
func grantedNotifications(ctx context.Context, base string) (n float64, err error) {
	err = getMetrics(ctx, base, func(r io.Reader) error {
		n, err = parseGranted(r)
		return err
	})
	return n, err
}

// parseGranted sums creditsd_notifications_total{outcome="granted"} but
// for duplicates, which granted nothing again.
func parseGranted(r io.Reader) (float64, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(io.LimitReader(r, 4<<20))
	if err != nil {
		return 0, fmt.Errorf("/metrics: %w", err)
	}
	var n float64
	for _, m := range families["creditsd_notifications_total"].GetMetric() {
		if label(m, "outcome") == "granted" && label(m, "duplicate") != "true" {
			n += value(m)
		}
	}
	return n, nil
}

// parseMetrics picks the writer's four series and the latency histogram
// out of Prometheus text. A server without them has no cost to report.
func parseMetrics(r io.Reader) (writerTotals, handlerTotals, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(io.LimitReader(r, 4<<20))
	if err != nil {
		return writerTotals{}, handlerTotals{}, fmt.Errorf("/metrics: %w", err)
	}
	var w writerTotals
	for _, s := range []struct {
		family, phase string
		dst           *float64
	}{
		{"creditsd_db_writer_seconds_total", "run", &w.runSeconds},
		{"creditsd_db_writer_seconds_total", "commit", &w.commitSeconds},
		{"creditsd_db_commits_total", "", &w.commits},
		{"creditsd_db_writes_total", "", &w.writes},
	} {
		m := find(families[s.family], "phase", s.phase)
		if m == nil {
			return writerTotals{}, handlerTotals{}, fmt.Errorf("/metrics: no %s{phase=%q}", s.family, s.phase)
		}
		*s.dst = value(m)
	}
	h := handlerTotals{buckets: map[float64]float64{}}
	for _, m := range families["creditsd_http_request_duration_seconds"].GetMetric() {
		if label(m, "route") == "GET /metrics" {
			continue // the tool's own scrapes, one of them still being answered
		}
		hist := m.GetHistogram()
		h.count += float64(hist.GetSampleCount())
		h.sum += hist.GetSampleSum()
		for _, b := range hist.GetBucket() {
			h.buckets[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
	}
	return w, h, nil
}

// find is the metric of f whose label name is want ("" for a metric
// without it), or nil.
func find(f *dto.MetricFamily, name, want string) *dto.Metric {
	for _, m := range f.GetMetric() {
		if label(m, name) == want {
			return m
		}
	}
	return nil
}

// value is a counter's value, or an untyped series'.
func value(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetUntyped().GetValue()
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
