package main

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	store "github.com/creditsd/creditsd/entitlements/sqlite"
	"github.com/creditsd/creditsd/jobs"
	"github.com/creditsd/creditsd/receipts/devca"
)

func TestSweepSlot(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		return tm
	}
	for _, c := range []struct {
		now  string
		lead time.Duration
		want string
	}{
		{"2025-01-02T03:04:05Z", 13 * time.Second, "2025-01-02T03:05:00Z"},
		{"2025-01-02T03:04:50Z", 13 * time.Second, "2025-01-02T03:06:00Z"}, // 03:05:00 leaves only 10 s
		{"2025-01-02T03:04:47Z", 13 * time.Second, "2025-01-02T03:05:00Z"}, // exactly the lead is enough
		{"2025-01-02T23:59:59Z", 13 * time.Second, "2025-01-03T00:01:00Z"}, // over midnight
		{"2025-01-02T05:04:05+02:00", time.Second, "2025-01-02T03:05:00Z"}, // in UTC, whatever the zone
		{"2025-01-02T03:04:05.5Z", 54500 * time.Millisecond, "2025-01-02T03:05:00Z"},
	} {
		got := sweepSlot(at(c.now), c.lead)
		require.Equal(t, at(c.want), got, "%+v", c)
		require.Equal(t, time.UTC, got.Location())
	}
}

func TestDailyAtFiresAtTheSlot(t *testing.T) {
	slot := time.Date(2025, 3, 4, 7, 9, 0, 0, time.UTC)
	spec := dailyAt(slot)
	require.Equal(t, "9 7 * * *", spec)
	sched, err := jobs.ParseSchedule(spec, time.UTC) // as creditsd reads jobs.expiry_sweep.schedule
	require.NoError(t, err)
	require.Equal(t, slot, sched.Next(slot.Add(-30*time.Second)))
	prev, ok := jobs.Prev(sched, slot.Add(-time.Millisecond))
	require.True(t, ok)
	require.Equal(t, slot.Add(-24*time.Hour), prev)
}

func TestRewriteConfigSchedulesTheSweep(t *testing.T) {
	ca, err := devca.New(devca.Options{})
	require.NoError(t, err)
	f, err := writeConfig(t.TempDir(), ca.RootPEM(), "info")
	require.NoError(t, err)
	require.NoError(t, rewriteConfig(f, "info", "9 7 * * *"))

	raw, err := os.ReadFile(f.Config)
	require.NoError(t, err)
	var c struct{ Jobs jobsYAML }
	require.NoError(t, yaml.Unmarshal(raw, &c))
	require.Equal(t, "UTC", c.Jobs.Timezone, "the slot is picked in UTC")
	require.Equal(t, "9 7 * * *", c.Jobs.Each["expiry_sweep"].Schedule)
	require.True(t, c.Jobs.Each["expiry_sweep"].Enabled)
	for _, name := range []string{"daily_reset", "reconcile", "consumption_answers"} {
		require.False(t, c.Jobs.Each[name].Enabled, "%s must not run during a measurement", name)
	}
}

// The scheduler's catch-up at start runs the latest slot that has no run:
// without markPrevSlotRun it would sweep as soon as the server starts.
func TestMarkPrevSlotRunStopsTheCatchUp(t *testing.T) {
	for _, mark := range []bool{false, true} {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "catchup.db")
		_, err := seed(ctx, path, seedPlan{users: 2, lots: 4, expired: 1, credits: 10, now: time.Now()}, nil)
		require.NoError(t, err)
		slot := sweepSlot(time.Now(), time.Hour) // cron does not reach it during the test
		sched, err := jobs.ParseSchedule(dailyAt(slot), time.UTC)
		require.NoError(t, err)
		if mark {
			require.NoError(t, markPrevSlotRun(ctx, path, sched, slot))
		}

		db, err := store.Open(ctx, path)
		require.NoError(t, err)
		var runs atomic.Int32
		claims := &claimWatch{DB: db, claimed: make(chan error, 1)}
		s := jobs.NewScheduler(&jobs.Runner{Store: claims, Holder: "test"}, []jobs.Job{{Name: jobs.ExpirySweepName,
			Schedule: sched, Enabled: true, Run: func(context.Context, time.Time) (jobs.Result, error) {
				runs.Add(1)
				return nil, nil
			}}})
		s.Start(ctx)
		claimErr := <-claims.claimed // the catch-up asked for its slot
		s.Stop()                     // and has finished
		require.NoError(t, db.Close())
		if mark {
			require.ErrorIs(t, claimErr, store.ErrSlotDone)
			require.Zero(t, runs.Load(), "the marked slot must not run again")
		} else {
			require.NoError(t, claimErr)
			require.Equal(t, int32(1), runs.Load(), "the control: an unmarked slot runs at start")
		}
	}
}

