package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
)

// resign is Apple's newer signature of a transaction for a later event.
func resign(p entitlements.Purchase, after time.Duration, edit func(*entitlements.Purchase)) entitlements.Purchase {
	p.SignedDate = p.SignedDate.Add(after)
	edit(&p)
	return p
}

func refunded(p *entitlements.Purchase) { p.RevocationDate = testNow }

func reinstated(p *entitlements.Purchase) {
	p.RevocationDate, p.RevocationType, p.RevocationPercent = time.Time{}, "", 0
}

func entitlementOf(t testing.TB, db *DB, user string) entitlements.Entitlement {
	return entitlements.Compute(state(t, db, user), db.Policy.Allowance)
}

func spendAll(t testing.TB, db *DB, user, key string, credits int64) {
	t.Helper()
	_, _, _, err := db.Spend(context.Background(), spendReq(user, key, credits))
	require.NoError(t, err)
}

func TestRefundUnspentPack(t *testing.T) {
	db := openWithAlice(t)
	p := purchase("500", tokens.Token("alice"))
	webhook(t, db, "n1", p)
	require.Equal(t, int64(10), entitlementOf(t, db, "alice").Credits.Balance)
	webhook(t, db, "n2", resign(p, time.Minute, refunded))
	e := entitlementOf(t, db, "alice")
	require.Equal(t, int64(0), e.Credits.Balance)
	require.Equal(t, int64(0), e.Credits.Debt)
	webhook(t, db, "n2-again", resign(p, time.Minute, refunded))
	require.Equal(t, int64(0), entitlementOf(t, db, "alice").Credits.Debt, "the same revocation applies once")
}

func TestRefundSpentPackCreatesDebt(t *testing.T) {
	db := openWithAlice(t)
	ctx := context.Background()
	p := purchase("501", tokens.Token("alice"))
	webhook(t, db, "n1", p)
	spendAll(t, db, "alice", "s1", 30+6) // the allowance, then 6 of the pack
	webhook(t, db, "n2", resign(p, time.Minute, refunded))

	e := entitlementOf(t, db, "alice")
	require.Equal(t, int64(0), e.Credits.Balance, "the unspent 4 are removed")
	require.Equal(t, int64(6), e.Credits.Debt, "the spent 6 are owed")
	require.Equal(t, int64(0), e.Spendable)
	_, _, _, err := db.Spend(ctx, spendReq("alice", "s2", 1))
	require.Equal(t, "debt_outstanding", entitlements.ErrorCode(err), "no spending while in debt")

	grantAdmin(t, db, "alice", "g", 10, nil)
	e = entitlementOf(t, db, "alice")
	require.Equal(t, int64(0), e.Credits.Debt, "a later grant pays the debt first")
	require.Equal(t, int64(4), e.Credits.Balance)
	kinds := ledgerKinds(t, db, "alice")
	require.Contains(t, kinds, "refund")
	require.Contains(t, kinds, "debt")
	require.Contains(t, kinds, "debt_paid")
}

func TestRefundForgivePolicy(t *testing.T) {
	db := openWithAlice(t)
	db.Policy.Refund = entitlements.RefundForgive
	p := purchase("502", tokens.Token("alice"))
	webhook(t, db, "n1", p)
	spendAll(t, db, "alice", "s1", 30+6)
	webhook(t, db, "n2", resign(p, time.Minute, refunded))
	e := entitlementOf(t, db, "alice")
	require.Equal(t, int64(0), e.Credits.Debt, "the spent part is written off")
	require.Equal(t, int64(0), e.Credits.Balance)
	grantAdmin(t, db, "alice", "g", 1, nil)
	spendAll(t, db, "alice", "s2", 1) // no debt stands in the way
}

func TestRefundProrated(t *testing.T) {
	db := openWithAlice(t)
	p := purchase("503", tokens.Token("alice"))
	p.Quantity = 3 // 30 credits
	webhook(t, db, "n1", p)
	webhook(t, db, "n2", resign(p, time.Minute, func(p *entitlements.Purchase) {
		p.RevocationDate, p.RevocationType, p.RevocationPercent = testNow, "REFUND_PRORATED", 50000
	}))
	require.Equal(t, int64(15), entitlementOf(t, db, "alice").Credits.Balance, "half of 30 revoked: %v", ledgerKinds(t, db, "alice"))
}

// Apple refunds whole units of a purchase of several, and the refund
// revokes them, whatever the share's credits round to: 2 of 3 packs of
// 50,000 (66.667 %, 100,000.5 of 150,000 credits) revokes 100,000, not
// 100,001; 2 of 7 packs of 16,667 (28.571 %, 33,333.49999 of 116,669)
// revokes 33,334, not 33,333. A revision to another share revokes its
// units in turn.
func TestRefundProratedWholeUnitsOfBigPacks(t *testing.T) {
	for _, c := range []struct {
		name     string
		product  string
		quantity int64
		pcts     []int64 // each a newer version's revocationPercentage
		want     []int64 // the balance after each
	}{
		{"2 of 3 packs of 50,000", "big", 3, []int64{66667}, []int64{50000}},
		{"2 of 7 packs of 16,667", "bulk", 7, []int64{28571}, []int64{5 * 16667}},
		// 1 of 3 is 49,999.5 of 150,000 credits: 49,999 is Apple's rounding too.
		{"1 of 3 packs of 50,000, revised to 2", "big", 3, []int64{33333, 66667}, []int64{100000, 50000}},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := openWithAlice(t)
			p := purchase("504", tokens.Token("alice"))
			p.ProductID, p.Quantity = c.product, c.quantity
			webhook(t, db, "n1", p)
			for i, pct := range c.pcts {
				p = resign(p, time.Minute, prorated(pct))
				webhook(t, db, fmt.Sprintf("n%d", i+2), p)
				require.Equal(t, c.want[i], entitlementOf(t, db, "alice").Credits.Balance, "at %d: the units not refunded stay", pct)
			}
		})
	}
}

