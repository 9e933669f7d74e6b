package jobs

import (
	"context"
	"time"

	"github.com/creditsd/creditsd/entitlements/sqlite"
)

// SweepBatch is how many lots one write transaction of the expiry sweep
// expires: small, so that a spend waiting for the writer waits little.
const SweepBatch = 1000

// Expirer writes off expired lots; *sqlite.DB is one.
type Expirer interface {
	ExpireLots(ctx context.Context, asOf time.Time, limit int, actor string) (sqlite.Expired, error)
}

// ExpirySweep writes off every lot that expired at or before now with
// credits left, batch lots per write transaction, releasing the writer
// between batches and stopping between them once ctx is done. Running it
// again changes nothing; balances never wait for it.
//
// yield, when set, pauses after each batch for as long as the batch took.
// A sweep in its own process (`creditsd jobs run`) needs it: SQLite gives
// its write lock to whoever asks first, and a live server only polls for
// it, so without pauses the sweep would take every turn and hold spends
// up. In the server the batches queue with the spends, so no pause.
func ExpirySweep(store Expirer, batch int, yield bool) Func {
	return func(ctx context.Context, now time.Time) (Result, error) {
		res := Result{"lots": 0, "credits": 0, "batches": 0}
		for {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			start := time.Now()
			b, err := store.ExpireLots(ctx, now, batch, "job:"+ExpirySweepName)
			if err != nil {
				return res, err
			}
			if yield {
				pause(ctx, time.Since(start))
			}
			res["batches"]++
			res["lots"] += b.Lots
			res["credits"] += b.Credits
			if b.Lots < int64(batch) {
				return res, nil
			}
		}
	}
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
