package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
)

func claim(t testing.TB, db *DB, user string, p entitlements.Purchase) (bool, error) {
	return db.ClaimPurchase(context.Background(), user, tokens.Token(user), p, plan(t, p))
}

func webhook(t testing.TB, db *DB, uuid string, p entitlements.Purchase) bool {
	t.Helper()
	rec, err := db.RecordNotification(context.Background(),
		Notification{UUID: uuid, Type: "ONE_TIME_CHARGE", SignedDate: p.SignedDate, TransactionID: p.TransactionID,
			JWS: "outer", Source: "webhook", Outcome: "granted"},
		Effect{Purchase: &p, Grant: plan(t, p)})
	require.NoError(t, err)
	return rec.Duplicate
}

func TestClaimPurchase(t *testing.T) {
	t.Run("OK grants one lot, once", func(t *testing.T) {
		db := openTest(t)
		p := purchase("100", tokens.Token("alice"))
		granted, err := claim(t, db, "alice", p)
		require.NoError(t, err)
		require.True(t, granted)
		granted, err = claim(t, db, "alice", p)
		require.NoError(t, err)
		require.False(t, granted, "a replay grants nothing new")
		st := state(t, db, "alice")
		require.Len(t, st.Lots, 1)
		l := st.Lots[0]
		require.Equal(t, int64(10), l.Granted)
		require.Equal(t, "100", l.TransactionID)
		require.Equal(t, "Sandbox", l.Environment, "sandbox lots say so")
		require.Equal(t, p.PurchaseDate, l.GrantedAt)
		require.Equal(t, p.PurchaseDate.AddDate(1, 0, 0), *l.ExpiresAt)
	})
	t.Run("ErrClaimedByAnother: a token-less transaction goes to its first claimant", func(t *testing.T) {
		db := openTest(t)
		p := purchase("101", "")
		_, err := claim(t, db, "alice", p)
		require.NoError(t, err)
		_, err = claim(t, db, "bob", p)
		require.Equal(t, "transaction_claimed", entitlements.ErrorCode(err))
		require.Equal(t, int64(0), balance(t, db, "bob"))
		require.Equal(t, int64(10), balance(t, db, "alice"))
	})
	t.Run("revoked is recorded and adds nothing", func(t *testing.T) {
		db := openTest(t)
		p := purchase("102", tokens.Token("alice"))
		p.RevocationDate = testNow
		granted, err := claim(t, db, "alice", p)
		require.NoError(t, err)
		require.False(t, granted)
		require.Equal(t, "revoked", outcomeOf(t, db, "102"))
		require.Equal(t, int64(0), balance(t, db, "alice"))
	})
	t.Run("bought 13 months ago is recorded and adds nothing", func(t *testing.T) {
		db := openTest(t)
		p := purchase("103", tokens.Token("alice"))
		p.PurchaseDate = testNow.AddDate(0, -13, 0)
		granted, err := claim(t, db, "alice", p)
		require.NoError(t, err)
		require.False(t, granted)
		require.Equal(t, "expired", outcomeOf(t, db, "103"))
	})
}

// gave claims p for user and says whether the claim gave something new.
func gave(t testing.TB, db *DB, user string, p entitlements.Purchase) bool {
	t.Helper()
	created, err := claim(t, db, user, p)
	require.NoError(t, err)
	return created
}

func TestClaimNewerSignature(t *testing.T) {
	t.Run("a claim that reverses a refund gives its credits back: something new", func(t *testing.T) {
		db := openTest(t)
		p := purchase("110", tokens.Token("alice"))
		require.True(t, gave(t, db, "alice", p))
		require.False(t, gave(t, db, "alice", resign(p, time.Minute, refunded)), "a refund takes, it does not give")
		require.Equal(t, int64(0), balance(t, db, "alice"))
		require.True(t, gave(t, db, "alice", resign(p, 2*time.Minute, reinstated)), "the refund's reversal gave the pack back")
		require.Equal(t, int64(10), balance(t, db, "alice"))
		require.False(t, gave(t, db, "alice", resign(p, 2*time.Minute, reinstated)), "a replay of the reversal gives nothing")
		require.Equal(t, int64(10), balance(t, db, "alice"))
	})
	t.Run("a newer signature that changes nothing gives nothing", func(t *testing.T) {
		db := openTest(t)
		p := purchase("111", tokens.Token("alice"))
		require.True(t, gave(t, db, "alice", p))
		require.False(t, gave(t, db, "alice", resign(p, time.Minute, func(*entitlements.Purchase) {})))
		require.Equal(t, int64(10), balance(t, db, "alice"))
	})
}