// The units decide on every path a refund takes: a pack first seen
// refunded is granted with the units taken at once, and a refund reversed
// gives back the units it took, debt first.
func TestRefundUnitsOnEveryPath(t *testing.T) {
	twoOfSeven := prorated(28571)
	t.Run("refunded before its lot", func(t *testing.T) {
		db := openTest(t)
		p := purchase("901", tokens.Token("carol"))
		p.ProductID, p.Quantity = "bulk", 7
		webhook(t, db, "n1", resign(p, time.Minute, twoOfSeven))
		require.Equal(t, int64(7*16667-2*16667), balance(t, db, "carol"))
	})
	t.Run("reversed", func(t *testing.T) {
		db := openWithAlice(t)
		p := purchase("902", tokens.Token("alice"))
		p.ProductID, p.Quantity = "bulk", 7
		webhook(t, db, "n1", p)
		spendAll(t, db, "alice", "s1", 30+100000) // the allowance, then 100,000 of 116,669
		webhook(t, db, "n2", resign(p, time.Minute, twoOfSeven))
		e := entitlementOf(t, db, "alice")
		require.Equal(t, int64(2*16667-16669), e.Credits.Debt, "%v", ledgerKinds(t, db, "alice"))
		webhook(t, db, "n3", resign(p, 2*time.Minute, reinstated))
		e = entitlementOf(t, db, "alice")
		require.Zero(t, e.Credits.Debt)
		require.Equal(t, int64(16669), e.Credits.Balance)
	})
}

func prorated(share int64) func(*entitlements.Purchase) {
	return func(p *entitlements.Purchase) {
		p.RevocationDate, p.RevocationType, p.RevocationPercent = testNow, "REFUND_PRORATED", share
	}
}

// A newer version of a refunded pack's transaction that revokes another
// share of it revises the refund in force, either way; the same share
// again changes nothing, and a refund made before migration 0016, which
// does not know its share, stays as it is.
func TestRefundRevisedToAnotherShare(t *testing.T) {
	for name, c := range map[string]struct {
		first, then func(*entitlements.Purchase)
		want        int64
	}{
		"prorated, then all":    {prorated(50000), refunded, 0},
		"all, then prorated":    {refunded, prorated(30000), 7},
		"the same share again":  {prorated(50000), prorated(50000), 5},
		"a larger prorated one": {prorated(20000), prorated(90000), 1},
	} {
		t.Run(name, func(t *testing.T) {
			db := openWithAlice(t)
			p := purchase("510", tokens.Token("alice"))
			webhook(t, db, "n1", p)
			webhook(t, db, "n2", resign(p, time.Minute, c.first))
			webhook(t, db, "n3", resign(p, 2*time.Minute, c.then))
			require.Equal(t, c.want, entitlementOf(t, db, "alice").Credits.Balance, "%v", ledgerKinds(t, db, "alice"))
			webhook(t, db, "n4", resign(p, 3*time.Minute, reinstated))
			require.Equal(t, int64(10), entitlementOf(t, db, "alice").Credits.Balance, "and Apple's reversal restores it all")
		})
	}
	t.Run("a refund made before 0016", func(t *testing.T) {
		db := openWithAlice(t)
		p := purchase("511", tokens.Token("alice"))
		webhook(t, db, "n1", p)
		webhook(t, db, "n2", resign(p, time.Minute, prorated(50000)))
		_, err := writeExec(db, `UPDATE refunds SET percent = NULL`)
		require.NoError(t, err)
		webhook(t, db, "n3", resign(p, 2*time.Minute, refunded))
		require.Equal(t, int64(5), entitlementOf(t, db, "alice").Credits.Balance, "its share unknown: left as it was")
	})
}

