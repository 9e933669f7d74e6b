package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/creditsd/creditsd/jobs"
)

// openReadOnly opens the server's database for reading beside it: WAL lets
// a reader run while the server writes, and mode=ro makes sure this tool
// never takes the write lock from it.
func openReadOnly(path string) (*sql.DB, error) {
	q := url.Values{}
	q.Set("mode", "ro")
	q.Add("_pragma", "busy_timeout(10000)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// jobRun is one row of job_runs.
type jobRun struct {
	Slot, Started, Finished time.Time
	Manual                  bool
	Outcome, Error          string
	Counts                  jobs.Result
}

// line is the run as `creditsd jobs run` prints it, e.g.
// `expiry-sweep: ok {"batches":101,"credits":…,"lots":100000}`.
func (r jobRun) line() string {
	counts, _ := json.Marshal(r.Counts) // a map of int64 always encodes
	return fmt.Sprintf("%s: %s %s", jobs.ExpirySweepName, r.Outcome, counts)
}

const jobRunColumns = `slot, manual, started_at, COALESCE(finished_at, 0), outcome, counts, error`

// scheduledRun is the sweep's run for slot, if one has started.
func scheduledRun(ctx context.Context, db *sql.DB, slot time.Time) (jobRun, bool, error) {
	row := db.QueryRowContext(ctx, `SELECT `+jobRunColumns+` FROM job_runs
		WHERE job = ? AND manual = 0 AND slot = ? ORDER BY run_id DESC LIMIT 1`, jobs.ExpirySweepName, slot.UnixMilli())
	run, err := scanJobRun(row)
	if errors.Is(err, sql.ErrNoRows) {
		return run, false, nil
	}
	return run, err == nil, err
}

// lastManualRun is the newest run of the sweep by `creditsd jobs run`.
func lastManualRun(ctx context.Context, path string) (jobRun, error) {
	db, err := openReadOnly(path)
	if err != nil {
		return jobRun{}, err
	}
	defer db.Close()
	return scanJobRun(db.QueryRowContext(ctx, `SELECT `+jobRunColumns+` FROM job_runs
		WHERE job = ? AND manual = 1 ORDER BY run_id DESC LIMIT 1`, jobs.ExpirySweepName))
}

func scanJobRun(row *sql.Row) (jobRun, error) {
	var r jobRun
	var slot, started, finished int64
	var counts string
	if err := row.Scan(&slot, &r.Manual, &started, &finished, &r.Outcome, &counts, &r.Error); err != nil {
		return r, err
	}
	r.Slot, r.Started = time.UnixMilli(slot).UTC(), time.UnixMilli(started)
	if finished != 0 {
		r.Finished = time.UnixMilli(finished)
	}
	return r, json.Unmarshal([]byte(counts), &r.Counts)
}

// sweepCheck is what the database holds after the sweep, for checking it
// against the seed: every expire entry, and what is left to expire.
type sweepCheck struct {
	Entries    int64   `json:"expire_entries"`
	Lots       int64   `json:"distinct_lots"`     // lots the entries name
	SeededLots int64   `json:"seeded_expired"`    // of the entries, those on a lot seeded as expired
	Credits    int64   `json:"credits"`           // written off by them
	Left       int64   `json:"expired_lots_left"` // expired lots that still hold credits
	Seconds    float64 `json:"seconds"`           // the check's own time, after the spends
}

// checkSweep reads the expire entries and the lots left to expire.
// seededAt is the seed's clock: the seeded expired lots ran out a day
// before it, every other lot (seeded or granted since) expires after it.
func checkSweep(ctx context.Context, path string, seededAt time.Time) (sweepCheck, error) {
	start := time.Now()
	db, err := openReadOnly(path)
	if err != nil {
		return sweepCheck{}, err
	}
	defer db.Close()
	var c sweepCheck
	if err := db.QueryRowContext(ctx, `SELECT count(*), count(DISTINCT e.lot_id), COALESCE(-sum(e.credits), 0),
		COALESCE(sum(substr(l.lot_id, 1, 8) = 'lot_seed' AND l.expires_at < ?), 0)
		FROM entries e JOIN lots l ON l.lot_id = e.lot_id WHERE e.kind = 'expire'`, seededAt.UnixMilli()).
		Scan(&c.Entries, &c.Lots, &c.Credits, &c.SeededLots); err != nil {
		return c, err
	}
	// A walk of every lot (~3 s of 10M): the server keeps no index by
	// expiry since migration 0013, because nothing it runs reads one.
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM lots
		WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?`, time.Now().UnixMilli()).
		Scan(&c.Left); err != nil {
		return c, err
	}
	c.Seconds = time.Since(start).Seconds()
	return c, nil
}

// verify says whether the sweep expired exactly the seeded expired lots,
// each once and whole, by its own count and by the database's.
func (c sweepCheck) verify(swept jobs.Result, expired int, credits int64) error {
	want := int64(expired)
	if swept["lots"] != want || c.Entries != want || c.Lots != want || c.SeededLots != want ||
		c.Credits != want*credits || c.Left != 0 {
		return fmt.Errorf("the sweep did not expire exactly the %d seeded expired lots: it counted %d; "+
			"the database has %d expire entries on %d lots (%d of them seeded as expired), %d credits "+
			"(want %d), and %d expired lots left", want, swept["lots"], c.Entries, c.Lots, c.SeededLots,
			c.Credits, want*credits, c.Left)
	}
	return nil
}