// A version of a transaction id from another environment, product or
// original transaction is another transaction: it never revises the kept
// one, nor chooses the owner of a pack that waits for its user. The
// webhook keeps it and applies nothing; a claim of it is a conflict.
func TestAnotherTransactionUnderTheSameID(t *testing.T) {
	edits := map[string]func(*entitlements.Purchase){
		"environment": func(p *entitlements.Purchase) { p.Environment = "Production" },
		"product":     func(p *entitlements.Purchase) { p.ProductID = "other.pack" },
		"original":    func(p *entitlements.Purchase) { p.OriginalTransactionID = "999" },
	}
	for name, edit := range edits {
		t.Run("a refund: "+name, func(t *testing.T) {
			db := openTest(t)
			p := purchase("120", tokens.Token("alice"))
			require.False(t, webhook(t, db, "u-1", p))
			require.Equal(t, int64(10), balance(t, db, "alice"))
			other := resign(p, time.Minute, refunded)
			edit(&other)
			rec, err := db.RecordNotification(context.Background(), Notification{UUID: "u-2", Type: "REFUND",
				SignedDate: other.SignedDate, TransactionID: other.TransactionID, JWS: "outer", Source: "webhook"},
				Effect{Purchase: &other, Grant: plan(t, other)})
			require.NoError(t, err, "the notification is kept")
			require.Equal(t, "transaction_id_conflict", rec.Outcome, "and applies to nothing")
			require.Equal(t, int64(10), balance(t, db, "alice"), "the kept transaction is not refunded")
			require.False(t, webhook(t, db, "u-3", resign(p, 2*time.Minute, refunded)))
			require.Equal(t, int64(0), balance(t, db, "alice"), "its own refund still applies")
		})
		t.Run("a waiting pack's owner: "+name, func(t *testing.T) {
			db := openTest(t)
			state(t, db, "bob") // bob is known, alice not yet
			p := purchase("121", tokens.Token("alice"))
			webhook(t, db, "u-1", p)
			other := purchase("121", tokens.Token("bob"))
			other.SignedDate = p.SignedDate.Add(time.Minute)
			edit(&other)
			webhook(t, db, "u-2", other)
			_, err := claim(t, db, "bob", other)
			require.Equal(t, "transaction_id_conflict", entitlements.ErrorCode(err))
			require.Equal(t, int64(0), balance(t, db, "bob"))
			require.Equal(t, int64(10), balance(t, db, "alice"), "alice's pack waited for her")
		})
	}
}

func TestWebhookThenApp(t *testing.T) {
	t.Run("known user: granted at once; the app's claim adds nothing", func(t *testing.T) {
		db := openTest(t)
		_ = state(t, db, "alice")
		p := purchase("200", tokens.Token("alice"))
		require.False(t, webhook(t, db, "n1", p))
		require.Equal(t, int64(10), balance(t, db, "alice"))
		require.True(t, webhook(t, db, "n1", p), "a duplicate notification is reported")
		granted, err := claim(t, db, "alice", p)
		require.NoError(t, err)
		require.False(t, granted)
		require.Equal(t, int64(10), balance(t, db, "alice"))
	})
	t.Run("unknown token: kept until that user first appears", func(t *testing.T) {
		db := openTest(t)
		webhook(t, db, "n2", purchase("201", tokens.Token("carol")))
		require.Equal(t, int64(0), balance(t, db, "dave"), "another user gets nothing")
		require.Equal(t, int64(10), balance(t, db, "carol"), "granted on carol's first call")
		require.Equal(t, int64(10), balance(t, db, "carol"))
	})
	t.Run("no token: waits for the app's claim", func(t *testing.T) {
		db := openTest(t)
		_ = state(t, db, "erin")
		p := purchase("202", "")
		webhook(t, db, "n3", p)
		require.Equal(t, int64(0), balance(t, db, "erin"))
		granted, err := claim(t, db, "erin", p)
		require.NoError(t, err)
		require.True(t, granted)
		require.Equal(t, int64(10), balance(t, db, "erin"))
	})
	t.Run("a revocation that arrives first means it is never granted", func(t *testing.T) {
		db := openTest(t)
		p := purchase("203", tokens.Token("frank"))
		webhook(t, db, "n4", p)
		refunded := p
		refunded.RevocationDate = testNow
		refunded.SignedDate = p.SignedDate.Add(time.Minute)
		webhook(t, db, "n5", refunded)
		require.Equal(t, int64(0), balance(t, db, "frank"))
		require.Equal(t, "revoked", outcomeOf(t, db, "203"))
	})
}

// One Apple transaction arriving by every path at once still grants once.
func TestOneLotPerTransactionUnderConcurrency(t *testing.T) {
	db := openTest(t)
	const n = 16
	p := purchase("300", tokens.Token("alice"))
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := claim(t, db, "alice", p)
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := db.RecordNotification(context.Background(),
				Notification{UUID: "n" + string(rune('a'+i)), Type: "ONE_TIME_CHARGE", JWS: "x", Source: "webhook", Outcome: "granted"},
				Effect{Purchase: &p, Grant: plan(t, p)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, int64(10), balance(t, db, "alice"))
	var lots, grants int
	require.NoError(t, db.read.QueryRow(`SELECT count(*) FROM lots`).Scan(&lots))
	require.NoError(t, db.read.QueryRow(`SELECT count(*) FROM entries WHERE kind = 'grant'`).Scan(&grants))
	require.Equal(t, 1, lots)
	require.Equal(t, 1, grants)
}

// Every lot's remaining can be rebuilt from the ledger entries alone.
func TestLotsRebuildFromEntries(t *testing.T) {
	db := openTest(t)
	for i, user := range []string{"a", "b", "a", "c"} {
		_, err := claim(t, db, user, purchase(string(rune('0'+i)), tokens.Token(user)))
		require.NoError(t, err)
	}
	rows, err := db.read.Query(`SELECT l.lot_id, l.remaining, COALESCE(SUM(e.credits), 0)
		FROM lots l LEFT JOIN entries e ON e.lot_id = l.lot_id GROUP BY l.lot_id`)
	require.NoError(t, err)
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id string
		var remaining, sum int64
		require.NoError(t, rows.Scan(&id, &remaining, &sum))
		require.Equal(t, remaining, sum, id)
		n++
	}
	require.Equal(t, 4, n)
}