// A revision ends where a refund of the new share would have: the credits
// that paid the old refund's debt pay the new one first, even once they
// have expired, so the user is not billed twice; it keeps the refund
// policy the refund was made under; and a payer the user already held when
// the refund began counts towards a restored lot's life.
func TestRefundRevisionEndsAsTheNewShare(t *testing.T) {
	t.Run("the old payers pay the new debt, expired or not", func(t *testing.T) {
		db := openWithAlice(t)
		clk := newClock(db, testNow)
		p := spentAndRefunded(t, db, "512") // owes 10
		soon := testNow.AddDate(0, 0, 10)
		grantAdmin(t, db, "alice", "g", 10, &soon) // pays them
		clk.set(testNow.AddDate(1, 0, 1))          // the pack and the grant have expired
		webhook(t, db, "n3", resign(p, 2*time.Minute, prorated(50000)))
		e := entitlementOf(t, db, "alice")
		require.Zero(t, e.Credits.Debt, "a 50 %% refund from the start: the grant paid its 5 before it expired")
		require.Zero(t, e.Credits.Balance, "and the other 5 expired with the grant")
	})
	t.Run("under the policy the refund was made with", func(t *testing.T) {
		db := openWithAlice(t)
		p := spentAndRefunded(t, db, "513") // owes 10
		db.Policy.Refund = entitlements.RefundForgive
		webhook(t, db, "n3", resign(p, 2*time.Minute, prorated(50000)))
		require.Equal(t, int64(5), entitlementOf(t, db, "alice").Credits.Debt)
	})
	t.Run("another percentage, the same credits", func(t *testing.T) {
		db := openWithAlice(t)
		p := purchase("514", tokens.Token("alice"))
		webhook(t, db, "n1", p)
		webhook(t, db, "n2", resign(p, time.Minute, prorated(33000)))
		before := ledgerKinds(t, db, "alice")
		webhook(t, db, "n3", resign(p, 2*time.Minute, prorated(33900))) // 3 of 10 either way
		require.Equal(t, before, ledgerKinds(t, db, "alice"), "nothing redone")
		require.Equal(t, int64(7), entitlementOf(t, db, "alice").Credits.Balance)
	})
	t.Run("another percentage, the same units", func(t *testing.T) {
		db := openWithAlice(t)
		p := purchase("516", tokens.Token("alice"))
		p.ProductID, p.Quantity = "big", 64
		webhook(t, db, "n1", p)
		webhook(t, db, "n2", resign(p, time.Minute, prorated(1562)))
		before := ledgerKinds(t, db, "alice")
		webhook(t, db, "n3", resign(p, 2*time.Minute, prorated(1563))) // 1 of 64 is 1.5625 %: either is 1 unit
		require.Equal(t, before, ledgerKinds(t, db, "alice"), "nothing redone")
		require.Equal(t, 63*int64(50000), entitlementOf(t, db, "alice").Credits.Balance)
	})
	t.Run("a payer held when the refund began", func(t *testing.T) {
		db := openWithAlice(t)
		p := purchase("515", tokens.Token("alice"))
		webhook(t, db, "n1", p)
		spendAll(t, db, "alice", "s1", 30+10)
		grantAdmin(t, db, "alice", "forever", 10, nil)
		webhook(t, db, "n2", resign(p, time.Minute, refunded)) // the grant pays the 10 at once
		webhook(t, db, "n3", resign(p, 2*time.Minute, reinstated))
		lots := entitlementOf(t, db, "alice").Credits.Lots
		require.Len(t, lots, 1)
		require.Nil(t, lots[0].ExpiresAt, "paid by a grant that never expires")
	})
}

func TestRefundReversedRestoresExactly(t *testing.T) {
	t.Run("debt still owed is cancelled, the removed part goes back", func(t *testing.T) {
		db := openWithAlice(t)
		p := purchase("504", tokens.Token("alice"))
		webhook(t, db, "n1", p)
		spendAll(t, db, "alice", "s1", 30+6)
		webhook(t, db, "n2", resign(p, time.Minute, refunded))
		webhook(t, db, "n3", resign(p, 2*time.Minute, reinstated))
		e := entitlementOf(t, db, "alice")
		require.Equal(t, int64(0), e.Credits.Debt)
		require.Equal(t, int64(4), e.Credits.Balance, "as before the refund")
		require.Equal(t, int64(4), e.Credits.Lots[0].Remaining)
		require.Equal(t, p.PurchaseDate.AddDate(1, 0, 0), *e.Credits.Lots[0].ExpiresAt, "with its original expiry")
	})
	t.Run("debt already paid comes back as credits", func(t *testing.T) {
		db := openWithAlice(t)
		p := purchase("505", tokens.Token("alice"))
		webhook(t, db, "n1", p)
		spendAll(t, db, "alice", "s1", 30+6)
		webhook(t, db, "n2", resign(p, time.Minute, refunded))
		grantAdmin(t, db, "alice", "g", 10, nil) // pays the 6 of debt
		webhook(t, db, "n3", resign(p, 2*time.Minute, reinstated))
		e := entitlementOf(t, db, "alice")
		require.Equal(t, int64(0), e.Credits.Debt)
		require.Equal(t, int64(4+10), e.Credits.Balance, "nothing lost: the pack's 4 plus the grant's 10")
	})
	t.Run("out of order: an older refund after the reversal changes nothing", func(t *testing.T) {
		db := openWithAlice(t)
		p := purchase("506", tokens.Token("alice"))
		webhook(t, db, "n1", p)
		webhook(t, db, "n3", resign(p, 2*time.Minute, reinstated))
		webhook(t, db, "n2", resign(p, time.Minute, refunded))
		require.Equal(t, int64(10), entitlementOf(t, db, "alice").Credits.Balance)
	})
}

func TestReverseIntoRefundedPackPaysDebt(t *testing.T) {
	db := openWithAlice(t)
	ctx := context.Background()
	p := purchase("507", tokens.Token("alice"))
	webhook(t, db, "n1", p)
	sp, _, _, err := db.Spend(ctx, spendReq("alice", "s1", 30+6))
	require.NoError(t, err)
	webhook(t, db, "n2", resign(p, time.Minute, refunded))
	require.Equal(t, int64(6), entitlementOf(t, db, "alice").Credits.Debt)
	_, _, _, err = db.Reverse(ctx, "alice", tokens.Token("alice"), sp.SpendID, "service:test")
	require.NoError(t, err)
	e := entitlementOf(t, db, "alice")
	require.Equal(t, int64(0), e.Credits.Debt, "the failed generation's credits pay what the refund made owed")
	require.Equal(t, int64(0), e.Credits.Balance, "and do not come back to life in a refunded pack")
	require.Equal(t, int64(30), e.Allowance.Remaining)
}