// claimWatch is the store, saying when a run was claimed and how that went.
type claimWatch struct {
	*store.DB
	claimed chan error
}

func (w *claimWatch) ClaimJobRun(ctx context.Context, c store.JobClaim) (int64, error) {
	id, err := w.DB.ClaimJobRun(ctx, c)
	w.claimed <- err
	return id, err
}

// The mark reads back as the previous slot's skipped run. The measured
// server may be newer than this tool and have migrated the database past
// the tool's own schema (bench/sidebyside.sh runs the base's tool), which
// the store would refuse to open: the slot is marked all the same.
func TestScheduledRunReadsTheRecord(t *testing.T) {
	for _, newer := range []bool{false, true} {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "runs.db")
		_, err := seed(ctx, path, seedPlan{users: 1, lots: 1, credits: 10, now: time.Now()}, nil)
		require.NoError(t, err)
		if newer {
			future, err := sql.Open("sqlite", "file:"+path)
			require.NoError(t, err)
			_, err = future.Exec(`INSERT INTO schema_migrations (name) VALUES ('migrations/9999_future.sql')`)
			require.NoError(t, err)
			require.NoError(t, future.Close())
			_, err = store.Open(ctx, path)
			require.ErrorIs(t, err, store.ErrNewerSchema, "the store would refuse it")
		}
		slot := time.Date(2025, 3, 4, 7, 9, 0, 0, time.UTC)
		sched, err := jobs.ParseSchedule(dailyAt(slot), time.UTC)
		require.NoError(t, err)
		require.NoError(t, markPrevSlotRun(ctx, path, sched, slot), "newer %t", newer)

		db, err := openReadOnly(path)
		require.NoError(t, err)
		_, found, err := scheduledRun(ctx, db, slot)
		require.NoError(t, err)
		require.False(t, found, "nothing ran for the slot itself")
		run, found, err := scheduledRun(ctx, db, slot.Add(-24*time.Hour))
		require.NoError(t, err)
		require.True(t, found)
		require.Equal(t, "skipped", run.Outcome)
		require.False(t, run.Manual)
		require.False(t, run.Finished.Before(run.Started))
		require.Equal(t, "expiry-sweep: skipped {}", run.line())
		require.NoError(t, db.Close())
	}
}

func TestScheduledSweepRun(t *testing.T) {
	start := time.Now()
	run := jobRun{Outcome: "ok", Started: start.Add(61 * time.Second), Finished: start.Add(70 * time.Second),
		Counts: jobs.Result{"lots": 3, "credits": 30, "batches": 1}}
	sw, err := scheduledSweepRun(run, start)
	require.NoError(t, err)
	require.Equal(t, 61*time.Second, sw.from)
	require.Equal(t, 70*time.Second, sw.to)
	require.Equal(t, `expiry-sweep: ok {"batches":1,"credits":30,"lots":3}`, sw.output)

	run.Started = start.Add(-time.Second)
	_, err = scheduledSweepRun(run, start)
	require.ErrorContains(t, err, "before the requests beside it")

	run.Outcome, run.Error = "failed", "disk full"
	_, err = scheduledSweepRun(run, start)
	require.ErrorContains(t, err, "disk full")
}

