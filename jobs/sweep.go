package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/creditsd/creditsd/entitlements/sqlite"
)

// SweepBatch is the most lots one write transaction of the expiry sweep
// walks, due or not, and the size of its first batch, counted on a read
// connection just before (a lot granted meanwhile into the stretch is
// walked too). The sweep walks the lots in the order they are stored
// (sqlite.DB.ExpireLots).
const SweepBatch = 10_000

// SweepBudget is how long one batch should hold the writer. Spends queue
// behind a batch, so their latency grows by about this much while a sweep
// runs. Batch sizes follow it because the time a lot takes varies with the
// data: where few lots are due, a batch only reads its pages; where many
// are, each is written off too. The budget counts only the batch's SQL in
// the writer: its commit, which writes and then checkpoints every page it
// dirtied, comes on top, and finding how far it walks happens on a reader
// (session 21). At 10 ms, spends beside a sweep of 1M spread lots had a
// p99 of 52–53 ms; at 5 ms, 28–34 ms (BENCHMARKS.md, session 7), and
// 30–40 ms since each batch is queued while the last one commits
// (session 20).
const SweepBudget = 5 * time.Millisecond

// minSweepBatch keeps a sweep moving however slow each lot is.
const minSweepBatch = 50

// Expirer writes off expired lots; *sqlite.DB is one. A batch's result
// comes before its commit, which committed waits for (sqlite.DB.ExpireLotsAhead).
type Expirer interface {
	ExpireLotsAhead(ctx context.Context, asOf time.Time, after sqlite.LotKey, walk int, actor string) (
		b sqlite.Expired, committed func() error, err error)
}

// ExpirySweep writes off every lot that expired at or before now with
// credits left, walking at most batch lots per write transaction (as a
// reader counted them just before), each batch sized from the last so that
// it holds the writer about SweepBudget. It releases the writer between
// batches and stops between them once ctx is done. Running it again
// changes nothing; balances never wait for it.
//
// In the server it queues each batch as soon as the one before has run
// (once a reader has found how far it walks), while that one's commit is
// still under way, so that the writer's next commit can carry it instead
// of going by without it (sqlite.DB.ExpireLotsAhead). Its Result counts
// only batches whose commit held, and it returns only once none is left
// in flight.
//
// yield, when set, waits for each batch's commit and then pauses for as
// long as the batch took. A sweep in its own process (`creditsd jobs run`)
// needs it: SQLite's write lock goes to whoever asks as it is freed, and
// the other process only polls for it (its busy handler sleeps), so
// without pauses the sweep would take every turn and hold spends up. The
// same holds the other way: a server writing without a break takes the
// lock again at each commit, so under heavy load each batch of the sweep
// may wait seconds for it (2.8 s at most in an audit's minute beside eight
// goroutines spending flat out, against the 10 s busy timeout). In the
// server the batches queue with the spends, so no pause.
func ExpirySweep(store Expirer, batch int, yield bool) Func {
	return func(ctx context.Context, now time.Time) (Result, error) {
		run := sweepRun{res: Result{"lots": 0, "credits": 0, "batches": 0}}
		batch = max(batch, 1) // a batch of 0 would never finish
		size := batch
		var after sqlite.LotKey
		for {
			if err := ctx.Err(); err != nil {
				return run.finish(err)
			}
			start := time.Now()
			b, committed, err := store.ExpireLotsAhead(ctx, now, after, size, "job:"+ExpirySweepName)
			if err != nil {
				return run.finish(err)
			}
			if err := run.hold(b, committed); err != nil {
				return run.finish(err)
			}
			if yield {
				if err := run.settle(); err != nil {
					return run.finish(err)
				}
				pause(ctx, time.Since(start))
			}
			if b.End {
				return run.finish(nil)
			}
			if !walksOn(after, b.Next) {
				// A walk that does not move would hold the writer in turns forever.
				return run.finish(fmt.Errorf("expiry sweep: a batch stopped at %v, not after %v", b.Next, after))
			}
			after = b.Next
			size = nextSweepBatch(size, b.Held, batch)
		}
	}
}

// sweepRun is a sweep's tally and the batch it has in flight, if any.
type sweepRun struct {
	res       Result
	pending   sqlite.Expired
	committed func() error // the pending batch's; nil once settled
}

// settle waits for the pending batch's commit and counts the batch if it
// held.
func (r *sweepRun) settle() error {
	if r.committed == nil {
		return nil
	}
	err := r.committed()
	r.committed = nil
	if err == nil {
		r.res["batches"]++
		r.res["lots"] += r.pending.Lots
		r.res["credits"] += r.pending.Credits
	}
	return err
}

// hold makes b the batch in flight once the one before it, which
// committed while b ran, has settled; it returns that one's commit error.
func (r *sweepRun) hold(b sqlite.Expired, committed func() error) error {
	err := r.settle()
	r.pending, r.committed = b, committed
	return err
}

// finish settles the batch in flight and ends the run with err and the
// commit's error, if any.
func (r *sweepRun) finish(err error) (Result, error) {
	if serr := r.settle(); serr != nil {
		err = errors.Join(err, serr)
	}
	return r.res, err
}

// walksOn says whether next comes after after in the lots' key order
// (SQLite compares TEXT bytewise, as Go compares strings).
func walksOn(after, next sqlite.LotKey) bool {
	return next.UserID > after.UserID || next.UserID == after.UserID && next.LotID > after.LotID
}

// nextSweepBatch scales size by how far the last batch's time in the writer
// (held) was from SweepBudget, at most doubling per batch so that one quick
// batch does not overshoot, and stays within minSweepBatch and most.
func nextSweepBatch(size int, held time.Duration, most int) int {
	if held <= 0 {
		return size
	}
	next := int(float64(size) * float64(SweepBudget) / float64(held))
	return max(min(next, 2*size, most), min(minSweepBatch, most))
}

// pause sleeps for d or until ctx is done.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
