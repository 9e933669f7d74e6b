package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	Window       time.Duration // how far back each run looks at least; at most MaxWindow
	OnlyFailures bool          // only notifications Apple could not deliver
}

// JobCounts reads back what earlier runs recorded in their counts;
// *sqlite.DB is one.
type JobCounts interface {
	LatestJobCount(ctx context.Context, job, key string) (int64, bool, error)
}

// RetentionMargin keeps a request's startDate this much younger than the
// history Apple keeps (serverapi.HistoryRetention): Apple measures the
// startDate's age when the request arrives, a little after it was
// computed, and by its own clock.
const RetentionMargin = time.Hour

// ResumeOverlap is how far before the end of the last history a run read
// to its end the next run starts again: clocks differ, and Apple may list a
// notification a little after the time it gives it. Reading one twice
// changes nothing (notificationUUID).
const ResumeOverlap = time.Hour

// MaxWindow is the longest window: Production keeps 180 days of history,
// less RetentionMargin. A Sandbox request reaches back at most 30 days, less
// the margin, whatever the window.
const MaxWindow = serverapi.ProductionHistoryRetention - RetentionMargin

// Reconcile feeds every notification in Apple's history through the same
// path as the webhook, so a missed webhook call is made good; what was
// already applied changes nothing (notificationUUID). For each environment
// it reads from where the last run that read that environment's history to
// its end stopped (less ResumeOverlap), or the window back if that is
// earlier, so an outage of the webhook or of reconcile itself longer than
// the window loses nothing Apple still keeps. Where an environment's
// history was read from and through is kept in the run's counts
// (production_from_ms, production_through_ms, sandbox_…), the latter only
// once all of it was fed.
func Reconcile(client HistoryClient, inbox Inbox, runs JobCounts, opts ReconcileOptions) Func {
	return func(ctx context.Context, now time.Time) (Result, error) {
		res := Result{"seen": 0, "new": 0, "duplicates": 0, "rejected": 0}
		// An environment that fails does not keep the next from being read:
		// the run fails, and the next run reads the failed one again.
		var errs []error
		for _, env := range serverapi.Environments(opts.Environments) {
			if err := reconcileHistory(ctx, client, inbox, runs, opts, env, now, res); err != nil {
				if ctx.Err() != nil {
					return res, err
				}
				errs = append(errs, fmt.Errorf("%s history: %w", env, err))
			}
		}
		return res, errors.Join(errs...)
	}
}

// reconcileHistory reads env's history from where it was last read
// through, or the window back, and marks in res what it read.
func reconcileHistory(ctx context.Context, client HistoryClient, inbox Inbox, runs JobCounts, opts ReconcileOptions,
	env string, now time.Time, res Result) error {
	through, read, err := runs.LatestJobCount(ctx, ReconcileName, throughKey(env))
	if err != nil {
		return err
	}
	kept := serverapi.HistoryRetention(env) - RetentionMargin
	back := opts.Window
	switch {
	case read && through > now.UnixMilli():
		// A mark ahead of now (a clock put back) says nothing of what
		// was read: read all that Apple keeps, until a run does.
		back = kept
	case read:
		unread := now.Sub(time.UnixMilli(through))
		back = max(back, unread+ResumeOverlap)
		if lost := unread - kept; lost > 0 {
			// Apple no longer keeps part of the gap since the last read:
			// nothing can read it now, but the run's counts (logged, and
			// kept in job_runs) say how much, so that an operator knows
			// to look elsewhere.
			res[lostKey(env)] = lost.Milliseconds()
		}
	}
	req := serverapi.NotificationHistoryRequest{StartDate: now.Add(-min(back, kept)).UnixMilli(), EndDate: now.UnixMilli(),
		OnlyFailures: opts.OnlyFailures}
	res[fromKey(env)] = req.StartDate
	if err := reconcileEnvironment(ctx, client, inbox, env, req, res); err != nil {
		return err
	}
	res[throughKey(env)] = req.EndDate
	return nil
}

// throughKey and fromKey name the counts that say which stretch of env's
// history a run read.
func throughKey(env string) string { return strings.ToLower(env) + "_through_ms" }
func fromKey(env string) string    { return strings.ToLower(env) + "_from_ms" }

// lostKey names the count of how much history a run wanted from env that
// Apple no longer keeps (present only when some is).
func lostKey(env string) string { return strings.ToLower(env) + "_beyond_retention_ms" }

func reconcileEnvironment(ctx context.Context, client HistoryClient, inbox Inbox, env string,
	req serverapi.NotificationHistoryRequest, res Result) error {
	token := ""
	asked := map[string]bool{} // the tokens followed: one met again would loop for ever
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
		if !page.HasMore {
			return nil
		}
		if page.PaginationToken == "" {
			// Without its token the rest cannot be asked for; ending here
			// would mark history read that was not.
			return errors.New("a history page says more follows but has no paginationToken")
		}
		if asked[page.PaginationToken] {
			// Following it would read the same pages again, without end,
			// under a lease kept alive the while.
			return fmt.Errorf("a history page gives paginationToken %q, which an earlier page gave", page.PaginationToken)
		}
		token = page.PaginationToken
		asked[token] = true
	}
}

// feed processes one notification. One that does not verify is counted
// and passed over (it would never verify); a failure to record stops the
// run, which the next one repeats. So does a notification refused as not
// this app's, not of an accepted environment, or not signed by a trusted
// root: Apple's history holds only this app's own, signed by Apple, so
// that is this service's configuration at fault (apple.bundle_id,
// app_apple_id, environments, root_certificates), and passed over, its
// notifications were lost for good once the mark moved past them.
func feed(ctx context.Context, inbox Inbox, signedPayload string, res Result) error {
	res["seen"]++
	r, err := inbox.Process(ctx, signedPayload, notifications.SourceReconcile)
	var ve *receipts.Error
	switch {
	case errors.As(err, &ve) && (ve.Code == receipts.CodeAppIdentifier || ve.Code == receipts.CodeEnvironment):
		return fmt.Errorf("a notification of Apple's own history is refused here, so the configuration "+
			"(apple.bundle_id, app_apple_id, environments) is not this app's: %w", err)
	case errors.As(err, &ve) && ve.Code == receipts.CodeChain:
		return fmt.Errorf("a notification of Apple's own history does not chain to a trusted root, so the roots "+
			"(apple.root_certificates, or the built-in Apple Root CA - G3 when it is empty) are not the one Apple signs with: %w", err)
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