// Under refund_policy forgive, a spend reversed into a fully refunded pack
// does not revive the credits the refund wrote off: the refund would have
// removed them had the spend never taken them, so they are removed now.
func TestReverseIntoRefundedPackForgiven(t *testing.T) {
	db := openWithAlice(t)
	db.Policy.Refund = entitlements.RefundForgive
	ctx := context.Background()
	p := purchase("509", tokens.Token("alice"))
	webhook(t, db, "n1", p)
	sp, _, _, err := db.Spend(ctx, spendReq("alice", "s1", 30+6)) // the allowance, then 6 of the pack
	require.NoError(t, err)
	webhook(t, db, "n2", resign(p, time.Minute, refunded)) // 4 removed, 6 written off
	require.Equal(t, int64(0), entitlementOf(t, db, "alice").Credits.Debt)
	_, _, _, err = db.Reverse(ctx, "alice", tokens.Token("alice"), sp.SpendID, "service:test")
	require.NoError(t, err)
	e := entitlementOf(t, db, "alice")
	require.Equal(t, int64(0), e.Credits.Balance, "the written-off 6 do not come back to life in a refunded pack")
	require.Equal(t, int64(0), e.Credits.Debt)
	require.Equal(t, int64(30), e.Allowance.Remaining)
}

// A spend reversed into a refunded pack whose debt other credits already
// paid gives those credits back with their life, as if the generation had
// never been charged: the refund would have removed the pack's credits
// and left the paying grant whole. They stayed in the refunded pack and
// expired with it, at once when it had expired already.
func TestReverseIntoRefundedPackWhoseDebtOthersPaid(t *testing.T) {
	packExpiry := testNow.Add(-time.Hour).AddDate(1, 0, 0) // purchase() bought an hour before testNow
	for name, reverseAt := range map[string]time.Time{
		"before the pack expires": testNow.Add(time.Minute),
		"after the pack expired":  packExpiry.Add(time.Minute),
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := openWithAlice(t)
			clk := newClock(db, testNow)
			p := purchase("520", tokens.Token("alice"))
			webhook(t, db, "n1", p)
			sp, _, _, err := db.Spend(ctx, spendReq("alice", "s1", 30+10))
			require.NoError(t, err)
			webhook(t, db, "n2", resign(p, time.Minute, refunded)) // owes 10
			grantAdmin(t, db, "alice", "g", 10, nil)               // pays them
			require.Equal(t, int64(0), entitlementOf(t, db, "alice").Credits.Balance)

			clk.set(reverseAt)
			_, _, _, err = db.Reverse(ctx, "alice", tokens.Token("alice"), sp.SpendID, "service:test")
			require.NoError(t, err)
			clk.set(packExpiry.AddDate(1, 0, 0))
			e := entitlementOf(t, db, "alice")
			require.Equal(t, int64(10), e.Credits.Balance, "the grant's 10 come back, and live as it would have")
			require.Equal(t, int64(0), e.Credits.Debt)
			require.Len(t, e.Credits.Lots, 1)
			require.Equal(t, entitlements.SourceRestored, e.Credits.Lots[0].Source)
			require.Nil(t, e.Credits.Lots[0].ExpiresAt)

			// Apple reverses the refund: the pack gets its 10 back, and the
			// restored lot is not given twice.
			webhook(t, db, "n3", resign(p, 2*time.Minute, reinstated))
			require.Equal(t, []string{"admin 0", "app_store 10", "restored 10"},
				queryStrings(t, db, `SELECT source || ' ' || remaining FROM lots ORDER BY source`))
			require.Equal(t, int64(10), entitlementOf(t, db, "alice").Credits.Balance, "the pack's 10 have expired with it")
		})
	}
}

// The debt that other lots paid comes back, when Apple reverses the
// refund, living as long as the credits that paid it would have: a grant
// that never expires pays, and its credits do not come back expired with
// the refunded pack.
func TestRefundReversedRestoresWhatPaidTheDebtWithItsLife(t *testing.T) {
	packExpiry := testNow.Add(-time.Hour).AddDate(1, 0, 0) // purchase() bought an hour before testNow
	cases := map[string]struct {
		payer, want *time.Time // the paying grant's expiry and the restored lot's; nil: never
	}{
		"a payer that never expires":           {payer: nil, want: nil},
		"a payer that outlives the pack":       {payer: at(packExpiry.AddDate(0, 6, 0)), want: at(packExpiry.AddDate(0, 6, 0))},
		"a payer that expires before the pack": {payer: at(testNow.AddDate(0, 1, 0)), want: at(packExpiry)},
	}
	for name, c := range cases {
		// legacy: a refund made before migration 0016 finds its payers by time.
		for _, legacy := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, legacy %t", name, legacy), func(t *testing.T) {
				db := openWithAlice(t)
				clk := newClock(db, testNow)
				p := spentAndRefunded(t, db, "509")          // owes 10
				grantAdmin(t, db, "alice", "g", 10, c.payer) // pays them
				require.Equal(t, []string{""}, queryStrings(t, db, `SELECT ref FROM entries WHERE kind = 'debt_paid'`),
					"settleDebt's payments name no ref: spentFromSQL and restoredPayersSQL tell them apart by it")
				if legacy {
					_, err := writeExec(db, `UPDATE refunds SET after_entry = NULL`)
					require.NoError(t, err)
				}
				webhook(t, db, "n3", resign(p, 2*time.Minute, reinstated))

				e := entitlementOf(t, db, "alice")
				require.Equal(t, int64(10), e.Credits.Balance)
				require.Len(t, e.Credits.Lots, 1, "the restored lot: the pack and the grant are empty")
				require.Equal(t, c.want, e.Credits.Lots[0].ExpiresAt)

				clk.set(packExpiry.Add(time.Minute)) // the pack itself has expired
				want := int64(10)
				if c.want != nil && !c.want.After(clk.now()) {
					want = 0
				}
				require.Equal(t, want, entitlementOf(t, db, "alice").Credits.Balance)
			})
		}
	}
}

