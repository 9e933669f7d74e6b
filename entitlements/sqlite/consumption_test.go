package sqlite

import (
	"context"
	"path"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A subscription's period is told apart from a pack: it has no lot, and it
// was delivered when it was kept for an owner (the tier was hers).
func TestConsumptionFactsOfSubscription(t *testing.T) {
	ctx := context.Background()
	db := openWithAlice(t)
	start := testNow.AddDate(0, 0, -10)
	subNotify(t, db, "n1", subscription("s1", "s1", tokens.Token("alice"), start, start), nil)
	subNotify(t, db, "n2", subscription("s2", "s2", tokens.Token("nobody-yet"), start, start), nil)
	unknown := subscription("s3", "s3", tokens.Token("alice"), start, start)
	unknown.ProductID = "pro.yearly" // not in the catalog: kept with no tier, Apple's type says what it is
	recordUnknown(t, db, "n3", unknown)
	_, err := claim(t, db, "alice", purchase("p1", tokens.Token("alice")))
	require.NoError(t, err)

	for id, want := range map[string]ConsumptionFacts{
		"s1": {Subscription: true, Delivered: true},
		"s2": {Subscription: true, Delivered: false},
		"s3": {Subscription: true, Delivered: true},
		"p1": {Delivered: true, Granted: 10},
		"p9": {},
	} {
		f, err := db.ConsumptionFactsFor(ctx, id)
		require.NoError(t, err)
		require.Equal(t, want, f, id)
	}
}

// consumptionRequest records Apple's CONSUMPTION_REQUEST for transaction
// id, signed by Apple at signed.
func consumptionRequest(t testing.TB, db *DB, uuid, id string, signed time.Time) {
	t.Helper()
	_, err := db.RecordNotification(context.Background(), Notification{UUID: uuid, Type: "CONSUMPTION_REQUEST",
		Environment: "Sandbox", SignedDate: signed, TransactionID: id, OriginalTransactionID: id, JWS: "x",
		Source: "webhook", Outcome: "recorded"}, Effect{})
	require.NoError(t, err)
}

// An answer Apple refused for good is kept with why, and never sent again.
func TestConsumptionAnswerRejected(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	consumptionRequest(t, db, "c1", "p1", testNow.Add(-time.Minute))
	pending, err := db.PendingConsumptionRequests(ctx, testNow.Add(-12*time.Hour), testNow, 10)
	require.NoError(t, err)
	require.Len(t, pending, 1)

	why := "serverapi: App Store Server API answered 400 Bad Request (errorCode 4000209): Invalid request."
	require.NoError(t, db.RecordConsumptionAnswer(ctx, ConsumptionAnswer{Request: pending[0], Status: "rejected", Body: []byte(`{}`), Err: why}))
	require.Equal(t, []string{"rejected " + why}, queryStrings(t, db,
		`SELECT status || ' ' || last_error FROM consumption_answers WHERE notification_uuid = 'c1'`))
	pending, err = db.PendingConsumptionRequests(ctx, testNow.Add(-12*time.Hour), testNow.Add(time.Hour), 10)
	require.NoError(t, err)
	require.Empty(t, pending, "not retried")
}

// Answers recorded before migration 0017 keep their state across it.
func TestMigrationKeepsConsumptionAnswers(t *testing.T) {
	names, err := migrationNames(migrations)
	require.NoError(t, err)
	var before []string
	for _, n := range names {
		if n < "migrations/0017" {
			before = append(before, path.Base(n))
		}
	}
	file := filepath.Join(t.TempDir(), "old.db")
	oldDatabase(t, file, before, `INSERT INTO notifications (notification_uuid, notification_type, signed_date, jws,
		source, outcome, received_at, transaction_id) VALUES ('c1', 'CONSUMPTION_REQUEST', 1, 'x', 'webhook', 'recorded', 2, 't1');
		INSERT INTO consumption_answers (notification_uuid, transaction_id, environment, status, attempts, request,
		last_error, next_attempt_at, answered_at, updated_at) VALUES ('c1', 't1', 'Sandbox', 'retry', 3, '{}', 'boom', 5, NULL, 4)`)
	db, err := Open(context.Background(), file)
	require.NoError(t, err)
	defer db.Close()
	require.Equal(t, []string{"c1 t1 Sandbox retry 3 {} boom 5 4"}, queryStrings(t, db, `SELECT notification_uuid || ' ' ||
		transaction_id || ' ' || environment || ' ' || status || ' ' || attempts || ' ' || request || ' ' || last_error || ' ' ||
		next_attempt_at || ' ' || updated_at FROM consumption_answers WHERE answered_at IS NULL`))
}