func outcomeOf(t testing.TB, db *DB, transactionID string) string {
	var o string
	require.NoError(t, db.read.QueryRow(`SELECT outcome FROM apple_transactions WHERE transaction_id = ?`, transactionID).Scan(&o))
	return o
}

// A new transaction of a known user takes a shorter path through the
// writer than one that waits for its user; both must leave the same rows.
func TestWebhookGrantPathsAgree(t *testing.T) {
	db := openTest(t)
	_ = state(t, db, "alice")
	webhook(t, db, "n-known", purchase("300", tokens.Token("alice"))) // alice is known: one insert
	webhook(t, db, "n-later", purchase("301", tokens.Token("carol"))) // carol is not: kept, then assigned
	_ = state(t, db, "carol")

	row := func(txID string) []string {
		return queryStrings(t, db, `SELECT t.user_id || ' ' || t.outcome || ' ' || t.credits || ' ' ||
			COALESCE(t.expires_at, 'never') || ' ' || (t.lot_id = l.lot_id) || ' ' || (t.updated_at - t.created_at) || ' | ' ||
			l.source || ' ' || l.product_id || ' ' || l.environment || ' ' || l.granted || ' ' || l.remaining || ' ' ||
			l.granted_at || ' ' || COALESCE(l.expires_at, 'never') || ' | ' ||
			e.kind || ' ' || e.credits || ' ' || e.reason || ' ' || e.ref
			FROM apple_transactions t JOIN lots l ON l.transaction_id = t.transaction_id JOIN entries e ON e.lot_id = l.lot_id
			WHERE t.transaction_id = ?`, txID)
	}
	known, later := row("300"), row("301")
	require.Len(t, known, 1)
	require.Equal(t, strings.Replace(later[0], "carol", "alice", 1), strings.Replace(known[0], " 300", " 301", 1))
	require.Equal(t, []string{"granted"}, queryStrings(t, db, `SELECT outcome FROM notifications WHERE notification_uuid = 'n-known'`))
}

// The grant was planned (at testNow) while the pack was still valid, and
// it reaches the writer after the pack expired: it is recorded, not granted.
func TestWebhookKnownUserPackExpiredOnTheWay(t *testing.T) {
	db := openTest(t)
	_ = state(t, db, "alice")
	p := purchase("310", tokens.Token("alice"))
	p.PurchaseDate = testNow.AddDate(-1, 0, 0).Add(time.Minute) // its lot expires at testNow + 1 min
	g := plan(t, p)
	require.Equal(t, entitlements.OutcomeGranted, g.Outcome)
	db.Now = func() time.Time { return testNow.Add(2 * time.Minute) }
	_, err := db.RecordNotification(context.Background(), Notification{UUID: "n-old", Type: "ONE_TIME_CHARGE",
		SignedDate: p.SignedDate, TransactionID: p.TransactionID, JWS: "outer", Source: "webhook"},
		Effect{Purchase: &p, Grant: g})
	require.NoError(t, err)
	require.Equal(t, "expired", outcomeOf(t, db, "310"))
	require.Equal(t, []string{"0"}, queryStrings(t, db, `SELECT count(*) FROM lots WHERE transaction_id = '310'`))
	require.Equal(t, []string{"expired"}, queryStrings(t, db, `SELECT outcome FROM notifications WHERE notification_uuid = 'n-old'`))
}

// recordUnknown records p as the webhook does when the catalog does not
// sell its product yet.
func recordUnknown(t testing.TB, db *DB, uuid string, p entitlements.Purchase) {
	t.Helper()
	_, err := db.RecordNotification(context.Background(),
		Notification{UUID: uuid, Type: "ONE_TIME_CHARGE", SignedDate: p.SignedDate, TransactionID: p.TransactionID,
			JWS: "outer", Source: "webhook", Outcome: "recorded"},
		Effect{Purchase: &p, Grant: entitlements.Grant{Outcome: entitlements.OutcomeUnknown}})
	require.NoError(t, err)
	require.Equal(t, "unknown_product", outcomeOf(t, db, p.TransactionID))
}

