package jobs

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/creditsd/creditsd/entitlements/sqlite"
)

// openDB opens a handle on the file database at path; tests open two on
// one file to play two processes.
func openDB(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func tempDB(t testing.TB) string { return filepath.Join(t.TempDir(), "jobs.db") }

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newRunner(db *sqlite.DB, holder string, logs *logBuffer) *Runner {
	r := &Runner{Store: db, Holder: holder, LeaseTTL: 300 * time.Millisecond, Wait: 200 * time.Millisecond}
	if logs != nil {
		r.Log = slog.New(slog.NewTextHandler(logs, nil))
	}
	return r
}

func runs(t testing.TB, db *sqlite.DB, job string) []sqlite.JobRun {
	t.Helper()
	rs, err := db.JobRuns(context.Background(), job, 100)
	require.NoError(t, err)
	return rs
}

var slot = time.Date(2026, 11, 25, 3, 15, 0, 0, time.UTC)

// signalStore tells the test when the runner's store calls happen, so the
// test waits for them instead of for a guessed time.
type signalStore struct {
	Store
	held    chan struct{} // ClaimJobRun found the lease held
	renewed chan struct{} // RenewJobLease kept the lease
}

func newSignalStore(s Store) *signalStore {
	return &signalStore{Store: s, held: make(chan struct{}, 1), renewed: make(chan struct{}, 16)}
}

func (s *signalStore) ClaimJobRun(ctx context.Context, c sqlite.JobClaim) (int64, error) {
	id, err := s.Store.ClaimJobRun(ctx, c)
	if errors.As(err, new(*sqlite.LeaseHeldError)) {
		notify(s.held)
	}
	return id, err
}

func (s *signalStore) RenewJobLease(ctx context.Context, job, holder string, ttl time.Duration) error {
	err := s.Store.RenewJobLease(ctx, job, holder, ttl)
	if err == nil {
		notify(s.renewed)
	}
	return err
}

// notify signals c without blocking: a signal nobody waits for is dropped.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// receive waits for n signals on c, failing the test after a deadline.
func receive(t *testing.T, c chan struct{}, n int, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for range n {
		select {
		case <-c:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

type runResult struct {
	rep Report
	err error
}

func TestRunLease(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	var bLogs logBuffer
	a, b := newRunner(openDB(t, path), "a", nil), newRunner(openDB(t, path), "b", &bLogs)
	aStore := newSignalStore(a.Store)
	a.Store = aStore
	release, started := make(chan struct{}), make(chan struct{})
	long := Job{Name: "sweep", Run: func(ctx context.Context, _ time.Time) (Result, error) {
		close(started)
		<-release
		return Result{"lots": 1}, nil
	}}
	done := make(chan runResult, 1)
	go func() {
		rep, err := a.RunNow(ctx, long)
		done <- runResult{rep, err}
	}()
	<-started
	// Renewals come a third of a TTL apart at the soonest, so after four the
	// lease's first expiry is past: only renewal keeps it.
	receive(t, aStore.renewed, 4, "the lease's renewals")

	quick := Job{Name: "sweep", Run: func(context.Context, time.Time) (Result, error) { return nil, nil }}
	_, err := b.RunNow(ctx, quick)
	var busy *BusyError
	require.ErrorAs(t, err, &busy, "a second runner does not start the job while it runs")
	require.Contains(t, busy.Error(), "job sweep is running (held by a/")
	require.Equal(t, 1, strings.Count(bLogs.String(), `msg="waiting for the job's run in progress" job=sweep held_by=a/`),
		"said once, at once, while it waits")

	b.Wait = 5 * time.Second
	bStore := newSignalStore(b.Store)
	b.Store = bStore
	go func() { <-bStore.held; close(release) }() // only once b has found the lease held
	rep, err := b.RunNow(ctx, quick)
	require.NoError(t, err, "it waits for the run in progress")
	require.Equal(t, OK, rep.Outcome)
	first := <-done
	require.NoError(t, first.err)
	require.Equal(t, Result{"lots": 1}, first.rep.Result)
}

func TestRunSlotOnce(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	var ran atomic.Int32
	job := Job{Name: "sweep", Run: func(context.Context, time.Time) (Result, error) {
		ran.Add(1)
		time.Sleep(20 * time.Millisecond)
		return nil, nil
	}}
	runners := []*Runner{newRunner(openDB(t, path), "a", nil), newRunner(openDB(t, path), "b", nil)}
	for _, r := range runners {
		r.Wait = 5 * time.Second
	}
	const tries = 8
	errs := make(chan error, tries)
	var wg sync.WaitGroup
	for i := range tries {
		r := runners[i%2]
		wg.Go(func() {
			_, err := r.Run(ctx, job, slot, false)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			require.ErrorIs(t, err, sqlite.ErrSlotDone)
		}
	}
	require.Equal(t, int32(1), ran.Load(), "two processes, eight tries, one run")

	restarted := newRunner(openDB(t, path), "c", nil)
	_, err := restarted.Run(ctx, job, slot, false)
	require.ErrorIs(t, err, sqlite.ErrSlotDone, "not after a restart either")
	_, err = restarted.Run(ctx, job, slot.Add(24*time.Hour), false)
	require.NoError(t, err, "the next slot runs")
	require.Equal(t, int32(2), ran.Load())
}

func TestRunOutcomes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		run     Func
		outcome Outcome
		errText string
		log     string
	}{
		{"ok", func(context.Context, time.Time) (Result, error) { return Result{"lots": 2}, nil }, OK, "", "job finished"},
		{"failed", func(context.Context, time.Time) (Result, error) { return nil, errors.New("disk on fire") }, Failed,
			"disk on fire", "job failed"},
		{"panicked", func(context.Context, time.Time) (Result, error) { panic("nil map") }, Panicked, "panic: nil map",
			"job panicked"},
		{"skipped", NotConfigured("app_store_api"), Skipped, "skipped: app_store_api is not configured",
			"skipped: app_store_api is not configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			db := openDB(t, tempDB(t))
			r := newRunner(db, "a", &logs)
			rep, err := r.Run(ctx, Job{Name: "j", Run: tc.run}, slot, false)
			require.NoError(t, err, "the runner itself survives a panic")
			require.Equal(t, tc.outcome, rep.Outcome)
			got := runs(t, db, "j")
			require.Len(t, got, 1)
			require.Equal(t, string(tc.outcome), got[0].Outcome)
			require.Equal(t, tc.errText, got[0].Error)
			require.Contains(t, logs.String(), tc.log)

			_, err = r.Run(ctx, Job{Name: "j", Run: tc.run}, slot, false)
			require.ErrorIs(t, err, sqlite.ErrSlotDone, "a recorded outcome uses up its slot")
			_, err = r.RunNow(ctx, Job{Name: "j", Run: tc.run})
			require.NoError(t, err, "and releases the lease")
		})
	}
}

// A run its shutdown interrupts (every deploy during a run) is a warning,
// not an error to page for: its slot stays free and runs again.
func TestRunInterruptedIsAWarning(t *testing.T) {
	var logs logBuffer
	db := openDB(t, tempDB(t))
	r := newRunner(db, "a", &logs)
	ctx, cancel := context.WithCancel(context.Background())
	rep, _ := r.Run(ctx, Job{Name: "j", Run: func(ctx context.Context, _ time.Time) (Result, error) {
		cancel()
		return nil, ctx.Err()
	}}, slot, false)
	require.Equal(t, Interrupted, rep.Outcome)
	require.Contains(t, logs.String(), `level=WARN msg="job interrupted"`)
	require.NotContains(t, logs.String(), "level=ERROR")
}

func TestRunLostLease(t *testing.T) {
	ctx := context.Background()
	path := tempDB(t)
	r := newRunner(openDB(t, path), "a", nil)
	started := make(chan struct{})
	job := Job{Name: "sweep", Run: func(ctx context.Context, _ time.Time) (Result, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	done := make(chan runResult, 1)
	go func() {
		rep, err := r.Run(ctx, job, slot, false)
		done <- runResult{rep, err}
	}()
	<-started
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	defer raw.Close()
	_, err = raw.Exec(`UPDATE job_leases SET holder = 'thief' WHERE job = 'sweep'`)
	require.NoError(t, err)

	select {
	case res := <-done:
		require.NoError(t, res.err)
		require.Equal(t, Interrupted, res.rep.Outcome, "a run that lost its lease stops")
	case <-time.After(5 * time.Second):
		t.Fatal("the run went on without its lease")
	}
}
