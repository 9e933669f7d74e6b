package jobs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements/sqlite"
)

// unrecordable is a Store whose runs cannot be recorded as finished.
type unrecordable struct {
	Store
	err error // nil: the disk is full
}

func (u unrecordable) FinishJobRun(context.Context, sqlite.JobFinish) error {
	if u.err != nil {
		return u.err
	}
	return errors.New("the disk is full")
}

// TestRunWhoseRecordFailsFails: a run that ended but could not be recorded
// is an error to its caller (`creditsd jobs run` exits non-zero), with how
// it ended; before, it answered as if all were well while its row stayed
// `running`.
func TestRunWhoseRecordFailsFails(t *testing.T) {
	r := newRunner(openDB(t, tempDB(t)), "a", nil)
	r.Store = unrecordable{Store: r.Store}
	job := Job{Name: "sweep", Run: func(context.Context, time.Time) (Result, error) { return Result{"lots": 3}, nil }}
	rep, err := r.RunNow(context.Background(), job)
	require.ErrorContains(t, err, "the run ended ok, but recording it failed: the disk is full")
	require.Equal(t, OK, rep.Outcome, "the report still says how the run went")

	r = newRunner(openDB(t, tempDB(t)), "b", nil) // a database of its own: the first run, unrecorded, kept its lease in the other
	r.Store = unrecordable{r.Store, sqlite.ErrLeaseLost}
	_, err = r.RunNow(context.Background(), job)
	require.ErrorIs(t, err, sqlite.ErrLeaseLost)
	require.ErrorContains(t, err, "the run ended ok after its lease lapsed and another run took the job over; it is recorded as abandoned")
}

// TestSchedulerLogsARunItCouldNotRecord: a scheduled run whose record
// failed is logged as an error, at shutdown too, not passed over.
func TestSchedulerLogsARunItCouldNotRecord(t *testing.T) {
	logs := &logBuffer{}
	r := newRunner(openDB(t, tempDB(t)), "a", logs)
	r.Store = unrecordable{Store: r.Store}
	started := make(chan struct{})
	job := Job{Name: "sweep", Schedule: mustSchedule(t, "15 3 * * *", time.UTC), Enabled: true,
		Run: func(ctx context.Context, _ time.Time) (Result, error) {
			close(started)
			<-ctx.Done() // runs until the server shuts down
			return nil, ctx.Err()
		}}
	r.Now = func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }
	s := NewScheduler(r, []Job{job})
	s.Start(context.Background())
	<-started
	s.Stop()
	require.Contains(t, logs.String(), `level=ERROR msg="job's run not recorded" job=sweep`)
}