// A pack sold before the operator configured it is kept for later; once the
// catalog sells it, the buyer's app submitting it again gets the pack (it
// was answered 200 with nothing, and finished, before). The app holds its
// own signed version, usually older than the notification's.
func TestUnknownProductGrantedOnceConfigured(t *testing.T) {
	t.Run("the same version, resubmitted, is planned again", func(t *testing.T) {
		db := openTest(t)
		p := purchase("120", tokens.Token("alice"))
		recordUnknown(t, db, "u120", p)
		require.True(t, gave(t, db, "alice", p), "the app's claim gave the pack")
		require.Equal(t, int64(10), balance(t, db, "alice"))
		require.Equal(t, "granted", outcomeOf(t, db, "120"))
		require.False(t, gave(t, db, "alice", p), "and only once")
		require.Equal(t, int64(10), balance(t, db, "alice"))
	})
	t.Run("an older version the app holds plans the kept one", func(t *testing.T) {
		db := openTest(t)
		p := purchase("121", tokens.Token("alice"))
		recordUnknown(t, db, "u121", resign(p, time.Minute, func(*entitlements.Purchase) {}))
		require.True(t, gave(t, db, "alice", p))
		require.Equal(t, int64(10), balance(t, db, "alice"))
	})
	t.Run("a kept version that is refunded earns nothing, whatever the app holds", func(t *testing.T) {
		db := openTest(t)
		p := purchase("122", tokens.Token("alice"))
		recordUnknown(t, db, "u122", resign(p, time.Minute, refunded))
		require.False(t, gave(t, db, "alice", p))
		require.Equal(t, int64(0), balance(t, db, "alice"))
		require.Equal(t, "revoked", outcomeOf(t, db, "122"))
	})
	t.Run("a subscription planned again sets the tier, and says it gave something", func(t *testing.T) {
		db := openTest(t)
		state(t, db, "alice") // known: the webhook assigns the transaction to her at once
		sub := subscription("123", "123", tokens.Token("alice"), testNow.AddDate(0, 0, -1), testNow.AddDate(0, 0, -1))
		recordUnknown(t, db, "u123", sub)
		require.Equal(t, "free", state(t, db, "alice").Tier)
		require.True(t, gave(t, db, "alice", sub), "Pro is new to her: 201")
		require.Equal(t, "pro", state(t, db, "alice").Tier)
	})
	t.Run("a subscription whose kept version is refunded gives nothing: 200", func(t *testing.T) {
		db := openTest(t)
		sub := subscription("125", "125", tokens.Token("alice"), testNow.AddDate(0, 0, -1), testNow.AddDate(0, 0, -1))
		recordUnknown(t, db, "u125", resign(sub, time.Minute, refunded))
		require.False(t, gave(t, db, "alice", sub), "the app's older version is not refunded, the kept one is")
		require.Equal(t, "free", state(t, db, "alice").Tier)
	})
	t.Run("a newer version from Apple plans a subscription with its tier", func(t *testing.T) {
		db := openTest(t)
		state(t, db, "alice")
		sub := subscription("124", "124", tokens.Token("alice"), testNow.AddDate(0, 0, -1), testNow.AddDate(0, 0, -1))
		recordUnknown(t, db, "u124", sub)
		subNotify(t, db, "u124b", resign(sub, time.Minute, func(*entitlements.Purchase) {}), nil)
		require.Equal(t, "pro", state(t, db, "alice").Tier)
	})
}

// A renewal without a token belongs to its subscription's owner, as the
// webhook would decide (ownerOf): another user posting it first does not
// take the owner's paid period.
func TestTokenlessRenewalIsItsSubscriptionOwners(t *testing.T) {
	db := openTest(t)
	start := testNow.AddDate(0, 0, -40)
	first := subscription("140", "140", "", start, start)
	_, err := claim(t, db, "alice", first)
	require.NoError(t, err)
	renewal := subscription("141", "140", "", start.AddDate(0, 0, 30), start.AddDate(0, 0, 30))
	_, err = claim(t, db, "bob", renewal)
	require.Equal(t, "transaction_claimed", entitlements.ErrorCode(err))
	require.Equal(t, "free", state(t, db, "bob").Tier)
	require.True(t, gave(t, db, "alice", renewal), "its owner's claim gives the active period")
	require.Equal(t, "pro", state(t, db, "alice").Tier)
}

// keptRenewal is a token-less second period of the subscription original,
// which the webhook keeps while the subscription has no owner.
func keptRenewal(t *testing.T, db *DB, id, original string, start time.Time) entitlements.Purchase {
	renewal := subscription(id, original, "", start.AddDate(0, 0, 30), start.AddDate(0, 0, 30))
	subNotify(t, db, "u"+id, renewal, nil)
	return renewal
}

