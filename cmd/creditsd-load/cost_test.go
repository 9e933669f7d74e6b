package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseProcIO(t *testing.T) {
	p, err := parseProcIO("rchar: 1000\nwchar: 2000\nsyscr: 5\nsyscw: 6\nread_bytes: 7\nwrite_bytes: 4096\ncancelled_write_bytes: 0\n")
	require.NoError(t, err)
	require.Equal(t, procIO{rchar: 1000, wchar: 2000, readBytes: 7, writeBytes: 4096}, p)
	_, err = parseProcIO("rchar: 1000\nwchar: 2000\nwrite_bytes: 1\n")
	require.Error(t, err, "a missing field must not read as zero")
	_, err = parseProcIO("rchar: 1\nrchar: 2\nwchar: 3\nread_bytes: 4\n")
	require.Error(t, err, "a line twice does not stand in for a missing one")
	_, err = parseProcIO("rchar: x\nwchar: 2000\nread_bytes: 1\nwrite_bytes: 1\n")
	require.Error(t, err)
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP creditsd_db_commits_total Commits.
# TYPE creditsd_db_commits_total counter
creditsd_db_commits_total 40
creditsd_db_writer_seconds_total{phase="commit"} 1.5
creditsd_db_writer_seconds_total{phase="run"} 0.5
creditsd_db_writes_total 200
creditsd_db_writes_totally_else 9
# TYPE creditsd_http_request_duration_seconds histogram
creditsd_http_request_duration_seconds_bucket{route="GET /v1/me/entitlement",le="0.001"} 6
creditsd_http_request_duration_seconds_bucket{route="GET /v1/me/entitlement",le="0.005"} 9
creditsd_http_request_duration_seconds_bucket{route="GET /v1/me/entitlement",le="+Inf"} 10
creditsd_http_request_duration_seconds_sum{route="GET /v1/me/entitlement"} 0.02
creditsd_http_request_duration_seconds_count{route="GET /v1/me/entitlement"} 10
creditsd_http_request_duration_seconds_bucket{route="POST /v1/users/{user_id}/spends",le="0.001"} 1
creditsd_http_request_duration_seconds_bucket{route="POST /v1/users/{user_id}/spends",le="0.005"} 2
creditsd_http_request_duration_seconds_bucket{route="POST /v1/users/{user_id}/spends",le="+Inf"} 2
creditsd_http_request_duration_seconds_sum{route="POST /v1/users/{user_id}/spends"} 0.004
creditsd_http_request_duration_seconds_count{route="POST /v1/users/{user_id}/spends"} 2
creditsd_http_request_duration_seconds_bucket{route="GET /metrics",le="0.001"} 0
creditsd_http_request_duration_seconds_bucket{route="GET /metrics",le="0.005"} 0
creditsd_http_request_duration_seconds_bucket{route="GET /metrics",le="+Inf"} 7
creditsd_http_request_duration_seconds_sum{route="GET /metrics"} 70
creditsd_http_request_duration_seconds_count{route="GET /metrics"} 7
`
	w, h, err := parseMetrics(strings.NewReader(text))
	require.NoError(t, err)
	require.Equal(t, writerTotals{runSeconds: 0.5, commitSeconds: 1.5, commits: 40, writes: 200}, w)
	require.Equal(t, 12.0, h.count, "every route but the tool's own scrapes of /metrics")
	require.InDelta(t, 0.024, h.sum, 1e-12)
	require.Equal(t, map[float64]float64{0.001: 7, 0.005: 11, math.Inf(1): 12}, h.buckets)

	_, _, err = parseMetrics(strings.NewReader("creditsd_db_commits_total 40\n"))
	require.Error(t, err, "a server without the writer's series has no cost to report")
	_, _, err = parseMetrics(strings.NewReader("creditsd_db_commits_total{\n"))
	require.Error(t, err, "text that is not Prometheus' is not read as zeros")
}

func TestHandlerLatencySince(t *testing.T) {
	at := func(count, sum, under1ms, under5ms float64) handlerTotals {
		return handlerTotals{count: count, sum: sum, buckets: map[float64]float64{0.001: under1ms, 0.005: under5ms, math.Inf(1): count}}
	}
	before := at(1000, 5, 900, 990)
	mean, p99 := at(1100, 5.2, 990, 1089).since(before)
	require.Equal(t, 2.0, mean, "0.2 s over 100 requests")
	require.Equal(t, 5.0, p99, "99 of the 100 under 5 ms, 90 under 1 ms")
	_, p99 = at(1100, 5.2, 999, 1099).since(before)
	require.Equal(t, 1.0, p99, "99 of 100 under 1 ms")
	_, p99 = at(1100, 5.2, 990, 1088).since(before)
	require.Zero(t, p99, "past the last finite bound: no bound to give")
	mean, p99 = before.since(before)
	require.Zero(t, mean, "no request: nothing to say")
	require.Zero(t, p99)
}

// The series the tool reads are the ones the server exports.
func TestWriterSeriesExist(t *testing.T) {
	src, err := os.ReadFile("../creditsd/metrics.go")
	require.NoError(t, err)
	for _, name := range []string{`"creditsd_db_commits_total"`, `"creditsd_db_writes_total"`, `"creditsd_db_writer_seconds_total"`} {
		require.Contains(t, string(src), name)
	}
	require.Contains(t, string(src), `"phase"`)
	src, err = os.ReadFile("../creditsd/middleware.go")
	require.NoError(t, err)
	require.Contains(t, string(src), `"creditsd_http_request_duration_seconds"`)
	require.Contains(t, string(src), `[]string{"route"}`)
}

func TestServerCost(t *testing.T) {
	var scrape atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/metrics", r.URL.Path)
		n := float64(scrape.Add(1) - 1) // the second scrape: 1 s of SQL and 3 s of COMMIT in 1000 writes, 100 commits
		fmt.Fprintf(w, "creditsd_db_writer_seconds_total{phase=\"run\"} %g\ncreditsd_db_writer_seconds_total{phase=\"commit\"} %g\n", 2+n, 5+3*n)
		fmt.Fprintf(w, "creditsd_db_commits_total %g\ncreditsd_db_writes_total %g\n", 10+100*n, 50+1000*n)
		// and 256 requests that took 0.768 s in the handlers, all under 5 ms
		fmt.Fprintf(w, "# TYPE creditsd_http_request_duration_seconds histogram\n")
		for _, b := range []struct {
			le    string
			count float64
		}{{"0.001", 3 + 100*n}, {"0.005", 3 + 256*n}, {"+Inf", 3 + 256*n}} {
			fmt.Fprintf(w, "creditsd_http_request_duration_seconds_bucket{route=\"GET /v1/me/entitlement\",le=%q} %g\n", b.le, b.count)
		}
		fmt.Fprintf(w, "creditsd_http_request_duration_seconds_sum{route=\"GET /v1/me/entitlement\"} %g\n", 1+0.768*n)
		fmt.Fprintf(w, "creditsd_http_request_duration_seconds_count{route=\"GET /v1/me/entitlement\"} %g\n", 3+256*n)
	}))
	defer srv.Close()
	ctx := context.Background()
	before := readServerCounters(ctx, os.Getpid(), srv.URL)
	require.True(t, before.ok)
	f, err := os.Create(t.TempDir() + "/x")
	require.NoError(t, err)
	_, err = f.Write(make([]byte, 512*1024))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	after := readServerCounters(ctx, os.Getpid(), srv.URL)
	c := before.cost(after, 256, 8*time.Second)
	require.NotNil(t, c)
	require.Equal(t, 0.5, c.WriterBusy)
	require.Equal(t, 1000.0, c.SQLMicros)
	require.Equal(t, 3000.0, c.CommitMicros)
	require.Equal(t, 10.0, c.WritesPerCommit)
	require.GreaterOrEqual(t, c.WrittenKiB, 2.0, "512 KiB written over 256 requests")
	require.Equal(t, 3.0, c.HandlerMeanMs)
	require.Equal(t, 5.0, c.HandlerP99Ms)

	idle := before.cost(before, 10, time.Second)
	require.NotNil(t, idle, "a run that wrote nothing (reads) still has its bytes per request")
	require.Zero(t, idle.SQLMicros)
	require.Zero(t, idle.WriterBusy)
	require.Nil(t, before.cost(after, 0, time.Second), "no request answered: no cost per request")
	require.Nil(t, after.cost(before, 10, time.Second), "counters that went back (a restarted server) give no cost")
	require.Nil(t, readServerCounters(ctx, 0, srv.URL).cost(after, 1, time.Second), "no pid: no cost")
	require.False(t, readServerCounters(ctx, os.Getpid(), "http://127.0.0.1:1").ok, "no metrics: no cost")
}

// Every 2xx must have granted a lot; more lots than 2xx are the requests
// a duration cut in flight, which the server finished (a side by side's
// 15 s runs granted 23 more than they counted).
func TestGrantedAll(t *testing.T) {
	runs := []Summary{{OK: 30000}, {OK: 24224}}
	require.NoError(t, grantedAll(runs, 54224))
	require.NoError(t, grantedAll(runs, 54247), "cut in flight, granted all the same")
	require.ErrorContains(t, grantedAll(runs, 0), "answered 54224 notifications 2xx but granted 0 lots")
	require.Error(t, grantedAll(runs, 54223))
}
