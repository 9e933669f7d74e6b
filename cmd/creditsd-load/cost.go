package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
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
	io     procIO
	writer writerTotals
	ok     bool // both were read
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
}

// readServerCounters reads pid's I/O and the writer's counters at base;
// ok is false when either is out of reach (a --target without --pid).
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
	c.writer, err = scrapeWriter(ctx, base)
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
	return cost
}

func parseProcIO(s string) (procIO, error) {
	var p procIO
	err := pick(s, ":", map[string]*int64{"rchar": &p.rchar, "wchar": &p.wchar, "read_bytes": &p.readBytes,
		"write_bytes": &p.writeBytes}, func(v string) (int64, error) { return strconv.ParseInt(v, 10, 64) })
	if err != nil {
		return procIO{}, fmt.Errorf("/proc io: %w", err)
	}
	return p, nil
}

// pick sets each of fields from the line of text that names it (name, sep,
// value), and fails unless every one of them was there.
func pick[T any](text, sep string, fields map[string]*T, parse func(string) (T, error)) error {
	found := make(map[string]bool, len(fields))
	for _, line := range strings.Split(text, "\n") {
		name, value, ok := strings.Cut(line, sep)
		dst := fields[name]
		if !ok || dst == nil {
			continue
		}
		v, err := parse(strings.TrimSpace(value))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		*dst, found[name] = v, true
	}
	if len(found) != len(fields) {
		return fmt.Errorf("%d of %d fields", len(found), len(fields))
	}
	return nil
}

// scrapeWriter reads the writer's counters from the server's /metrics
// (open to anyone, per the contract). It runs outside the timed window.
func scrapeWriter(ctx context.Context, base string) (writerTotals, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", strings.TrimSuffix(base, "/")+"/metrics", nil)
	if err != nil {
		return writerTotals{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return writerTotals{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return writerTotals{}, fmt.Errorf("/metrics: %s", resp.Status)
	}
	return parseWriterMetrics(resp.Body)
}

// parseWriterMetrics picks the four writer series out of Prometheus text.
func parseWriterMetrics(r io.Reader) (writerTotals, error) {
	text, err := io.ReadAll(io.LimitReader(r, 4<<20))
	if err != nil {
		return writerTotals{}, err
	}
	var w writerTotals
	err = pick(string(text), " ", map[string]*float64{
		`creditsd_db_writer_seconds_total{phase="run"}`:    &w.runSeconds,
		`creditsd_db_writer_seconds_total{phase="commit"}`: &w.commitSeconds,
		`creditsd_db_commits_total`:                        &w.commits,
		`creditsd_db_writes_total`:                         &w.writes,
	}, func(v string) (float64, error) { return strconv.ParseFloat(v, 64) })
	if err != nil {
		return writerTotals{}, fmt.Errorf("/metrics: %w", err)
	}
	return w, nil
}