// A renewal the webhook kept before its subscription had an owner is the
// owner's once the subscription has one, however it came to have one.
func TestTokenlessRenewalKeptBeforeItsOwner(t *testing.T) {
	start := testNow.AddDate(0, 0, -40)
	t.Run("the owner's claim of the original takes it too", func(t *testing.T) {
		db := openTest(t)
		renewal := keptRenewal(t, db, "151", "150", start)
		_, err := claim(t, db, "alice", subscription("150", "150", "", start, start))
		require.NoError(t, err)
		require.Equal(t, "pro", state(t, db, "alice").Tier, "the kept period is hers at once")
		_, err = claim(t, db, "bob", renewal)
		require.Equal(t, "transaction_claimed", entitlements.ErrorCode(err))
		require.False(t, gave(t, db, "alice", renewal), "already hers")
	})
	t.Run("the webhook giving the original to its token's user takes it too", func(t *testing.T) {
		db := openTest(t)
		state(t, db, "alice")
		keptRenewal(t, db, "153", "152", start)
		subNotify(t, db, "u152", subscription("152", "152", tokens.Token("alice"), start, start), nil)
		require.Equal(t, "pro", state(t, db, "alice").Tier)
	})
	t.Run("the first call of the user the original waited for takes it too", func(t *testing.T) {
		db := openTest(t)
		renewal := keptRenewal(t, db, "159", "158", start)
		subNotify(t, db, "u158", subscription("158", "158", tokens.Token("erin"), start, start), nil) // erin is not known yet
		require.Equal(t, "pro", state(t, db, "erin").Tier, "her first call is given the original and the kept period")
		_, err := claim(t, db, "bob", renewal)
		require.Equal(t, "transaction_claimed", entitlements.ErrorCode(err))
	})
	t.Run("a newer version of it from Apple finds the owner", func(t *testing.T) {
		db := openTest(t)
		renewal := keptRenewal(t, db, "155", "154", start)
		_, err := claim(t, db, "alice", subscription("154", "154", "", start, start))
		require.NoError(t, err)
		err = db.update(context.Background(), func(tx *Tx) error { // as before owners adopted their periods
			_, err := tx.ExecContext(context.Background(), `UPDATE apple_transactions SET user_id = NULL WHERE transaction_id = '155'`)
			return err
		})
		require.NoError(t, err)
		require.Equal(t, "free", state(t, db, "alice").Tier)
		subNotify(t, db, "u155b", resign(renewal, time.Minute, func(*entitlements.Purchase) {}), nil)
		require.Equal(t, "pro", state(t, db, "alice").Tier)
	})
}

// A transaction of a product the catalog no longer sells keeps what it
// earned when Apple re-signs it: a subscriber mid-period does not fall to
// free because a config dropped the product.
func TestUnknownProductKeepsWhatItEarned(t *testing.T) {
	db := openTest(t)
	sub := subscription("156", "156", tokens.Token("alice"), testNow.AddDate(0, 0, -1), testNow.AddDate(0, 0, -1))
	require.True(t, gave(t, db, "alice", sub))
	newer := resign(sub, time.Minute, func(*entitlements.Purchase) {})
	_, err := db.RecordNotification(context.Background(),
		Notification{UUID: "u156", Type: "DID_CHANGE_RENEWAL_STATUS", SignedDate: newer.SignedDate, JWS: "x", Source: "webhook", Outcome: "recorded"},
		Effect{Purchase: &newer, Grant: entitlements.Grant{Outcome: entitlements.OutcomeUnknown}})
	require.NoError(t, err)
	require.Equal(t, "pro", state(t, db, "alice").Tier)
}

// unproven is p as an app receipt names it: the claimant holds no signed
// proof of it.
func unproven(p entitlements.Purchase) entitlements.Purchase {
	p.Unproven = true
	return p
}

// An unproven claim (an app receipt, unsigned as far as we check) takes
// nothing that is not already the claimant's: a forged receipt could name
// any transaction id.
func TestUnprovenClaims(t *testing.T) {
	t.Run("a token-less transaction nobody holds is refused", func(t *testing.T) {
		db := openTest(t)
		p := purchase("160", "")
		webhook(t, db, "u160", p)
		_, err := claim(t, db, "bob", unproven(p))
		require.Equal(t, "transaction_not_bound", entitlements.ErrorCode(err))
		require.Equal(t, int64(0), balance(t, db, "bob"))
		require.True(t, gave(t, db, "alice", p), "the buyer's signed transaction still claims it")
	})
	t.Run("the holder's own receipt again is answered", func(t *testing.T) {
		db := openTest(t)
		p := purchase("161", "")
		require.True(t, gave(t, db, "alice", p))
		require.False(t, gave(t, db, "alice", unproven(p)))
		require.Equal(t, int64(10), balance(t, db, "alice"))
	})
	t.Run("a token-less renewal of the claimant's subscription is hers", func(t *testing.T) {
		db := openTest(t)
		start := testNow.AddDate(0, 0, -40)
		require.False(t, gave(t, db, "alice", subscription("162", "162", "", start, start)), "lapsed: nothing new")
		renewal := subscription("163", "162", "", start.AddDate(0, 0, 30), start.AddDate(0, 0, 30))
		require.True(t, gave(t, db, "alice", unproven(renewal)))
		require.Equal(t, "pro", state(t, db, "alice").Tier)
	})
	t.Run("one another user holds is theirs: 409", func(t *testing.T) {
		db := openTest(t)
		p := purchase("165", "")
		require.True(t, gave(t, db, "alice", p))
		_, err := claim(t, db, "bob", unproven(p))
		require.Equal(t, "transaction_claimed", entitlements.ErrorCode(err))
	})
	t.Run("a transaction with the claimant's token is hers", func(t *testing.T) {
		db := openTest(t)
		require.True(t, gave(t, db, "alice", unproven(purchase("164", tokens.Token("alice")))))
		require.Equal(t, int64(10), balance(t, db, "alice"))
	})
}

