package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/creditsd/creditsd/notifications"
	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/serverapi"
)

// HistoryClient pages through Apple's Get Notification History.
type HistoryClient interface {
	GetNotificationHistory(ctx context.Context, environment string, req serverapi.NotificationHistoryRequest,
		paginationToken string) (*serverapi.NotificationHistoryResponse, error)
}

// Inbox is the one path every notification takes (notifications.Processor).
type Inbox interface {
	Process(ctx context.Context, signedPayload, source string) (notifications.Result, error)
}

// ReconcileOptions says what history to ask Apple for.
type ReconcileOptions struct {
	Environments []string      // the accepted ones; only Production and Sandbox have an API
	Window       time.Duration // how far back each run looks, at most MaxWindow
	OnlyFailures bool          // only notifications Apple could not deliver
}

// RetentionMargin keeps a request's startDate this much younger than the
// history Apple keeps (serverapi.HistoryRetention): Apple measures the
// startDate's age when the request arrives, a little after it was
// computed, and by its own clock.
const RetentionMargin = time.Hour

// MaxWindow is the longest window: Production keeps 180 days of history,
// less RetentionMargin. A Sandbox request reaches back at most 30 days, less
// the margin, whatever the window.
const MaxWindow = serverapi.ProductionHistoryRetention - RetentionMargin

// Reconcile feeds every notification in Apple's history for the window
// through the same path as the webhook, so a missed webhook call is made
// good; what was already applied changes nothing (notificationUUID).
func Reconcile(client HistoryClient, inbox Inbox, opts ReconcileOptions) Func {
	return func(ctx context.Context, now time.Time) (Result, error) {
		res := Result{"seen": 0, "new": 0, "duplicates": 0, "rejected": 0}
		for _, env := range serverapi.Environments(opts.Environments) {
			req := serverapi.NotificationHistoryRequest{StartDate: historyStart(env, now, opts.Window).UnixMilli(),
				EndDate: now.UnixMilli(), OnlyFailures: opts.OnlyFailures}
			if err := reconcileEnvironment(ctx, client, inbox, env, req, res); err != nil {
				return res, err
			}
		}
		return res, nil
	}
}

// historyStart is where a run at now asks env's history from: the window
// back, but never before what Apple keeps for env, less RetentionMargin
// (Apple refuses an older startDate, failing the whole run).
func historyStart(env string, now time.Time, window time.Duration) time.Time {
	return latest(now.Add(-window), now.Add(-(serverapi.HistoryRetention(env) - RetentionMargin)))
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func reconcileEnvironment(ctx context.Context, client HistoryClient, inbox Inbox, env string,
	req serverapi.NotificationHistoryRequest, res Result) error {
	token := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		page, err := client.GetNotificationHistory(ctx, env, req, token)
		if err != nil {
			return err
		}
		for _, item := range page.NotificationHistory {
			if err := feed(ctx, inbox, item.SignedPayload, res); err != nil {
				return err
			}
		}
		if !page.HasMore || page.PaginationToken == "" {
			return nil
		}
		token = page.PaginationToken
	}
}

// feed processes one notification. One that does not verify is counted
// and passed over (it would never verify); a failure to record stops the
// run, which the next one repeats.
func feed(ctx context.Context, inbox Inbox, signedPayload string, res Result) error {
	res["seen"]++
	r, err := inbox.Process(ctx, signedPayload, notifications.SourceReconcile)
	var ve *receipts.Error
	switch {
	case errors.As(err, &ve) && !ve.Retryable():
		res["rejected"]++
	case err != nil:
		return err
	case r.Duplicate:
		res["duplicates"]++
	default:
		res["new"]++
	}
	return nil
}