// Only the debt payments since the refund began count towards its
// restored lot's life, and not the credits another refund's own pack paid
// back to it (a spend reversed into that refunded pack): those go back to
// their pack when that refund is reversed.
func TestRestoredLotCountsOnlyThisRefundsPayers(t *testing.T) {
	later := func(id string, after time.Duration) entitlements.Purchase { // bought after the first pack
		p := purchase(id, tokens.Token("alice"))
		p.PurchaseDate, p.SignedDate = p.PurchaseDate.Add(after), p.SignedDate.Add(after)
		return p
	}
	t.Run("payments before the refund began", func(t *testing.T) {
		db := openWithAlice(t)
		p1, p2 := purchase("520", tokens.Token("alice")), later("521", time.Minute)
		webhook(t, db, "n1", p1)
		webhook(t, db, "n2", p2)
		spendAll(t, db, "alice", "s1", 30+20)
		webhook(t, db, "n3", resign(p1, time.Minute, refunded)) // owes 10
		grantAdmin(t, db, "alice", "forever", 10, nil)          // pays p1's debt, never expires
		webhook(t, db, "n4", resign(p2, time.Minute, refunded)) // owes 10 again
		soon := testNow.AddDate(0, 0, 10)
		grantAdmin(t, db, "alice", "soon", 10, &soon) // pays p2's debt
		webhook(t, db, "n5", resign(p2, 2*time.Minute, reinstated))
		lots := entitlementOf(t, db, "alice").Credits.Lots
		require.Len(t, lots, 1)
		require.Equal(t, p2.PurchaseDate.AddDate(1, 0, 0), *lots[0].ExpiresAt,
			"p2's own expiry: the grant that never expires paid before p2's refund began")
	})
	t.Run("another pack's own debt paid back to it", func(t *testing.T) {
		db := openWithAlice(t)
		ctx := context.Background()
		p1, p0 := purchase("522", tokens.Token("alice")), later("523", 30*24*time.Hour) // p0 outlives p1
		webhook(t, db, "n1", p1)
		webhook(t, db, "n2", p0)
		spendAll(t, db, "alice", "s1", 30+10) // the allowance and p1, the sooner to expire
		fromP0, _, _, err := db.Spend(ctx, spendReq("alice", "s2", 10))
		require.NoError(t, err)
		webhook(t, db, "n3", resign(p1, time.Minute, refunded)) // owes 10
		webhook(t, db, "n4", resign(p0, time.Minute, refunded)) // owes 20
		_, _, _, err = db.Reverse(ctx, "alice", tokens.Token("alice"), fromP0.SpendID, "service:test")
		require.NoError(t, err) // p0's 10 come back and pay p0's own refund's debt
		soon := testNow.AddDate(0, 0, 10)
		grantAdmin(t, db, "alice", "soon", 10, &soon) // pays p1's
		webhook(t, db, "n5", resign(p1, 2*time.Minute, reinstated))
		var restored []entitlements.Lot
		for _, l := range entitlementOf(t, db, "alice").Credits.Lots {
			if l.Source == entitlements.SourceRestored {
				restored = append(restored, l)
			}
		}
		require.Len(t, restored, 1)
		require.Equal(t, p1.PurchaseDate.AddDate(1, 0, 0), *restored[0].ExpiresAt, "p1's own: p0 paid only its own refund")
	})
}

// A refund's own debt, paid back from its pack by a reversed spend, is not
// "spent" once Apple reverses that refund and the credits are back in the
// pack: a later refund of the pack, after it expired unused, bills nothing.
func TestRefundAgainBillsOnlyWhatWasConsumed(t *testing.T) {
	db := openWithAlice(t)
	c := newClock(db, testNow)
	ctx := context.Background()
	p := purchase("508", tokens.Token("alice"))
	webhook(t, db, "n1", p)
	sp, _, _, err := db.Spend(ctx, spendReq("alice", "s1", 30+10))
	require.NoError(t, err)
	webhook(t, db, "n2", resign(p, time.Minute, refunded)) // owes 10
	_, _, _, err = db.Reverse(ctx, "alice", tokens.Token("alice"), sp.SpendID, "service:test")
	require.NoError(t, err) // the returned 10 pay the refund's own debt
	webhook(t, db, "n3", resign(p, 2*time.Minute, reinstated))
	require.Equal(t, int64(10), entitlementOf(t, db, "alice").Credits.Balance, "the pack holds its 10 again")

	c.set(testNow.AddDate(1, 0, 1)) // the pack expires unspent, and is swept
	_, err = db.ExpireLots(ctx, c.now(), LotKey{}, 100, "job:expiry-sweep")
	require.NoError(t, err)
	webhook(t, db, "n4", resign(p, 3*time.Minute, refunded))
	require.Zero(t, entitlementOf(t, db, "alice").Credits.Debt, "nothing of the pack was consumed")
}