// Rows of one subscription held by different users (claims made before
// claims followed the subscription's owner) answer its original's owner,
// not whichever row SQLite meets first, nor the earliest period's (the
// original row below is given a later purchase date than carol's).
func TestSubscriptionOwnerIsTheOriginals(t *testing.T) {
	db := openTest(t)
	start := testNow.AddDate(0, 0, -70)
	_, err := claim(t, db, "carol", subscription("171", "170", "", start.AddDate(0, 0, 30), start.AddDate(0, 0, 30)))
	require.NoError(t, err)
	state(t, db, "bob") // a user the row below may name
	err = db.update(context.Background(), func(tx *Tx) error {
		_, err := tx.ExecContext(context.Background(), `INSERT INTO apple_transactions (transaction_id, original_transaction_id, user_id, app_account_token,
		product_id, tier, type, environment, quantity, purchase_date, signed_date, outcome, credits, created_at, updated_at)
		SELECT '170', '170', 'bob', '', product_id, tier, type, environment, 1, purchase_date + 1, signed_date, outcome, 0,
		created_at, updated_at FROM apple_transactions WHERE transaction_id = '171'`)
		return err
	})
	require.NoError(t, err)
	renewal := subscription("173", "170", "", start.AddDate(0, 0, 90), start.AddDate(0, 0, 90))
	for _, other := range []string{"carol", "alice"} {
		_, err = claim(t, db, other, renewal)
		require.Equal(t, "transaction_claimed", entitlements.ErrorCode(err), "the original's owner, bob, holds the subscription")
	}
	_, err = claim(t, db, "bob", renewal)
	require.NoError(t, err)
}

// ownerOfRow is the user a recorded transaction is held by ("" for none).
func ownerOfRow(t *testing.T, db *DB, transactionID string) string {
	t.Helper()
	var owner sql.NullString
	require.NoError(t, db.read.QueryRow(`SELECT user_id FROM apple_transactions WHERE transaction_id = ?`, transactionID).
		Scan(&owner))
	return owner.String
}

// Periods kept before their subscription had an owner go to its owner, and
// only the token-less periods of a tier product.
func TestAdoptedRenewals(t *testing.T) {
	start := testNow.AddDate(0, 0, -40)
	t.Run("to the subscription's owner, not to another holder of one of its periods", func(t *testing.T) {
		db := openTest(t)
		keptRenewal(t, db, "301", "300", start)
		_, err := claim(t, db, "alice", subscription("300", "300", "", start, start))
		require.NoError(t, err)
		require.NoError(t, db.update(context.Background(), func(tx *Tx) error { // kept unowned, as before owners adopted
			_, err := tx.ExecContext(context.Background(), `UPDATE apple_transactions SET user_id = NULL WHERE transaction_id = '301'`)
			return err
		}))
		third := subscription("302", "300", tokens.Token("bob"), start.AddDate(0, 0, 60), start.AddDate(0, 0, 60))
		_, err = claim(t, db, "bob", third) // his token: Apple says it is his
		require.NoError(t, err)
		require.Equal(t, "alice", ownerOfRow(t, db, "301"))
	})
	t.Run("an active period adopted is something new: 201", func(t *testing.T) {
		db := openTest(t)
		keptRenewal(t, db, "311", "310", testNow.AddDate(0, 0, -35))
		require.True(t, gave(t, db, "alice", subscription("310", "310", "", testNow.AddDate(0, 0, -65), testNow.AddDate(0, 0, -65))),
			"the original has lapsed, the period it brings has not")
		require.Equal(t, "pro", state(t, db, "alice").Tier)
	})
	t.Run("not a period with a token, nor one of a product not sold now", func(t *testing.T) {
		db := openTest(t)
		withToken := subscription("321", "320", tokens.Token("carol"), start.AddDate(0, 0, 30), start.AddDate(0, 0, 30))
		subNotify(t, db, "u321", withToken, nil) // carol is not known yet: it waits for her
		recordUnknown(t, db, "u322", subscription("322", "320", "", start.AddDate(0, 0, 60), start.AddDate(0, 0, 60)))
		_, err := claim(t, db, "alice", subscription("320", "320", "", start, start))
		require.NoError(t, err)
		require.Equal(t, "", ownerOfRow(t, db, "321"))
		require.Equal(t, "", ownerOfRow(t, db, "322"), "kept as unknown_product: a claim plans it first")
	})
}

// A refund, or its reversal, of a transaction the catalog no longer sells
// changes what it earned: it is kept as unknown_product, to be planned
// again, not left with the plan it had.
func TestRevocationOfAProductNotSoldNow(t *testing.T) {
	notSold := func(t *testing.T, db *DB, uuid string, p entitlements.Purchase) {
		_, err := db.RecordNotification(context.Background(),
			Notification{UUID: uuid, Type: "REFUND", SignedDate: p.SignedDate, TransactionID: p.TransactionID, JWS: "x", Source: "webhook", Outcome: "recorded"},
			Effect{Purchase: &p, Grant: entitlements.Grant{Outcome: entitlements.OutcomeUnknown}})
		require.NoError(t, err)
	}
	t.Run("a refunded pack waiting for its owner gives nothing", func(t *testing.T) {
		db := openTest(t)
		p := purchase("330", tokens.Token("carol"))
		webhook(t, db, "u330", p) // carol unknown: it waits for her
		notSold(t, db, "u330b", resign(p, time.Minute, refunded))
		require.Equal(t, int64(0), balance(t, db, "carol"))
	})
	t.Run("a reversed refund is planned again once sold", func(t *testing.T) {
		db := openTest(t)
		p := resign(purchase("331", tokens.Token("carol")), 0, refunded)
		webhook(t, db, "u331", p)
		require.Equal(t, "revoked", outcomeOf(t, db, "331"))
		reinstatedV := resign(p, time.Minute, reinstated)
		notSold(t, db, "u331b", reinstatedV)
		require.True(t, gave(t, db, "carol", reinstatedV))
		require.Equal(t, int64(10), balance(t, db, "carol"))
	})
}

