package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
)

// What a refund bills never depends on when the expiry sweep ran: two
// worlds take the same random events on a pack that expired part spent
// (generations reversed into it, refunds full and prorated, their
// revisions and reversals, grants that pay debt), one sweeping after
// every event, and every balance and debt agree after every event.
func TestRefundsDoNotDependOnTheSweep(t *testing.T) {
	seeds := uint64(60) // a refund blind to what the sweep wrote off (expiredFrom) fails about one seed in six
	if propRace {
		seeds = 8
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { refundsBesideSweeps(t, seed) })
	}
}

// sweepWorld is one side of TestRefundsDoNotDependOnTheSweep.
type sweepWorld struct {
	db     *DB
	clock  *clock
	spends []string // alice's spends of the pack, unreversed
	sweeps bool
}

func refundsBesideSweeps(t *testing.T, seed uint64) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(seed, 26))
	policy := []string{entitlements.RefundDebt, entitlements.RefundForgive}[r.IntN(2)]
	var worlds [2]*sweepWorld
	for i := range worlds {
		db := openWithAlice(t)
		db.Policy.Refund = policy
		worlds[i] = &sweepWorld{db: db, clock: newClock(db, testNow), sweeps: i == 1}
	}
	p := purchase("530", tokens.Token("alice"))
	signed := 0 // Apple's versions of the transaction, each newer
	version := func(edit func(*entitlements.Purchase)) entitlements.Purchase {
		signed++
		return resign(p, time.Duration(signed)*time.Minute, edit)
	}
	step := func(what string, do func(w *sweepWorld)) {
		t.Helper()
		var seen [2]entitlements.Credits
		for i, w := range worlds {
			do(w)
			if w.sweeps {
				_, err := w.db.ExpireLots(ctx, w.clock.now(), LotKey{}, 100, "job:expiry-sweep")
				require.NoError(t, err)
			}
			e := entitlementOf(t, w.db, "alice").Credits
			seen[i] = entitlements.Credits{Balance: e.Balance, Debt: e.Debt}
		}
		require.Equal(t, seen[0], seen[1], "after %s (policy %s)", what, policy)
	}

	step("the purchase", func(w *sweepWorld) { webhook(t, w.db, "n0", p) })
	step("the day's allowance", func(w *sweepWorld) { spendAll(t, w.db, "alice", "a", 30) })
	for i, left := 0, int64(10); i < 2 && left > 0; i++ {
		n := 1 + r.Int64N(left)
		left -= n
		step(fmt.Sprintf("a spend of %d", n), func(w *sweepWorld) {
			sp, _, _, err := w.db.Spend(ctx, spendReq("alice", fmt.Sprintf("s%d", i), n))
			require.NoError(t, err)
			w.spends = append(w.spends, sp.SpendID)
		})
	}
	step("the pack's expiry", func(w *sweepWorld) { w.clock.set(p.PurchaseDate.AddDate(1, 0, 1)) })
	for i := range 6 {
		switch r.IntN(4) {
		case 0:
			if len(worlds[0].spends) == 0 {
				continue
			}
			k := r.IntN(len(worlds[0].spends))
			step("a spend reversed into the expired pack", func(w *sweepWorld) {
				_, _, _, err := w.db.Reverse(ctx, "alice", tokens.Token("alice"), w.spends[k], "service:test")
				require.NoError(t, err)
				w.spends = append(w.spends[:k], w.spends[k+1:]...)
			})
		case 1:
			share := []int64{100000, 20000, 50000, 80000}[r.IntN(4)]
			v := version(prorated(share))
			step(fmt.Sprintf("a refund of %d/100000", share), func(w *sweepWorld) { webhook(t, w.db, fmt.Sprint("r", i), v) })
		case 2:
			v := version(reinstated)
			step("the refund reversed", func(w *sweepWorld) { webhook(t, w.db, fmt.Sprint("v", i), v) })
		case 3:
			step("a grant that pays debt", func(w *sweepWorld) { grantAdmin(t, w.db, "alice", fmt.Sprint("g", i), 3, nil) })
		}
	}
}
