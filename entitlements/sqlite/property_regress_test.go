package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
)

// Minimal sequences that TestPropertyLedger found, kept as plain tests.

// A refund reversal that restores credits while another refund's debt is
// still owed pays that debt, as a new refund does: otherwise spendable says
// the user can spend while a spend answers 402 debt_outstanding.
func TestPropRefundReversalSettlesDebt(t *testing.T) {
	db := propAliceDB(t, entitlements.RefundDebt)
	big := purchase("p1", tokens.Token("alice"))
	big.Quantity = 3
	propNotify(t, db, big)
	propNotify(t, db, propResign(big, time.Minute, 100000)) // removes all 30
	small := purchase("p2", tokens.Token("alice"))
	propNotify(t, db, small)
	propSpendAlice(t, db, "s1", 30+10)                        // the allowance, then all of p2
	propNotify(t, db, propResign(small, time.Minute, 100000)) // 10 spent: debt 10
	require.Equal(t, int64(10), propEntitlement(t, db).Credits.Debt)

	propNotify(t, db, propResign(big, 2*time.Minute, 0)) // Apple reverses the first refund
	e := propEntitlement(t, db)
	require.Equal(t, int64(0), e.Credits.Debt, "the restored credits pay the debt")
	require.Equal(t, int64(20), e.Credits.Balance)
}

// The refund bugs the property test found (B1: credits returned to a
// refunded pack were refunded again; B2: a reversed refund overfilled its
// pack), kept as regressions.
func TestPropRefundReversalBugs(t *testing.T) {
	ctx := context.Background()
	t.Run("B1 a reversal into a prorated pack refunds the user's half again", func(t *testing.T) {
		db := propAliceDB(t, entitlements.RefundDebt)
		p := purchase("p1", tokens.Token("alice"))
		propNotify(t, db, p)
		propNotify(t, db, propResign(p, time.Minute, 50000)) // half: 5 removed, 5 stay the user's
		sp := propSpendAlice(t, db, "s1", 30+3)              // the allowance, then 3 of the 5
		_, _, _, err := db.Reverse(ctx, "alice", tokens.Token("alice"), sp.SpendID, "service:test")
		require.NoError(t, err)
		require.Equal(t, int64(5), propEntitlement(t, db).Credits.Balance, "the generation failed: the 3 come back")
	})
	t.Run("B1 a refund reversal does not restore what a spend reversal refunded again", func(t *testing.T) {
		db := propAliceDB(t, entitlements.RefundForgive)
		p := purchase("p1", tokens.Token("alice"))
		propNotify(t, db, p)
		sp := propSpendAlice(t, db, "s1", 30+6)
		propNotify(t, db, propResign(p, time.Minute, 100000)) // 4 removed, 6 written off
		_, _, _, err := db.Reverse(ctx, "alice", tokens.Token("alice"), sp.SpendID, "service:test")
		require.NoError(t, err) // the 6 are refunded: right while the refund stands
		propNotify(t, db, propResign(p, 2*time.Minute, 0))
		require.Equal(t, int64(10), propEntitlement(t, db).Credits.Balance, "no refund, no spend: the whole pack")
	})
	t.Run("B1 debt paid by a grant, then the spend reversed: refunded twice", func(t *testing.T) {
		db := propAliceDB(t, entitlements.RefundDebt)
		p := purchase("p1", tokens.Token("alice"))
		propNotify(t, db, p)
		sp := propSpendAlice(t, db, "s1", 30+6)
		propNotify(t, db, propResign(p, time.Minute, 100000)) // 4 removed, 6 owed
		propGrantAlice(t, db, "g1", 10)                       // pays the 6
		_, _, _, err := db.Reverse(ctx, "alice", tokens.Token("alice"), sp.SpendID, "service:test")
		require.NoError(t, err)
		require.Equal(t, int64(10), propEntitlement(t, db).Credits.Balance,
			"the pack is refunded (4 removed, 6 paid); the grant's 10 are the user's")
	})
	t.Run("B2 after a refund reversal, a spend from the pack cannot be reversed", func(t *testing.T) {
		db := propAliceDB(t, entitlements.RefundDebt)
		p := purchase("p1", tokens.Token("alice"))
		propNotify(t, db, p)
		sp := propSpendAlice(t, db, "s1", 30+6)
		propNotify(t, db, propResign(p, time.Minute, 100000)) // 4 removed, 6 owed
		propGrantAlice(t, db, "g1", 10)                       // pays the 6
		propNotify(t, db, propResign(p, 2*time.Minute, 0))    // the pack gets 4+6 back: full
		_, _, _, err := db.Reverse(ctx, "alice", tokens.Token("alice"), sp.SpendID, "service:test")
		require.NoError(t, err, "the 6 the spend took no longer fit in the pack")
		require.Equal(t, int64(20), propEntitlement(t, db).Credits.Balance)
	})
}

// propAliceDB is a test database with the given refund policy where alice
// has already called, so her purchases are granted as they arrive.
func propAliceDB(t *testing.T, policy string) *DB {
	db := openTest(t)
	db.Policy.Refund = policy
	_ = state(t, db, "alice")
	return db
}

// propResign is Apple's newer signature of p: revoked in full (100000),
// prorated (1–99999 milliunits), or no longer revoked (0).
func propResign(p entitlements.Purchase, after time.Duration, percent int64) entitlements.Purchase {
	p.SignedDate = p.SignedDate.Add(after)
	switch {
	case percent == 0:
		p.RevocationDate, p.RevocationType, p.RevocationPercent = time.Time{}, "", 0
	case percent < 100000:
		p.RevocationDate, p.RevocationType, p.RevocationPercent = testNow, "REFUND_PRORATED", percent
	default:
		p.RevocationDate, p.RevocationType, p.RevocationPercent = testNow, "", 0
	}
	return p
}

func propNotify(t *testing.T, db *DB, p entitlements.Purchase) {
	t.Helper()
	g, err := entitlements.PlanGrant(p, catalog, testNow)
	require.NoError(t, err)
	_, err = db.RecordNotification(context.Background(), Notification{UUID: p.TransactionID + p.SignedDate.String(),
		Type: "ONE_TIME_CHARGE", SignedDate: p.SignedDate, TransactionID: p.TransactionID, JWS: "outer", Source: "webhook", Outcome: "recorded"}, Effect{Purchase: &p, Grant: g})
	require.NoError(t, err)
}

func propSpendAlice(t *testing.T, db *DB, key string, credits int64) entitlements.Spend {
	t.Helper()
	sp, _, _, err := db.Spend(context.Background(), entitlements.SpendRequest{UserID: "alice", Token: tokens.Token("alice"),
		Key: key, Hash: key, Product: entitlements.ProductSora, Credits: credits, Actor: "service:test"})
	require.NoError(t, err)
	return sp
}

func propGrantAlice(t *testing.T, db *DB, key string, credits int64) {
	t.Helper()
	_, _, _, err := db.AdminGrant(context.Background(), entitlements.GrantRequest{UserID: "alice", Token: tokens.Token("alice"),
		Key: key, Hash: key, Credits: credits, Reason: "test", Actor: "admin:test"})
	require.NoError(t, err)
}

func propEntitlement(t *testing.T, db *DB) entitlements.Entitlement {
	return entitlements.Compute(state(t, db, "alice"), db.Policy.Allowance)
}