// A tier product with no expiry (a catalog may give any product a tier)
// sets no tier, and its claim is answered, not failed.
func TestTierProductWithoutExpiry(t *testing.T) {
	db := openTest(t)
	p := subscription("340", "340", tokens.Token("alice"), testNow.AddDate(0, 0, -1), testNow.AddDate(0, 0, -1))
	p.ExpiresDate = time.Time{}
	require.False(t, gave(t, db, "alice", p))
	require.Equal(t, "free", state(t, db, "alice").Tier)
}

// Adopting a subscription's waiting periods seeks its own rows, not every
// token-less row nobody holds (apple_transactions_pending).
func TestAdoptRenewalsSeeksTheSubscription(t *testing.T) {
	db := openTest(t)
	plan := queryPlan(t, db, adoptRenewalsSQL, "alice", 0, "400", "Sandbox")
	require.Contains(t, plan, "USING INDEX apple_transactions_original (original_transaction_id=?)", plan)
}

// A user whose first call is the claim of a purchase that waited for her
// token gets it in that call (her first call grants it): 201, something
// new, though the claim itself found the lot made.
func TestFirstCallClaimsWhatWaitedForTheToken(t *testing.T) {
	db := openTest(t)
	p := purchase("350", tokens.Token("dana"))
	webhook(t, db, "u350", p) // dana unknown: it waits for her
	require.True(t, gave(t, db, "dana", p))
	require.Equal(t, int64(10), balance(t, db, "dana"))
}

// A user's first call that claims a period of a subscription kept for her
// token gives her the period, or its kept token-less renewals, before the
// claim runs (ensureUser); the claim then finds them hers, and the call
// still answers that it gave something new (201).
func TestFirstCallClaimOfAWaitingSubscription(t *testing.T) {
	old, recent := testNow.AddDate(0, 0, -40), testNow.AddDate(0, 0, -5)
	for name, c := range map[string]struct {
		start        time.Time // the original's; the kept renewal starts 30 days later
		claimRenewal bool
	}{
		"the kept token-less renewal":           {start: old, claimRenewal: true},
		"the lapsed original, its renewal kept": {start: old},
		"the active original":                   {start: recent},
	} {
		t.Run(name, func(t *testing.T) {
			db := openTest(t)
			renewal := keptRenewal(t, db, "171", "170", c.start)
			original := subscription("170", "170", tokens.Token("erin"), c.start, c.start)
			subNotify(t, db, "u170", original, nil) // erin is not known yet
			claimed := original
			if c.claimRenewal {
				claimed = renewal
			}
			created, err := claim(t, db, "erin", claimed)
			require.NoError(t, err)
			require.True(t, created, "her first call made her pro")
			require.Equal(t, "pro", state(t, db, "erin").Tier)
			created, err = claim(t, db, "erin", claimed)
			require.NoError(t, err)
			require.False(t, created, "a second claim gives nothing new")
		})
	}
}

// A token Apple sets on a purchase after it was recorded (Set App Account
// Token, for a purchase made outside the app) names whom it waits for: its
// user's first call is given it. The row kept its first version's empty
// token, so only a claim found it, and anyone holding the older version
// could claim it. A purchase someone holds keeps its owner.
func TestTokenSetLaterNamesWhomAPurchaseWaitsFor(t *testing.T) {
	withToken := func(token string) func(*entitlements.Purchase) {
		return func(p *entitlements.Purchase) { p.AppAccountToken = token }
	}
	t.Run("its user has not called yet", func(t *testing.T) {
		db := openTest(t)
		p := purchase("910", "")
		webhook(t, db, "u1", p)
		webhook(t, db, "u2", resign(p, time.Minute, withToken(tokens.Token("erin"))))
		_, err := claim(t, db, "bob", p) // the version bob holds has no token
		require.Equal(t, "transaction_not_yours", entitlements.ErrorCode(err))
		require.Equal(t, int64(0), balance(t, db, "bob"))
		require.Equal(t, int64(10), balance(t, db, "erin"), "her first call is given it")
		require.Equal(t, "erin", ownerOfRow(t, db, "910"))
	})
	t.Run("its user is known", func(t *testing.T) {
		db := openTest(t)
		require.Equal(t, int64(0), balance(t, db, "erin"))
		p := purchase("911", "")
		webhook(t, db, "u1", p)
		webhook(t, db, "u2", resign(p, time.Minute, withToken(tokens.Token("erin"))))
		require.Equal(t, "erin", ownerOfRow(t, db, "911"), "granted as the newer version arrives")
		require.Equal(t, int64(10), balance(t, db, "erin"))
	})
	t.Run("a claim of the newer version by its token's user", func(t *testing.T) {
		db := openTest(t)
		p := purchase("930", tokens.Token("alice")) // alice has not called
		webhook(t, db, "u1", p)
		erins := resign(p, time.Minute, withToken(tokens.Token("erin")))
		granted, err := claim(t, db, "erin", erins)
		require.NoError(t, err, "the version she sent is newer than the kept one, and names her")
		require.True(t, granted)
		require.Equal(t, "erin", ownerOfRow(t, db, "930"))
		require.Equal(t, int64(0), balance(t, db, "alice"))
	})
	t.Run("an older version arriving late", func(t *testing.T) {
		db := openTest(t)
		start := testNow.AddDate(0, 0, -40)
		_, err := claim(t, db, "alice", subscription("940", "940", tokens.Token("alice"), start, start))
		require.NoError(t, err)
		older := subscription("941", "940", "", testNow.AddDate(0, 0, -1), testNow.AddDate(0, 0, -1))
		subNotify(t, db, "u1", resign(older, time.Minute, withToken(tokens.Token("erin"))), nil)
		subNotify(t, db, "u2", older, nil)
		require.Equal(t, "", ownerOfRow(t, db, "941"), "still erin's, not the subscription owner's")
		require.Equal(t, entitlements.TierPro, state(t, db, "erin").Tier)
	})
	t.Run("someone holds it", func(t *testing.T) {
		db := openTest(t)
		p := purchase("912", "")
		webhook(t, db, "u1", p)
		_, err := claim(t, db, "alice", p)
		require.NoError(t, err)
		webhook(t, db, "u2", resign(p, time.Minute, withToken(tokens.Token("erin"))))
		require.Equal(t, "alice", ownerOfRow(t, db, "912"))
		require.Equal(t, int64(0), balance(t, db, "erin"))
	})
}