// A prorated refund of a pack that expired part spent bills the same
// whether or not the sweep has written the rest off yet: the expired
// credits were never spent, so the refund takes what it revokes from them
// first, as from any unspent credits. Its reversal ends the same too. A
// pack is expired from its expiry's very millisecond (Lot.Expired, the
// sweep), so a refund at that instant already counts what the sweep wrote
// off.
func TestRefundOfAnExpiredPackIsTheSameSweptOrNot(t *testing.T) {
	packExpiry := testNow.Add(-time.Hour).AddDate(1, 0, 0) // purchase() bought an hour before testNow
	for name, at := range map[string]time.Time{
		"a day past the pack's expiry": packExpiry.AddDate(0, 0, 1),
		"at the pack's expiry":         packExpiry,
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			type outcome struct{ debt, balance, owedAfterReversal int64 }
			got := map[bool]outcome{}
			for _, swept := range []bool{false, true} {
				db := openWithAlice(t)
				c := newClock(db, testNow)
				p := purchase("520", tokens.Token("alice"))
				webhook(t, db, "n1", p)
				spendAll(t, db, "alice", "s1", 30+3) // the allowance, then 3 of the pack
				c.set(at)
				if swept {
					_, err := db.ExpireLots(ctx, c.now(), LotKey{}, 100, "job:expiry-sweep")
					require.NoError(t, err)
					require.Contains(t, ledgerKinds(t, db, "alice"), "expire", "the sweep wrote the 7 off")
				}
				webhook(t, db, "n2", resign(p, time.Minute, prorated(50000))) // 5 of 10 revoked
				e := entitlementOf(t, db, "alice")
				o := outcome{debt: e.Credits.Debt, balance: e.Credits.Balance}
				webhook(t, db, "n3", resign(p, 2*time.Minute, reinstated))
				o.owedAfterReversal = entitlementOf(t, db, "alice").Credits.Debt
				got[swept] = o
			}
			require.Equal(t, outcome{}, got[false], "the 5 revoked come from the 7 that expired unspent")
			require.Equal(t, got[false], got[true], "swept or not, the refund bills the same")
		})
	}
}

// spentAndRefunded is a pack of 10 that alice bought, spent with her day's
// allowance, and Apple then refunded: she owes its 10 credits.
func spentAndRefunded(t testing.TB, db *DB, id string) entitlements.Purchase {
	t.Helper()
	p := purchase(id, tokens.Token("alice"))
	webhook(t, db, "n1", p)
	spendAll(t, db, "alice", "s1", 30+10)
	webhook(t, db, "n2", resign(p, time.Minute, refunded))
	return p
}

// openWithAlice is a test database where alice has already called, so her
// purchases are granted as they arrive.
func openWithAlice(t testing.TB) *DB {
	db := openTest(t)
	_ = state(t, db, "alice")
	return db
}

func ledgerKinds(t testing.TB, db *DB, user string) []string {
	entries, _, err := db.Ledger(context.Background(), user, tokens.Token(user), "service:ops", 0, 500)
	require.NoError(t, err)
	var kinds []string
	for _, e := range entries {
		kinds = append(kinds, e.Kind)
	}
	return kinds
}

// A refund that Apple reverses before the pack was granted still grants it,
// whether the lot waited for its user or the refund arrived first.
func TestRefundReversedBeforeTheLotExisted(t *testing.T) {
	t.Run("the user had not called yet", func(t *testing.T) {
		db := openTest(t)
		p := purchase("510", tokens.Token("ghost"))
		webhook(t, db, "n1", p)
		webhook(t, db, "n2", resign(p, time.Minute, refunded))
		webhook(t, db, "n3", resign(p, 2*time.Minute, reinstated))
		require.Equal(t, int64(10), entitlementOf(t, db, "ghost").Credits.Balance)
	})
	t.Run("the refund arrived before the charge", func(t *testing.T) {
		db := openWithAlice(t)
		p := purchase("511", tokens.Token("alice"))
		webhook(t, db, "n2", resign(p, time.Minute, refunded))
		require.Equal(t, int64(0), entitlementOf(t, db, "alice").Credits.Balance)
		webhook(t, db, "n1", p) // the late ONE_TIME_CHARGE: older, changes nothing
		require.Equal(t, int64(0), entitlementOf(t, db, "alice").Credits.Balance)
		webhook(t, db, "n3", resign(p, 2*time.Minute, reinstated))
		require.Equal(t, int64(10), entitlementOf(t, db, "alice").Credits.Balance)
	})
}

