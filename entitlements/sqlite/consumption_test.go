package sqlite

import (
	"context"
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
		f, err := db.ConsumptionFactsFor(ctx, id, "Sandbox")
		require.NoError(t, err)
		require.Equal(t, want, f, id)
	}
	f, err := db.ConsumptionFactsFor(ctx, "p1", "Production")
	require.NoError(t, err)
	require.Equal(t, ConsumptionFacts{}, f, "p1 is a Sandbox transaction: of a Production one under its id nothing is known")
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
	file := filepath.Join(t.TempDir(), "old.db")
	oldDatabase(t, file, migrationsBefore(t, "0017"), `INSERT INTO notifications (notification_uuid, notification_type, signed_date, jws,
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

// Which requests a run is given: every unanswered one, however long ago
// Apple signed it or creditsd received it (one past its deadline is to be
// recorded expired), the retries due now, and the retries whose deadline,
// 12 hours after Apple signed them, has passed though their next attempt
// has not come. Each carries Apple's signedDate.
func TestPendingConsumptionRequests(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	lapsed := testNow.Add(-12 * time.Hour)
	db.Now = func() time.Time { return testNow.Add(-consumptionHorizon - time.Minute) }
	consumptionRequest(t, db, "past-the-horizon", "t0", testNow.Add(-consumptionHorizon-time.Hour))
	db.Now = func() time.Time { return testNow.Add(-72 * time.Hour) }
	consumptionRequest(t, db, "long-ago", "t1", testNow.Add(-73*time.Hour))
	db.Now = func() time.Time { return testNow.Add(-time.Minute) }
	consumptionRequest(t, db, "late", "t2", testNow.Add(-13*time.Hour)) // a failed webhook call, brought by reconcile
	consumptionRequest(t, db, "fresh", "t3", testNow.Add(-2*time.Minute))
	for uuid, signed := range map[string]time.Time{"retry-stuck": testNow.Add(-12 * time.Hour), "retry-later": testNow.Add(-time.Hour),
		"retry-due": testNow.Add(-2 * time.Hour), "sent": testNow.Add(-time.Hour), "expired": testNow.Add(-13 * time.Hour)} {
		consumptionRequest(t, db, uuid, "t-"+uuid, signed)
	}
	db.Now = func() time.Time { return testNow }
	record := func(uuid, status string, next time.Time) {
		req := ConsumptionRequest{NotificationUUID: uuid, TransactionID: "t-" + uuid, Environment: "Sandbox", Attempts: 1}
		require.NoError(t, db.RecordConsumptionAnswer(ctx, ConsumptionAnswer{Request: req, Status: status, Body: []byte(`{}`), NextAttempt: next}))
	}
	record("retry-stuck", "retry", testNow.Add(time.Hour))
	record("retry-later", "retry", testNow.Add(time.Hour))
	record("retry-due", "retry", testNow.Add(-time.Minute))
	record("sent", "sent", time.Time{})
	record("expired", "expired", time.Time{})

	pending, err := db.PendingConsumptionRequests(ctx, lapsed, testNow, 100)
	require.NoError(t, err)
	signed := map[string]time.Time{}
	for _, r := range pending {
		signed[r.NotificationUUID] = r.SignedAt
	}
	require.Equal(t, map[string]time.Time{"long-ago": testNow.Add(-73 * time.Hour), "late": testNow.Add(-13 * time.Hour),
		"fresh": testNow.Add(-2 * time.Minute), "retry-stuck": testNow.Add(-12 * time.Hour), "retry-due": testNow.Add(-2 * time.Hour)}, signed)
	var order []string
	for _, r := range pending {
		order = append(order, r.NotificationUUID)
	}
	require.ElementsMatch(t, []string{"retry-due", "fresh"}, order[:2], "those still in time first")
	require.Equal(t, "long-ago", order[2], "then the lapsed, oldest received first")
	require.ElementsMatch(t, []string{"retry-stuck", "late"}, order[3:]) // received together
}

// Recording a request expired without an attempt keeps the JSON the last
// attempt sent and its error, and counts no attempt.
func TestConsumptionExpiryKeepsLastAttempt(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	consumptionRequest(t, db, "c1", "t1", testNow.Add(-13*time.Hour))
	req := ConsumptionRequest{NotificationUUID: "c1", TransactionID: "t1", Environment: "Sandbox"}
	require.NoError(t, db.RecordConsumptionAnswer(ctx, ConsumptionAnswer{Request: req, Status: "retry", Body: []byte(`{"a":1}`),
		Err: "503", NextAttempt: testNow.Add(time.Hour)}))
	req.Attempts = 1
	require.NoError(t, db.RecordConsumptionAnswer(ctx, ConsumptionAnswer{Request: req, Status: "expired", Err: "deadline passed"}))
	require.Equal(t, []string{`expired 1 {"a":1} deadline passed (last attempt: 503)`}, queryStrings(t, db,
		`SELECT status || ' ' || attempts || ' ' || request || ' ' || last_error FROM consumption_answers WHERE next_attempt_at IS NULL`))
}
