package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/receipts"
)

// subscription is a Pro period [start, start+30d) of one subscription,
// signed at signed.
func subscription(id, original, token string, start, signed time.Time) entitlements.Purchase {
	return entitlements.Purchase{TransactionID: id, OriginalTransactionID: original, ProductID: "pro",
		Type: "Auto-Renewable Subscription", Environment: "Sandbox", AppAccountToken: token, Quantity: 1,
		PurchaseDate: start, ExpiresDate: start.AddDate(0, 0, 30), SignedDate: signed, JWS: "jws-" + id}
}

func subNotify(t testing.TB, db *DB, uuid string, p entitlements.Purchase, r *receipts.RenewalInfo) {
	t.Helper()
	_, err := db.RecordNotification(context.Background(),
		Notification{UUID: uuid, Type: "DID_RENEW", SignedDate: p.SignedDate, JWS: "x", Source: "webhook", Outcome: "subscription"},
		Effect{Purchase: &p, Grant: plan(t, p), Renewal: r})
	require.NoError(t, err)
}

func tierAt(t testing.TB, db *DB, user string, at time.Time) string {
	db.Now = func() time.Time { return at }
	defer func() { db.Now = func() time.Time { return testNow } }()
	return state(t, db, user).Tier
}

func TestTierFromSubscriptions(t *testing.T) {
	token := tokens.Token("alice")
	start := testNow.AddDate(0, 0, -10)

	t.Run("pro while a period covers now, free after", func(t *testing.T) {
		db := openWithAlice(t)
		subNotify(t, db, "n1", subscription("s1", "s1", token, start, start), nil)
		require.Equal(t, entitlements.TierPro, tierAt(t, db, "alice", testNow))
		require.Equal(t, entitlements.TierFree, tierAt(t, db, "alice", start.AddDate(0, 0, 30)))
		e := entitlements.Compute(state(t, db, "alice"), db.Policy.Allowance)
		require.Equal(t, int64(100), e.Allowance.Limit, "Pro's allowance")
	})
	t.Run("out of order: a late older period does not undo a renewal", func(t *testing.T) {
		db := openWithAlice(t)
		renewal := subscription("s2", "s1", token, start.AddDate(0, 0, 30), start.AddDate(0, 0, 30))
		subNotify(t, db, "n2", renewal, nil)
		subNotify(t, db, "n1", subscription("s1", "s1", token, start, start), nil)
		require.Equal(t, entitlements.TierPro, tierAt(t, db, "alice", start.AddDate(0, 0, 45)))
	})
	t.Run("a renewal without a token belongs to the subscription's owner", func(t *testing.T) {
		db := openWithAlice(t)
		subNotify(t, db, "n1", subscription("s1", "s1", token, start, start), nil)
		subNotify(t, db, "n2", subscription("s2", "s1", "", start.AddDate(0, 0, 30), start.AddDate(0, 0, 30)), nil)
		require.Equal(t, entitlements.TierPro, tierAt(t, db, "alice", start.AddDate(0, 0, 45)))
	})
	t.Run("a refund ends Pro at once", func(t *testing.T) {
		db := openWithAlice(t)
		p := subscription("s1", "s1", token, start, start)
		subNotify(t, db, "n1", p, nil)
		subNotify(t, db, "n2", resign(p, time.Hour, refunded), nil)
		require.Equal(t, entitlements.TierFree, tierAt(t, db, "alice", testNow))
	})
	t.Run("grace period holds Pro until it ends; the newest renewal info wins", func(t *testing.T) {
		db := openWithAlice(t)
		p := subscription("s1", "s1", token, start, start)
		lapsed := start.AddDate(0, 0, 30)
		grace := lapsed.AddDate(0, 0, 16)
		inGrace := &receipts.RenewalInfo{OriginalTransactionID: "s1", ProductID: "pro", GracePeriodExpiresDate: grace,
			SignedDate: lapsed, Environment: "Sandbox", JWS: "r1", Raw: []byte(`{}`)}
		subNotify(t, db, "n1", p, inGrace)
		require.Equal(t, entitlements.TierPro, tierAt(t, db, "alice", lapsed.AddDate(0, 0, 5)), "in the grace period")
		require.Equal(t, entitlements.TierFree, tierAt(t, db, "alice", grace), "GRACE_PERIOD_EXPIRED")

		stale := *inGrace
		stale.SignedDate, stale.GracePeriodExpiresDate = lapsed.Add(-time.Hour), grace.AddDate(0, 1, 0)
		subNotify(t, db, "n0", p, &stale)
		require.Equal(t, entitlements.TierFree, tierAt(t, db, "alice", grace), "an older renewal info does not win")
	})
}

func TestTierOverride(t *testing.T) {
	db := openWithAlice(t)
	ctx := context.Background()
	until := testNow.Add(48 * time.Hour)
	st, err := db.SetTier(ctx, "alice", tokens.Token("alice"), entitlements.TierPro, &until, "web subscription", "service:ops")
	require.NoError(t, err)
	require.Equal(t, entitlements.TierPro, st.Tier)
	require.Equal(t, entitlements.TierFree, tierAt(t, db, "alice", until), "until its end date")
	_, err = db.SetTier(ctx, "alice", tokens.Token("alice"), entitlements.TierFree, nil, "cancelled", "service:ops")
	require.NoError(t, err)
	require.Equal(t, entitlements.TierFree, tierAt(t, db, "alice", testNow))
}

// A credit pack must not cost a random page of a by-user index on every
// grant: only transactions that set a tier are indexed by user, and the
// tier query, the one reader of that index, still finds them through it.
func TestTierIndexHoldsSubscriptionsOnly(t *testing.T) {
	db := openTest(t)
	var partial bool
	require.NoError(t, db.read.QueryRow(`SELECT partial FROM pragma_index_list('apple_transactions')
		WHERE name = 'apple_transactions_user'`).Scan(&partial))
	require.True(t, partial, "apple_transactions_user indexes every transaction")

	plan := queryPlan(t, db, tierSQL, "alice", 0)
	require.Equal(t, 2, strings.Count(plan, "USING INDEX apple_transactions_user"), plan)
}