func TestRecordNotificationSaysWhatItDid(t *testing.T) {
	db := openWithAlice(t)
	record := func(uuid string, p entitlements.Purchase) Recorded {
		rec, err := db.RecordNotification(context.Background(), Notification{UUID: uuid, Type: "ONE_TIME_CHARGE",
			SignedDate: p.SignedDate, JWS: "x", Source: "webhook", Outcome: "planned"},
			Effect{Purchase: &p, Grant: plan(t, p)})
		require.NoError(t, err)
		return rec
	}
	require.Equal(t, Recorded{Outcome: "granted"}, record("a", purchase("520", tokens.Token("alice"))))
	require.Equal(t, Recorded{Outcome: "pending_user"}, record("b", purchase("521", tokens.Token("nobody-yet"))))
	require.Equal(t, Recorded{Outcome: "pending_user", Duplicate: true}, record("b", purchase("521", tokens.Token("nobody-yet"))),
		"a duplicate answers what the first said")
	var stored string
	require.NoError(t, db.read.QueryRow(`SELECT outcome FROM notifications WHERE notification_uuid = 'b'`).Scan(&stored))
	require.Equal(t, "pending_user", stored)
}

// A restored lot's payers are found by a seek of the user's entries from
// the refund's start, not by reading every entry the user has.
func TestRestoredPayersSeekTheUsersEntries(t *testing.T) {
	db := openTest(t)
	plan := queryPlan(t, db, restoredExpirySQL, "alice", "lot_1", 7)
	require.Contains(t, plan, "SEARCH e USING INDEX entries_user (user_id=? AND entry_id>?)", plan)
	require.NotContains(t, plan, "SCAN", plan)
}

// A pack whose first version to arrive is already refunded in part earns
// its lot less the refund, whichever way the lot comes: at once for a
// known user, at the user's first call, or by the app's claim. Refunded in
// full, it earns nothing; the refund's reversal gives the rest back.
func TestRefundedInPartBeforeItsLot(t *testing.T) {
	thirdOfThree := func(p *entitlements.Purchase) {
		p.Quantity = 3
		p.RevocationDate, p.RevocationType, p.RevocationPercent = testNow, "REFUND_PRORATED", 33333
	}
	t.Run("known user", func(t *testing.T) {
		db := openWithAlice(t)
		p := resign(purchase("520", tokens.Token("alice")), time.Minute, thirdOfThree)
		rec, err := db.RecordNotification(context.Background(), Notification{UUID: "n1", Type: "ONE_TIME_CHARGE",
			SignedDate: p.SignedDate, TransactionID: p.TransactionID, JWS: "outer", Source: "webhook"},
			Effect{Purchase: &p, Grant: plan(t, p)})
		require.NoError(t, err)
		require.Equal(t, "revoked", rec.Outcome, "the webhook answers that a refund is in force")
		require.Equal(t, int64(20), balance(t, db, "alice"), "30 credits, 10 refunded")
		webhook(t, db, "n2", resign(p, 2*time.Minute, reinstated))
		require.Equal(t, int64(30), balance(t, db, "alice"), "the reversal gives the 10 back")
	})
	t.Run("user's first call", func(t *testing.T) {
		db := openTest(t)
		webhook(t, db, "n1", resign(purchase("521", tokens.Token("carol")), time.Minute, thirdOfThree))
		require.Equal(t, int64(20), balance(t, db, "carol"))
	})
	t.Run("the app's claim", func(t *testing.T) {
		db := openTest(t)
		p := resign(purchase("522", ""), time.Minute, thirdOfThree)
		webhook(t, db, "n1", p)
		require.True(t, gave(t, db, "dave", p))
		require.Equal(t, int64(20), balance(t, db, "dave"))
	})
	t.Run("refunded in full first, then in part", func(t *testing.T) {
		db := openTest(t)
		p := purchase("523", tokens.Token("erin"))
		p.Quantity = 3
		webhook(t, db, "n1", resign(p, time.Minute, refunded))
		require.Equal(t, int64(0), balance(t, db, "erin"), "refunded in full: nothing")
		webhook(t, db, "n2", resign(p, 2*time.Minute, thirdOfThree))
		require.Equal(t, int64(20), balance(t, db, "erin"), "Apple revised it to a third")
	})
}

// While the catalog does not sell a pack that waits for its user, a newer
// version that refunds it in full, or ends such a refund, makes it
// unknown_product, to be planned again, rather than keeping a plan it
// contradicts; one that refunds it in part, ends that, or changes the
// share keeps its plan, and the share goes to its lot.
func TestRefundShareChangesUnderAnUnknownPlan(t *testing.T) {
	unsold := func(t *testing.T, db *DB, uuid string, v entitlements.Purchase) {
		t.Helper()
		_, err := db.RecordNotification(context.Background(), Notification{UUID: uuid, Type: "REFUND",
			SignedDate: v.SignedDate, TransactionID: v.TransactionID, JWS: "outer", Source: "webhook"},
			Effect{Purchase: &v, Grant: entitlements.Grant{Outcome: entitlements.OutcomeUnknown}})
		require.NoError(t, err)
	}
	t.Run("in part, then in full", func(t *testing.T) {
		db := openTest(t)
		p := purchase("530", tokens.Token("dora"))
		p.Quantity = 3
		v1 := resign(p, time.Minute, prorated(33333))
		webhook(t, db, "n1", v1)
		unsold(t, db, "n2", resign(v1, time.Minute, func(p *entitlements.Purchase) {
			p.RevocationType, p.RevocationPercent = "REFUND_FULL", 0
		}))
		require.Equal(t, int64(0), balance(t, db, "dora"), "Apple refunded the whole pack")
		require.Equal(t, string(entitlements.OutcomeUnknown), outcomeOf(t, db, "530"))
	})
	t.Run("in full, then in part", func(t *testing.T) {
		db := openTest(t)
		p := purchase("531", tokens.Token("ed"))
		p.Quantity = 3
		v1 := resign(p, time.Minute, refunded)
		webhook(t, db, "n1", v1)
		v2 := resign(v1, time.Minute, prorated(33333))
		unsold(t, db, "n2", v2)
		require.Equal(t, string(entitlements.OutcomeUnknown), outcomeOf(t, db, "531"), "to be planned again")
		require.True(t, gave(t, db, "ed", v2), "the app's claim plans it with the catalog that sells it")
		require.Equal(t, int64(20), balance(t, db, "ed"))
	})
	for _, c := range []struct {
		name     string
		versions []func(*entitlements.Purchase) // each re-signed a minute after the last, while unsold
		want     int64
	}{
		{"in part", []func(*entitlements.Purchase){prorated(33333)}, 20},
		{"in part, then another share", []func(*entitlements.Purchase){prorated(33333), prorated(66667)}, 10},
		{"in part, then reversed", []func(*entitlements.Purchase){prorated(33333), reinstated}, 30},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := openTest(t)
			v := purchase("532", tokens.Token("fay"))
			v.Quantity = 3
			webhook(t, db, "n1", v)
			for i, edit := range c.versions {
				v = resign(v, time.Minute, edit)
				unsold(t, db, fmt.Sprintf("n%d", i+2), v)
			}
			require.Equal(t, c.want, balance(t, db, "fay"))
		})
	}
}

