package sqlite

import (
	"context"
	"path/filepath"
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

// An unrevoked subscription period gives its tier from its purchase date
// until it expires (or its grace period ends), whatever order its versions
// arrive in; each subtest names one rule.
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
	t.Run("a period that has not started gives no tier yet", func(t *testing.T) {
		db := openWithAlice(t)
		later := testNow.AddDate(0, 0, 1)
		subNotify(t, db, "n1", subscription("s1", "s1", token, later, testNow), nil)
		require.Equal(t, entitlements.TierFree, tierAt(t, db, "alice", later.Add(-time.Minute)))
		require.Equal(t, entitlements.TierPro, tierAt(t, db, "alice", later), "from its first millisecond")
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

// With two paid tiers, a user holding both gets the better, whichever
// source gives each; a period upgraded to another subscription (isUpgraded)
// sets no tier, though its dates still cover now.
func TestTierTheBetterOfTwo(t *testing.T) {
	token := tokens.Token("alice")
	start := testNow.AddDate(0, 0, -10)
	withMax := func(t *testing.T) *DB {
		db := openWithAlice(t)
		db.Policy.Allowance.Tiers = map[string]int64{entitlements.TierFree: 30, entitlements.TierPro: 100, "max": 300}
		return db
	}
	maxPeriod := func(id string, at time.Time) entitlements.Purchase {
		p := subscription(id, "s1", token, at, at)
		p.ProductID = "max"
		return p
	}
	t.Run("an upgrade mid-period: max at once, before the old period says it was upgraded", func(t *testing.T) {
		db := withMax(t)
		pro := subscription("s1", "s1", token, start, start)
		subNotify(t, db, "n1", pro, nil)
		subNotify(t, db, "n2", maxPeriod("s2", start.AddDate(0, 0, 5)), nil)
		require.Equal(t, "max", tierAt(t, db, "alice", testNow))
		e := entitlements.Compute(state(t, db, "alice"), db.Policy.Allowance)
		require.Equal(t, int64(300), e.Allowance.Limit)
	})
	t.Run("a claim of an upgraded period gives nothing new", func(t *testing.T) {
		db := withMax(t)
		pro := subscription("s1", "s1", token, start, start)
		pro.Upgraded = true
		require.False(t, gave(t, db, "alice", pro))
		require.Equal(t, entitlements.TierFree, tierAt(t, db, "alice", testNow))
	})
	t.Run("an upgraded period alone sets no tier", func(t *testing.T) {
		db := withMax(t)
		pro := subscription("s1", "s1", token, start, start)
		subNotify(t, db, "n1", pro, nil)
		subNotify(t, db, "n2", resign(pro, time.Hour, func(p *entitlements.Purchase) { p.Upgraded = true }), nil)
		require.Equal(t, entitlements.TierFree, tierAt(t, db, "alice", testNow))
	})
	t.Run("an override and a subscription", func(t *testing.T) {
		db := withMax(t)
		subNotify(t, db, "n1", maxPeriod("s1", start), nil)
		until := testNow.Add(48 * time.Hour)
		st, err := db.SetTier(context.Background(), "alice", token, entitlements.TierPro, &until, "web", "service:ops")
		require.NoError(t, err)
		require.Equal(t, "max", st.Tier, "the subscription is better than the override")
		_, err = db.SetTier(context.Background(), "alice", token, "max", &until, "web", "service:ops")
		require.NoError(t, err)
		require.Equal(t, "max", tierAt(t, db, "alice", testNow), "the same tier twice")
	})
}

// A refund of the period that lapsed ends the grace period's Pro: an
// earlier, unrevoked period of the subscription does not keep it.
func TestTierGraceNeedsTheNewestPeriod(t *testing.T) {
	db := openWithAlice(t)
	token := tokens.Token("alice")
	first := testNow.AddDate(0, 0, -40)
	lapsed := first.AddDate(0, 0, 60)
	subNotify(t, db, "n1", subscription("s1", "s1", token, first, first), nil)
	second := subscription("s2", "s1", token, first.AddDate(0, 0, 30), first.AddDate(0, 0, 30))
	inGrace := &receipts.RenewalInfo{OriginalTransactionID: "s1", ProductID: "pro", GracePeriodExpiresDate: lapsed.AddDate(0, 0, 16),
		SignedDate: lapsed, Environment: "Sandbox", JWS: "r1", Raw: []byte(`{}`)}
	subNotify(t, db, "n2", second, inGrace)
	require.Equal(t, entitlements.TierPro, tierAt(t, db, "alice", lapsed.AddDate(0, 0, 5)), "in the grace period")
	subNotify(t, db, "n3", resign(second, time.Hour, refunded), nil)
	require.Equal(t, entitlements.TierFree, tierAt(t, db, "alice", lapsed.AddDate(0, 0, 5)), "its last period refunded")
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

	// Each change is kept, in order, with its reason and actor: the
	// override itself holds only the one in force, and none now.
	require.Equal(t, []string{"pro|web subscription|service:ops|set", "free|cancelled|service:ops|"},
		queryStrings(t, db, `SELECT tier || '|' || reason || '|' || actor || '|' || iif(expires_at IS NULL, '', 'set')
			FROM tier_changes WHERE user_id = 'alice' ORDER BY change_id`))
	require.Empty(t, queryStrings(t, db, `SELECT tier FROM tier_overrides`))
	_, err = writeExec(db, `UPDATE tier_changes SET reason = 'rewritten'`)
	require.ErrorContains(t, err, "append-only")
	_, err = writeExec(db, `DELETE FROM tier_changes`)
	require.ErrorContains(t, err, "append-only")
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

// The grace arm's look for a newer period seeks the subscription's rows.
func TestTierGraceSeeksTheSubscription(t *testing.T) {
	db := openTest(t)
	plan := queryPlan(t, db, tierSQL, "alice", 0)
	require.Contains(t, plan, "USING INDEX apple_transactions_original", plan)
	require.NotContains(t, plan, "SCAN n", plan)
}

// A renewal info of another environment under the same original id is of
// another subscription: it gives no grace period, whether it comes with
// its transaction (refused as another transaction) or alone.
func TestTierGraceOfAnotherEnvironment(t *testing.T) {
	token := tokens.Token("alice")
	first := testNow.AddDate(0, 0, -40)
	lapsed := first.AddDate(0, 0, 30)
	sandboxGrace := func(signed time.Time) *receipts.RenewalInfo {
		return &receipts.RenewalInfo{OriginalTransactionID: "s1", ProductID: "pro", GracePeriodExpiresDate: testNow.AddDate(0, 0, 5),
			SignedDate: signed, Environment: "Sandbox", JWS: "r1", Raw: []byte(`{}`)}
	}
	production := subscription("s1", "s1", token, first, first)
	production.Environment = "Production"
	t.Run("with its transaction", func(t *testing.T) {
		db := openWithAlice(t)
		subNotify(t, db, "n1", production, nil)
		require.Equal(t, entitlements.TierFree, tierAt(t, db, "alice", testNow), "lapsed")
		sandbox := subscription("s1", "s1", tokens.Token("mallory"), first, lapsed)
		subNotify(t, db, "n2", sandbox, sandboxGrace(lapsed))
		require.Equal(t, entitlements.TierFree, tierAt(t, db, "alice", testNow))
	})
	t.Run("a period of the other environment under the same original id is not this subscription's", func(t *testing.T) {
		db := openWithAlice(t)
		subNotify(t, db, "n1", production, nil)
		other := subscription("s9", "s1", "", lapsed, lapsed) // Sandbox, token-less, active now
		subNotify(t, db, "n2", other, nil)
		require.Equal(t, entitlements.TierFree, tierAt(t, db, "alice", testNow), "alice's Production subscription lapsed")
		require.Empty(t, ownerOfRow(t, db, "s9"), "the Sandbox period waits for its own subscription's owner")
	})
	t.Run("a newer period of the other environment does not end this one's grace", func(t *testing.T) {
		db := openWithAlice(t)
		productionGrace := sandboxGrace(lapsed)
		productionGrace.Environment = "Production"
		subNotify(t, db, "n1", production, productionGrace)
		require.Equal(t, entitlements.TierPro, tierAt(t, db, "alice", testNow), "in its grace period")
		other := subscription("s9", "s1", "", lapsed, lapsed) // Sandbox, under the same original id
		other.ExpiresDate = lapsed.Add(time.Hour)
		subNotify(t, db, "n2", other, nil)
		require.Equal(t, entitlements.TierPro, tierAt(t, db, "alice", testNow))
	})
	t.Run("a newer one of the other environment does not replace this one's", func(t *testing.T) {
		db := openWithAlice(t)
		productionGrace := sandboxGrace(lapsed)
		productionGrace.Environment = "Production"
		subNotify(t, db, "n1", production, productionGrace)
		noGrace := sandboxGrace(lapsed.Add(time.Hour))
		noGrace.GracePeriodExpiresDate = time.Time{}
		_, err := db.RecordNotification(context.Background(),
			Notification{UUID: "n2", Type: "DID_CHANGE_RENEWAL_STATUS", SignedDate: noGrace.SignedDate, JWS: "x", Source: "webhook", Outcome: "recorded"},
			Effect{Renewal: noGrace})
		require.NoError(t, err)
		require.Equal(t, entitlements.TierPro, tierAt(t, db, "alice", testNow), "alice's Production grace period holds")
	})
	t.Run("alone", func(t *testing.T) {
		db := openWithAlice(t)
		subNotify(t, db, "n1", production, nil)
		_, err := db.RecordNotification(context.Background(),
			Notification{UUID: "n2", Type: "DID_FAIL_TO_RENEW", SignedDate: lapsed, JWS: "x", Source: "webhook", Outcome: "recorded"},
			Effect{Renewal: sandboxGrace(lapsed)})
		require.NoError(t, err)
		require.Equal(t, entitlements.TierFree, tierAt(t, db, "alice", testNow))
	})
}

// Renewal infos recorded before migration 0019 keep their rows across it.
func TestMigrationKeepsRenewalInfos(t *testing.T) {
	file := filepath.Join(t.TempDir(), "old.db")
	oldDatabase(t, file, migrationsBefore(t, "0019"), `INSERT INTO renewal_infos (original_transaction_id, product_id, auto_renew_status,
		grace_period_expires_date, environment, signed_date, jws, updated_at) VALUES ('s1', 'pro', 1, 7, 'Production', 5, 'j', 6)`)
	db, err := Open(context.Background(), file)
	require.NoError(t, err)
	defer db.Close()
	require.Equal(t, []string{"s1 Production pro 1 7 5 j 6"}, queryStrings(t, db, `SELECT original_transaction_id || ' ' ||
		environment || ' ' || product_id || ' ' || auto_renew_status || ' ' || grace_period_expires_date || ' ' ||
		signed_date || ' ' || jws || ' ' || updated_at FROM renewal_infos`))
}

// A period of alice's subscription (its original) bought with erin's token
// (a second app account on the same Apple ID) before erin ever called is
// kept for erin, as any purchase is for its token's user: it went to
// alice, and erin's own claim of it was 409.
func TestPeriodWithAnotherUsersTokenWaitsForThatUser(t *testing.T) {
	db := openTest(t)
	start := testNow.AddDate(0, 0, -40)
	_, err := claim(t, db, "alice", subscription("900", "900", tokens.Token("alice"), start, start))
	require.NoError(t, err)
	erins := subscription("901", "900", tokens.Token("erin"), testNow.AddDate(0, 0, -1), testNow.AddDate(0, 0, -1))
	subNotify(t, db, "u901", erins, nil)
	require.Equal(t, "", ownerOfRow(t, db, "901"), "kept for erin's token")
	require.Equal(t, entitlements.TierFree, state(t, db, "alice").Tier, "alice's own period has ended")

	require.Equal(t, entitlements.TierPro, state(t, db, "erin").Tier, "erin's first call is given it")
	require.Equal(t, "erin", ownerOfRow(t, db, "901"))
	granted, err := claim(t, db, "erin", erins)
	require.NoError(t, err, "her claim of it answers 200")
	require.False(t, granted)

	// A token that is not a UUID is nobody's: its period is the
	// subscription's owner's, as a token-less one is.
	odd := subscription("902", "900", "not-a-uuid", testNow, testNow)
	subNotify(t, db, "u902", odd, nil)
	require.Equal(t, "alice", ownerOfRow(t, db, "902"))
}

// Overrides in force before migration 0020 are the trail's first changes,
// so that the next change does not leave their reason and actor nowhere;
// a removal is kept with no expiry, whatever the request carried.
func TestMigrationStartsTheTierTrail(t *testing.T) {
	file := filepath.Join(t.TempDir(), "old.db")
	oldDatabase(t, file, migrationsBefore(t, "0020"), `INSERT INTO users (user_id, app_account_token, created_at) VALUES ('alice', 't', 1);
		INSERT INTO tier_overrides (user_id, tier, expires_at, reason, actor, updated_at) VALUES ('alice', 'pro', 9, 'web subscription #42', 'service:billing', 5)`)
	db, err := Open(context.Background(), file)
	require.NoError(t, err)
	defer db.Close()
	until := testNow.Add(time.Hour)
	_, err = db.SetTier(context.Background(), "alice", tokens.Token("alice"), entitlements.TierFree, &until, "cancelled", "service:ops")
	require.NoError(t, err)
	require.Equal(t, []string{"pro 9 web subscription #42 service:billing 5", "free - cancelled service:ops"},
		queryStrings(t, db, `SELECT tier || ' ' || coalesce(expires_at, '-') || ' ' || reason || ' ' || actor ||
			iif(tier = 'free', '', ' ' || created_at) FROM tier_changes ORDER BY change_id`))
}
