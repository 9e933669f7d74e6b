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
func ExpirySweep(store Expirer, batch int) Func {
	return func(ctx context.Context, now time.Time) (Result, error) {
		res := Result{"lots": 0, "credits": 0, "batches": 0}
		for {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			b, err := store.ExpireLots(ctx, now, batch, "job:"+ExpirySweepName)
			if err != nil {
				return res, err
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