func TestCheckSweepCountsTheSeededExpiredLots(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sweep.db")
	seededAt := time.Now()
	_, err := seed(ctx, path, seedPlan{users: 7, lots: 503, expired: 50, credits: 1000, now: seededAt}, nil)
	require.NoError(t, err)

	c, err := checkSweep(ctx, path, seededAt)
	require.NoError(t, err)
	require.Equal(t, int64(50), c.Left)
	require.ErrorContains(t, c.verify(jobs.Result{"lots": 0}, 50, 1000), "50 expired lots left")

	db, err := store.Open(ctx, path)
	require.NoError(t, err)
	swept, err := jobs.ExpirySweep(db, 20, false)(ctx, time.Now()) // the server's job, in batches of 20
	require.NoError(t, err)
	require.NoError(t, db.Close())

	c, err = checkSweep(ctx, path, seededAt)
	require.NoError(t, err)
	require.Equal(t, sweepCheck{Entries: 50, Lots: 50, SeededLots: 50, Credits: 50_000, Seconds: c.Seconds}, c)
	require.NoError(t, c.verify(swept, 50, 1000))
	require.Error(t, c.verify(swept, 51, 1000), "a lot missing")
	require.Error(t, c.verify(jobs.Result{"lots": 49}, 50, 1000), "the job's own count must agree")
}

// --sweep-beside picks what the clients beside the sweep send, and the
// result and its report name them: spends by default, or the app's reads.
func TestSweepBesideSpendsOrReads(t *testing.T) {
	var mu sync.Mutex
	asked := map[string]int{} // "METHOD path, bearer's subject"
	var badTokens []error     // checked on the test goroutine: FailNow is not valid on the server's
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), claims,
			func(*jwt.Token) (any, error) { return []byte("s3cret"), nil })
		if err != nil {
			mu.Lock()
			badTokens = append(badTokens, err)
			mu.Unlock()
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		path := r.URL.Path
		if strings.HasPrefix(path, "/v1/users/"+seedUserID(0)[:6]) {
			path = "/v1/users/{seeded}/spends"
		}
		mu.Lock()
		asked[r.Method+" "+path+", "+strings.TrimRight(claims["sub"].(string), "0123456789")]++
		mu.Unlock()
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	c, err := newWireClient(srv.URL, 1)
	require.NoError(t, err)
	samples := []sample{{at: time.Second, status: 200}, {at: 2500 * time.Millisecond, status: 200},
		{at: 3500 * time.Millisecond, status: 200}, {at: 4 * time.Second, status: 200}}
	for _, tc := range []struct{ beside, want, line string }{
		{"spend", "POST /v1/users/{seeded}/spends, creditsd-load", "  spends during it: 1/s ok"},
		{"read", "GET /v1/me/entitlement, load-u", "  reads during it: 1/s ok"},
	} {
		o, err := parseOptions([]string{"--scenario", "sweep", "--sweep-beside", tc.beside, "--users", "50"}, io.Discard)
		require.NoError(t, err)
		e := &env{opts: o, secret: "s3cret", client: c, runID: newRunID()}
		req, err := e.besideSweep()
		require.NoError(t, err)
		clear(asked)
		for i := range 5 {
			status, err := req(context.Background(), i)
			require.NoError(t, err)
			require.Empty(t, badTokens, "the bearer the server read")
			require.Equal(t, 200, status)
		}
		require.Equal(t, map[string]int{tc.want: 5}, asked)

		res := e.sweepResult(sweepRun{from: 2 * time.Second, to: 4 * time.Second}, samples)
		require.Equal(t, tc.beside, res.Beside)
		if tc.beside == "read" {
			require.True(t, res.ReadsBefore != nil && res.ReadsDuring != nil && res.SpendsBefore == nil && res.SpendsDuring == nil)
		} else {
			require.True(t, res.SpendsBefore != nil && res.SpendsDuring != nil && res.ReadsBefore == nil && res.ReadsDuring == nil)
		}
		during, before, _ := res.beside()
		require.Equal(t, 2, during.OK, "the requests at 2.5 and 3.5 s")
		require.Equal(t, 1, before.OK, "the request at 1 s")
		var out strings.Builder
		res.notes(&out)
		require.Contains(t, out.String(), tc.line)
	}
	_, err = parseOptions([]string{"--sweep-beside", "webhook"}, io.Discard)
	require.ErrorContains(t, err, "want spend or read")
}
