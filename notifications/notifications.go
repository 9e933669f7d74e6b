// Package notifications is the one path every App Store Server Notification
// takes, whoever brings it (Apple's webhook call, or the reconcile job):
// verify, then record durably and apply in one transaction, idempotent by
// notificationUUID.
package notifications

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/entitlements/sqlite"
	"github.com/creditsd/creditsd/receipts"
)

// Sources of a notification.
const (
	SourceWebhook   = "webhook"
	SourceReconcile = "reconcile"
)

// Verifier verifies a signedPayload, its inner payloads included.
type Verifier interface {
	VerifyNotification(signedPayload string) (*receipts.Notification, error)
}

// Store records a notification and applies its effect atomically.
type Store interface {
	RecordNotification(ctx context.Context, n sqlite.Notification, eff sqlite.Effect) (sqlite.Recorded, error)
}

// Processor verifies, records and applies notifications.
type Processor struct {
	Verifier Verifier
	Store    Store
	Catalog  entitlements.Catalog
	Now      func() time.Time
	Log      *slog.Logger
	Metrics  *Metrics
}

// Result is what processing one notification did.
type Result struct {
	NotificationUUID string `json:"notification_uuid"`
	Type             string `json:"notification_type"`
	Duplicate        bool   `json:"duplicate"`
	Outcome          string `json:"outcome"`
}

// Process verifies signedPayload, then records and applies it. A returned
// *receipts.Error means it did not verify (permanent unless Retryable); any
// other error means it could not be recorded, and the sender should retry.
func (p *Processor) Process(ctx context.Context, signedPayload, source string) (Result, error) {
	n, err := p.Verifier.VerifyNotification(signedPayload)
	if err != nil {
		p.Metrics.rejected(err)
		p.logRefused(ctx, err, source)
		return Result{}, err
	}
	rec, eff := p.plan(n, source)
	recorded, err := p.Store.RecordNotification(ctx, rec, eff)
	if err != nil {
		if ctx.Err() == nil { // not the sender hanging up: the store's own failure
			p.Metrics.failed()
		}
		return Result{}, err
	}
	dup := recorded.Duplicate
	res := Result{NotificationUUID: n.NotificationUUID, Type: n.NotificationType, Duplicate: dup, Outcome: recorded.Outcome}
	p.Metrics.recorded(res)
	p.Log.InfoContext(ctx, "notification", "uuid", res.NotificationUUID, "type", res.Type, "subtype", n.Subtype,
		"transaction_id", rec.TransactionID, "source", source, "duplicate", dup, "outcome", res.Outcome)
	return res, nil
}

// logRefused logs a refused notification at warn when Apple signed it, as
// far as the configured roots tell: another app's, environment's or
// appAppleId's notification is a deployment's configuration that refuses
// Apple's own, which an operator must hear of. Junk that anyone may post
// (bad JWS, a chain or signature that does not verify) is only counted
// (creditsd_notifications_rejected_total) and logged at debug, so that
// it cannot flood the log.
func (p *Processor) logRefused(ctx context.Context, err error, source string) {
	var ve *receipts.Error
	level := slog.LevelDebug
	if errors.As(err, &ve) && slices.Contains(signedButRefused, ve.Code) {
		level = slog.LevelWarn
	}
	p.Log.Log(ctx, level, "notification refused", "source", source, "err", err)
}

// signedButRefused are the codes of notifications refused after their
// chain and signature verified.
var signedButRefused = []receipts.Code{receipts.CodeAppIdentifier, receipts.CodeEnvironment,
	receipts.CodeInnerMismatch, receipts.CodeConfig}

// plan decides what n does before anything is stored; the store records
// what applying it actually did (a lot may wait for its user). Every notification
// that carries a verified transaction records it: any of them proves the
// purchase, so a missed ONE_TIME_CHARGE is made good by the next one.
func (p *Processor) plan(n *receipts.Notification, source string) (sqlite.Notification, sqlite.Effect) {
	rec := sqlite.Notification{
		UUID: n.NotificationUUID, Type: n.NotificationType, Subtype: n.Subtype, Environment: n.Environment(),
		SignedDate: n.SignedDate, JWS: n.JWS, Source: source, Outcome: "recorded",
	}
	if n.Transaction == nil {
		return rec, sqlite.Effect{Renewal: n.Renewal}
	}
	rec.TransactionID = n.Transaction.TransactionID
	rec.OriginalTransactionID = n.Transaction.OriginalTransactionID
	purchase := entitlements.PurchaseFrom(n.Transaction)
	grant, err := entitlements.PlanGrant(purchase, p.Catalog, p.Now())
	if err != nil {
		rec.Outcome = entitlements.ErrorCode(err)
		return rec, sqlite.Effect{Renewal: n.Renewal}
	}
	return rec, sqlite.Effect{Purchase: &purchase, Grant: grant, Renewal: n.Renewal}
}