func TestRefundedLotPlan(t *testing.T) {
	for _, c := range []struct {
		name    string
		lot     refundedLot
		percent int64
		policy  string
		want    entitlements.RefundPlan
	}{
		{"unspent first, the rest is debt", refundedLot{granted: 10, remaining: 4, spent: 6}, 100000, entitlements.RefundDebt,
			entitlements.RefundPlan{Revoked: 10, Removed: 4, Debt: 6}},
		{"forgive writes the spent part off", refundedLot{granted: 10, remaining: 4, spent: 6}, 100000, entitlements.RefundForgive,
			entitlements.RefundPlan{Revoked: 10, Removed: 4, WrittenOff: 6}},
		{"swept credits count as unspent, the sweep removed them", refundedLot{granted: 10, spent: 6, expired: 4}, 100000, entitlements.RefundDebt,
			entitlements.RefundPlan{Revoked: 10, Debt: 6}},
		{"a share the swept credits cover bills nothing", refundedLot{granted: 10, remaining: 1, spent: 2, expired: 7}, 50000, entitlements.RefundDebt,
			entitlements.RefundPlan{Revoked: 5, Removed: 1}},
		{"the purchase's units decide a big lot's share", refundedLot{granted: 116669, quantity: 7, remaining: 116669}, 28571,
			entitlements.RefundDebt, entitlements.RefundPlan{Revoked: 33334, Removed: 33334}},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, c.lot.plan(c.percent, c.policy))
		})
	}
}

// A generation fails as its pack expires, and Apple then refunds the pack:
// nothing of it was consumed whether the reversal came 30 s before the
// expiry (the part returned) or a minute after (forfeited, given back and
// written off at once), so the refund bills no debt either way, and what
// the pack consumed (spentFrom, which a consumption answer reports) is 0.
// Found by a review: a forfeit that wrote no entry left the spend standing
// as consumed, and the refund billed 10 credits of debt.
func TestRefundAfterAReversalAtExpiryBillsNothing(t *testing.T) {
	for name, after := range map[string]time.Duration{"returned": -30 * time.Second, "forfeited": time.Minute} {
		t.Run(name, func(t *testing.T) {
			db := openWithAlice(t)
			c := newClock(db, testNow)
			ctx := context.Background()
			p, sp, expiry := spendBeforeExpiry(t, db, c, "900", 10)
			c.set(expiry.Add(after))
			rv, _, _, err := db.Reverse(ctx, "alice", "", sp.SpendID, "service:test")
			require.NoError(t, err)
			require.Len(t, rv.LotsForfeited, map[string]int{"returned": 0, "forfeited": 1}[name])
			c.set(expiry.AddDate(0, 0, 1))
			_, err = db.ExpireLots(ctx, c.now(), LotKey{}, 100, "job:expiry-sweep")
			require.NoError(t, err)
			var consumed int64
			require.NoError(t, db.read.QueryRow(spentFromSQL, sp.FromLots[0].LotID).Scan(&consumed))
			require.Zero(t, consumed)
			webhook(t, db, "n2", resign(p, time.Minute, refunded))
			require.Zero(t, entitlementOf(t, db, "alice").Credits.Debt)
			check, err := db.CheckLedger(ctx, "")
			require.NoError(t, err)
			require.Zero(t, check.Found, check.Mismatches)
		})
	}
}

// spendBeforeExpiry has alice buy pack id and, a minute before it expires,
// spend today's allowance and credits of it; the clock is left there.
func spendBeforeExpiry(t *testing.T, db *DB, c *clock, id string, credits int64) (entitlements.Purchase, entitlements.Spend, time.Time) {
	t.Helper()
	p := purchase(id, tokens.Token("alice"))
	webhook(t, db, "n-"+id, p)
	expiry := p.PurchaseDate.AddDate(1, 0, 0)
	c.set(expiry.Add(-time.Minute))
	sp, _, _, err := db.Spend(context.Background(), spendReq("alice", "s-"+id, 30+credits))
	require.NoError(t, err)
	return p, sp, expiry
}
