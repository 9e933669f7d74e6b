package sqlite

import (
	"context"
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

// The debt that other lots paid comes back, when Apple reverses the
// refund, living as long as the credits that paid it would have: a grant
// that never expires pays, and its credits do not come back expired with
// the refunded pack.
func TestRefundReversedRestoresWhatPaidTheDebtWithItsLife(t *testing.T) {
	packExpiry := testNow.Add(-time.Hour).AddDate(1, 0, 0) // purchase() bought an hour before testNow
	for name, c := range map[string]struct {
		payer, want *time.Time // the paying grant's expiry and the restored lot's; nil: never
	}{
		"a payer that never expires":           {payer: nil, want: nil},
		"a payer that outlives the pack":       {payer: at(packExpiry.AddDate(0, 6, 0)), want: at(packExpiry.AddDate(0, 6, 0))},
		"a payer that expires before the pack": {payer: at(testNow.AddDate(0, 1, 0)), want: at(packExpiry)},
	} {
		t.Run(name, func(t *testing.T) {
			db := openWithAlice(t)
			clk := newClock(db, testNow)
			p := purchase("509", tokens.Token("alice"))
			webhook(t, db, "n1", p)
			spendAll(t, db, "alice", "s1", 30+10)
			webhook(t, db, "n2", resign(p, time.Minute, refunded)) // owes 10
			grantAdmin(t, db, "alice", "g", 10, c.payer)           // pays them
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

// openWithAlice is a test database where alice has already called, so her
// purchases are granted as they arrive.
func openWithAlice(t testing.TB) *DB {
	db := openTest(t)
	_ = state(t, db, "alice")
	return db
}

func ledgerKinds(t testing.TB, db *DB, user string) []string {
	entries, _, err := db.Ledger(context.Background(), user, 0, 500)
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
