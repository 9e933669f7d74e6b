package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// ConsumptionRequest is a CONSUMPTION_REQUEST notification awaiting its answer.
type ConsumptionRequest struct {
	NotificationUUID string
	TransactionID    string
	Environment      string
	SignedAt         time.Time // Apple's signedDate: its deadline counts from here
	ReceivedAt       time.Time
	Attempts         int
}

// ConsumptionFacts is what the ledger knows of a transaction's lot, or of
// its subscription period.
type ConsumptionFacts struct {
	// Subscription says the transaction is a period of an auto-renewable
	// subscription (Apple's type says so, or it is kept with a tier and no
	// lot): it grants no credits, and the tier is what it delivers.
	Subscription bool
	Delivered    bool  // a lot was granted for it; for a subscription, the period was kept for an owner
	Granted      int64 // its lot's credits
	Consumed     int64 // spent from it, net of reversals, and other debts it paid (spentFromSQL)
}

// autoRenewable is Apple's type of an auto-renewable subscription's transactions.
const autoRenewable = "Auto-Renewable Subscription"

// consumptionHorizon bounds how far back the pending scan reads: a request
// received longer ago that never got an answer (the job had no credentials,
// say) lapsed long before (Apple waits 12 hours), and is left unrecorded
// rather than read again at every run. The scan is a range of the
// notifications_type index.
const consumptionHorizon = 30 * 24 * time.Hour

// PendingConsumptionRequests are the requests that have no answer yet or
// whose retry is due at now, and the retries that Apple signed at or before
// lapsed, whose deadline has passed: the caller records those expired. An
// unanswered request received within consumptionHorizon is returned
// however old it is, so that one whose deadline passed before it reached
// creditsd (a failed webhook call that reconcile brought later) is
// recorded too. Those still in time come first, oldest first, so that a
// backlog of lapsed ones does not hold up a fresh one.
func (db *DB) PendingConsumptionRequests(ctx context.Context, lapsed, now time.Time, limit int) ([]ConsumptionRequest, error) {
	var out []ConsumptionRequest
	err := db.view(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT n.notification_uuid, n.transaction_id, n.environment, n.signed_date,
			n.received_at, COALESCE(a.attempts, 0) FROM notifications n
			LEFT JOIN consumption_answers a ON a.notification_uuid = n.notification_uuid
			WHERE n.notification_type = 'CONSUMPTION_REQUEST' AND n.received_at > ?4 AND n.transaction_id != ''
			AND (a.notification_uuid IS NULL OR (a.status = 'retry' AND (a.next_attempt_at <= ?2 OR n.signed_date <= ?1)))
			ORDER BY n.signed_date <= ?1, n.received_at LIMIT ?3`,
			millis(lapsed), millis(now), limit, millis(now.Add(-consumptionHorizon)))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r ConsumptionRequest
			var signed, received int64
			if err := rows.Scan(&r.NotificationUUID, &r.TransactionID, &r.Environment, &signed, &received, &r.Attempts); err != nil {
				return err
			}
			r.SignedAt, r.ReceivedAt = fromMillis(signed), fromMillis(received)
			out = append(out, r)
		}
		return rows.Err()
	})
	return out, err
}

// ConsumptionFactsFor reads how much of a transaction's lot was consumed,
// or whether its subscription period was kept for an owner. The row must
// be of the request's environment: one of another under the same id is
// another transaction (kept), and of the one asked about
// nothing is known.
func (db *DB) ConsumptionFactsFor(ctx context.Context, transactionID, environment string) (ConsumptionFacts, error) {
	var f ConsumptionFacts
	err := db.view(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT type = ? OR (tier != '' AND lot_id IS NULL), user_id IS NOT NULL
			FROM apple_transactions WHERE transaction_id = ? AND environment = ?`, autoRenewable, transactionID, environment).
			Scan(&f.Subscription, &f.Delivered)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil || f.Subscription {
			return err
		}
		var lotID string
		err = tx.QueryRowContext(ctx, `SELECT lot_id, granted FROM lots WHERE transaction_id = ?`, transactionID).Scan(&lotID, &f.Granted)
		if errors.Is(err, sql.ErrNoRows) {
			f.Delivered = false
			return nil
		}
		if err != nil {
			return err
		}
		f.Delivered = true
		f.Consumed, err = tx.spentFrom(ctx, lotID)
		return err
	})
	return f, err
}

// ConsumptionAnswer is the state of one request's answer after an attempt.
type ConsumptionAnswer struct {
	Request     ConsumptionRequest
	Status      string // retry, sent, expired or rejected (Apple refused it for good; Err says why)
	Body        []byte // the JSON sent; none when the deadline passed before an attempt
	Err         string
	NextAttempt time.Time // for retry
}

// RecordConsumptionAnswer records an attempt (or the giving up) for a
// request. An answer without a Body records no attempt, and keeps the JSON
// an earlier attempt sent and, after its own Err, that attempt's error.
func (db *DB) RecordConsumptionAnswer(ctx context.Context, a ConsumptionAnswer) error {
	return db.update(ctx, func(tx *Tx) error {
		attempted := 0
		if len(a.Body) > 0 {
			attempted = 1
		}
		var answered sql.NullInt64
		if a.Status == "sent" {
			answered = sql.NullInt64{Int64: millis(tx.now), Valid: true}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO consumption_answers (notification_uuid, transaction_id, environment,
			status, attempts, request, last_error, next_attempt_at, answered_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (notification_uuid) DO UPDATE SET status = excluded.status, attempts = excluded.attempts,
			request = COALESCE(NULLIF(excluded.request, ''), request),
			last_error = CASE WHEN excluded.request = '' AND last_error != ''
				THEN excluded.last_error || ' (last attempt: ' || last_error || ')' ELSE excluded.last_error END,
			next_attempt_at = excluded.next_attempt_at, answered_at = excluded.answered_at, updated_at = excluded.updated_at`,
			a.Request.NotificationUUID, a.Request.TransactionID, a.Request.Environment, a.Status, a.Request.Attempts+attempted,
			string(a.Body), a.Err, nullMillis(a.NextAttempt), answered, millis(tx.now))
		return err
	})
}