// A purchase is settled for its holder when no newer version Apple could
// sign would give her more: a pack whose lot she has, with no refund. A
// refund (it may be reversed), a pack recorded too late to give anything
// (the catalog may lengthen its life), a subscription's period (Apple may
// extend it), a product not sold (the catalog may sell it later) and
// another user's purchase are not; nor is one never seen.
func TestSettledPurchases(t *testing.T) {
	db := openWithAlice(t)
	alice := tokens.Token("alice")
	mustClaim := func(p entitlements.Purchase) {
		t.Helper()
		_, err := claim(t, db, "alice", p)
		require.NoError(t, err)
	}
	mustClaim(purchase("s-granted", alice))
	refundedPack := purchase("s-refunded", alice)
	mustClaim(refundedPack)
	webhook(t, db, "n-refund", resign(refundedPack, time.Minute, refunded))
	partly := purchase("s-partly", alice)
	mustClaim(partly)
	webhook(t, db, "n-partly", resign(partly, time.Minute, prorated(50000)))
	late := purchase("s-late", alice)
	late.PurchaseDate = testNow.AddDate(0, -13, 0)
	mustClaim(late)
	require.Equal(t, "expired", outcomeOf(t, db, "s-late"))
	recordUnknown(t, db, "n-unknown", purchase("s-unknown", alice))
	mustClaim(subscription("s-sub", "s-sub", alice, testNow.AddDate(0, 0, -1), testNow.AddDate(0, 0, -1)))
	_, err := claim(t, db, "bob", purchase("s-bobs", tokens.Token("bob")))
	require.NoError(t, err)

	ids := []string{"s-granted", "s-refunded", "s-partly", "s-late", "s-unknown", "s-sub", "s-bobs", "s-never"}
	settled, err := db.SettledPurchases(context.Background(), "alice", ids)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"s-granted": true}, settled)

	settled, err = db.SettledPurchases(context.Background(), "bob", ids)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"s-bobs": true}, settled)
}

func TestReplanOnRefresh(t *testing.T) {
	full := sql.NullInt64{Int64: 1, Valid: true}
	part := sql.NullInt64{Int64: 40000, Valid: true}
	inPart := func(p *entitlements.Purchase) {
		p.RevocationDate, p.RevocationType, p.RevocationPercent = testNow, "REFUND_PRORATED", 40000
	}
	none := func(*entitlements.Purchase) {}
	for _, c := range []struct {
		name    string
		old     keptVersion
		edit    func(*entitlements.Purchase)
		outcome entitlements.Outcome
		want    bool
	}{
		{"a known product is planned again", keptVersion{revoked: full}, refunded, entitlements.OutcomeGranted, true},
		{"unknown, nothing refunded: keeps its plan", keptVersion{}, none, entitlements.OutcomeUnknown, false},
		{"unknown, refunded in full since: planned again", keptVersion{}, refunded, entitlements.OutcomeUnknown, true},
		{"unknown, its refund in full ended: planned again", keptVersion{revoked: full}, none, entitlements.OutcomeUnknown, true},
		{"unknown, still refunded in full: keeps its plan", keptVersion{revoked: full}, refunded, entitlements.OutcomeUnknown, false},
		{"unknown, refunded in part since: keeps its plan", keptVersion{}, inPart, entitlements.OutcomeUnknown, false},
		{"unknown, a part refund becomes full: planned again", keptVersion{revoked: full, part: part}, refunded, entitlements.OutcomeUnknown, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := purchase("100", "")
			c.edit(&p)
			require.Equal(t, c.want, replanOnRefresh(c.old, p, entitlements.Grant{Outcome: c.outcome}))
		})
	}
}
