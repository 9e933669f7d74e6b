package jobs

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements/sqlite"
	"github.com/creditsd/creditsd/notifications"
	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/serverapi"
)

type fakeHistory struct {
	pages map[string][]serverapi.NotificationHistoryResponse // by environment, in order
	asked []string
	reqs  map[string]serverapi.NotificationHistoryRequest // the last request, by environment
	fail  map[string]error                                // what an environment answers instead
}

func (f *fakeHistory) GetNotificationHistory(_ context.Context, env string, req serverapi.NotificationHistoryRequest, token string) (*serverapi.NotificationHistoryResponse, error) {
	f.asked = append(f.asked, env+":"+token)
	if f.reqs == nil {
		f.reqs = map[string]serverapi.NotificationHistoryRequest{}
	}
	f.reqs[env] = req
	if err := f.fail[env]; err != nil {
		return nil, err
	}
	i := 0
	if token != "" {
		fmt.Sscan(token, &i)
	}
	return &f.pages[env][i], nil
}

type fakeInbox map[string]bool // payload → seen before

func (f fakeInbox) Process(_ context.Context, payload, source string) (notifications.Result, error) {
	switch {
	case payload == "bad":
		return notifications.Result{}, &receipts.Error{Code: receipts.CodeSignature}
	case payload == "unrecordable":
		return notifications.Result{}, errors.New("disk full")
	case payload == "another-app":
		return notifications.Result{}, &receipts.Error{Code: receipts.CodeAppIdentifier}
	case payload == "another-root":
		return notifications.Result{}, &receipts.Error{Code: receipts.CodeChain}
	}
	dup := f[payload]
	f[payload] = true
	return notifications.Result{Duplicate: dup}, nil
}

// fakeCounts is what earlier runs of reconcile recorded: key → the newest value.
type fakeCounts map[string]int64

func (f fakeCounts) LatestJobCount(_ context.Context, job, key string) (int64, bool, error) {
	if job != ReconcileName {
		return 0, false, fmt.Errorf("job %q", job)
	}
	v, ok := f[key]
	return v, ok, nil
}

func page(more bool, token string, payloads ...string) serverapi.NotificationHistoryResponse {
	r := serverapi.NotificationHistoryResponse{HasMore: more, PaginationToken: token}
	for _, p := range payloads {
		r.NotificationHistory = append(r.NotificationHistory, serverapi.NotificationHistoryItem{SignedPayload: p})
	}
	return r
}

func TestReconcile(t *testing.T) {
	h := &fakeHistory{pages: map[string][]serverapi.NotificationHistoryResponse{
		receipts.Production: {page(true, "1", "a", "b"), page(false, "", "c")},
		receipts.Sandbox:    {page(false, "", "a", "bad", "d")},
	}}
	inbox := fakeInbox{"c": true}
	run := Reconcile(h, inbox, fakeCounts{}, ReconcileOptions{Environments: []string{receipts.Sandbox, receipts.Production, receipts.LocalTesting}, Window: time.Hour})
	now := time.Now()
	res, err := run(context.Background(), now)
	require.NoError(t, err)
	from, through := now.Add(-time.Hour).UnixMilli(), now.UnixMilli()
	require.Equal(t, Result{"seen": 6, "new": 3, "duplicates": 2, "rejected": 1,
		"production_from_ms": from, "production_through_ms": through, "sandbox_from_ms": from, "sandbox_through_ms": through}, res)
	require.Equal(t, []string{"Production:", "Production:1", "Sandbox:"}, h.asked, "every page, Production first, no API for LocalTesting")

	h.pages[receipts.Sandbox] = []serverapi.NotificationHistoryResponse{page(false, "", "unrecordable")}
	res, err = Reconcile(h, inbox, fakeCounts{}, ReconcileOptions{Environments: []string{receipts.Sandbox}, Window: time.Hour})(context.Background(), now)
	require.Error(t, err, "a notification that could not be recorded fails the run, so the next one repeats it")
	require.NotContains(t, res, "sandbox_through_ms", "nor does it count as read")

	// Apple's history holds only this app's notifications: one refused as
	// another app's is this service's configuration at fault, and passed
	// over it would be lost once the mark moved past it.
	h.pages[receipts.Sandbox] = []serverapi.NotificationHistoryResponse{page(false, "", "another-app")}
	res, err = Reconcile(h, inbox, fakeCounts{}, ReconcileOptions{Environments: []string{receipts.Sandbox}, Window: time.Hour})(context.Background(), now)
	require.ErrorContains(t, err, "apple.bundle_id")
	require.NotContains(t, res, "sandbox_through_ms")

	// So is one that does not chain to the configured roots: Apple signed
	// it, so the roots are not Apple's (a staging CA left in the config).
	h.pages[receipts.Sandbox] = []serverapi.NotificationHistoryResponse{page(false, "", "a", "another-root")}
	res, err = Reconcile(h, inbox, fakeCounts{}, ReconcileOptions{Environments: []string{receipts.Sandbox}, Window: time.Hour})(context.Background(), now)
	require.ErrorContains(t, err, "apple.root_certificates")
	require.NotContains(t, res, "sandbox_through_ms")
}

// Apple keeps 180 days of Production history and 30 of Sandbox: a window
// longer than an environment keeps starts that environment's request an
// hour inside what it keeps, never before.
func TestReconcileStaysWithinAppleRetention(t *testing.T) {
	const day = 24 * time.Hour
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		window              time.Duration
		production, sandbox time.Duration // back from now
	}{
		{72 * time.Hour, 72 * time.Hour, 72 * time.Hour},
		{29 * day, 29 * day, 29 * day},
		{31 * day, 31 * day, 30*day - time.Hour},
		{MaxWindow, 180*day - time.Hour, 30*day - time.Hour},
	} {
		h := &fakeHistory{pages: map[string][]serverapi.NotificationHistoryResponse{
			receipts.Production: {page(false, "")}, receipts.Sandbox: {page(false, "")}}}
		res, err := Reconcile(h, fakeInbox{}, fakeCounts{}, ReconcileOptions{Environments: []string{receipts.Production, receipts.Sandbox},
			Window: c.window})(context.Background(), now)
		require.NoError(t, err)
		for env, back := range map[string]time.Duration{receipts.Production: c.production, receipts.Sandbox: c.sandbox} {
			require.Equal(t, now.Add(-back).UnixMilli(), h.reqs[env].StartDate, "%s, window %s", env, c.window)
			require.Equal(t, now.UnixMilli(), h.reqs[env].EndDate)
			require.NotContains(t, res, lostKey(env), "%s, window %s: a window is not a gap, nothing was lost", env, c.window)
		}
	}
	require.Equal(t, 4319*time.Hour, MaxWindow)
}

// Each environment's history is read from where the last run that read it
// to its end stopped, less an hour, when that is earlier than the window:
// a gap longer than the window (an outage, or reconcile failing for days)
// is read. Never before what Apple keeps, though.
func TestReconcileResumesAfterAGap(t *testing.T) {
	const day = 24 * time.Hour
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	ms := func(back time.Duration) int64 { return now.Add(-back).UnixMilli() }
	for _, c := range []struct {
		name                string
		counts              fakeCounts
		production, sandbox time.Duration // back from now
		lost                Result        // the *_beyond_retention_ms counts
	}{
		{"no run yet: the window", fakeCounts{}, 72 * time.Hour, 72 * time.Hour, nil},
		{"read an hour ago: still the window, a minimum",
			fakeCounts{"production_through_ms": ms(time.Hour), "sandbox_through_ms": ms(time.Hour)}, 72 * time.Hour, 72 * time.Hour, nil},
		{"read through 10 days ago: from then, less an hour",
			fakeCounts{"production_through_ms": ms(10 * day), "sandbox_through_ms": ms(5 * day)}, 10*day + time.Hour, 5*day + time.Hour, nil},
		{"each environment its own: Sandbox never read", fakeCounts{"production_through_ms": ms(10 * day)}, 10*day + time.Hour, 72 * time.Hour, nil},
		{"beyond what Apple keeps: as far as it does, less an hour, and how much is lost counted",
			fakeCounts{"production_through_ms": ms(200 * day), "sandbox_through_ms": ms(40 * day)}, 180*day - time.Hour, 30*day - time.Hour,
			Result{"production_beyond_retention_ms": (20*day + time.Hour).Milliseconds(),
				"sandbox_beyond_retention_ms": (10*day + time.Hour).Milliseconds()}},
		{"just inside what Apple keeps: nothing lost, though the overlap reaches past it",
			fakeCounts{"production_through_ms": ms(180*day - 90*time.Minute)}, 180*day - time.Hour, 72 * time.Hour, nil},
		{"a mark in the future (a clock put back since): all that Apple keeps, until a run reads it",
			fakeCounts{"production_through_ms": ms(-day), "sandbox_through_ms": ms(-day)}, 180*day - time.Hour, 30*day - time.Hour, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := &fakeHistory{pages: map[string][]serverapi.NotificationHistoryResponse{
				receipts.Production: {page(false, "")}, receipts.Sandbox: {page(false, "")}}}
			res, err := Reconcile(h, fakeInbox{}, c.counts, ReconcileOptions{Environments: []string{receipts.Production, receipts.Sandbox},
				Window: 72 * time.Hour})(context.Background(), now)
			require.NoError(t, err)
			require.Equal(t, ms(c.production), h.reqs[receipts.Production].StartDate)
			require.Equal(t, ms(c.sandbox), h.reqs[receipts.Sandbox].StartDate)
			require.Equal(t, ms(c.production), res["production_from_ms"])
			require.Equal(t, now.UnixMilli(), res["production_through_ms"], "read to its end: the next run starts here")
			require.Equal(t, now.UnixMilli(), res["sandbox_through_ms"])
			for _, key := range []string{"production_beyond_retention_ms", "sandbox_beyond_retention_ms"} {
				want, lost := c.lost[key]
				got, said := res[key]
				require.Equal(t, lost, said, key)
				require.Equal(t, want, got, key)
			}
		})
	}
}

// A page that says more follows but gives no token ends the run in error:
// ending there would mark as read history that was not.
func TestReconcileRefusesAMoreWithoutAToken(t *testing.T) {
	h := &fakeHistory{pages: map[string][]serverapi.NotificationHistoryResponse{receipts.Sandbox: {page(true, "", "s")}}}
	res, err := Reconcile(h, fakeInbox{}, fakeCounts{}, ReconcileOptions{Environments: []string{receipts.Sandbox},
		Window: time.Hour})(context.Background(), time.Now())
	require.ErrorContains(t, err, "no paginationToken")
	require.NotContains(t, res, "sandbox_through_ms")
}

// A page whose token an earlier page gave ends the run in error: following
// it would read the same pages for ever (an audit's fake was asked 2.8
// million times in 200 ms).
func TestReconcileRefusesARepeatedToken(t *testing.T) {
	for name, pages := range map[string][]serverapi.NotificationHistoryResponse{
		"the same token again": {page(true, "1", "a"), page(true, "1", "b")},
		"a cycle of tokens":    {page(true, "1", "a"), page(true, "2", "b"), page(true, "1", "c")},
	} {
		t.Run(name, func(t *testing.T) {
			h := &fakeHistory{pages: map[string][]serverapi.NotificationHistoryResponse{receipts.Sandbox: pages}}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // fails, not hangs, without the check
			defer cancel()
			res, err := Reconcile(h, fakeInbox{}, fakeCounts{}, ReconcileOptions{Environments: []string{receipts.Sandbox},
				Window: time.Hour})(ctx, time.Now())
			require.ErrorContains(t, err, `paginationToken "1", which an earlier page gave`)
			require.NotContains(t, res, "sandbox_through_ms", "history not read to its end is not marked read")
			require.Len(t, h.asked, len(pages))
		})
	}
}

// Production's history failing does not keep Sandbox's from being read: the
// run fails, Sandbox is marked read, Production is not (the next run reads
// it again).
func TestReconcileReadsEveryEnvironmentWhenOneFails(t *testing.T) {
	unauthorized := &serverapi.APIError{Status: 401}
	h := &fakeHistory{pages: map[string][]serverapi.NotificationHistoryResponse{receipts.Sandbox: {page(false, "", "s")}},
		fail: map[string]error{receipts.Production: unauthorized}}
	inbox := fakeInbox{}
	now := time.Now()
	res, err := Reconcile(h, inbox, fakeCounts{}, ReconcileOptions{Environments: []string{receipts.Production, receipts.Sandbox},
		Window: time.Hour})(context.Background(), now)
	require.Equal(t, []string{"Production:", "Sandbox:"}, h.asked)
	require.True(t, inbox["s"], "Sandbox's notification was fed")
	require.ErrorIs(t, err, unauthorized)
	require.ErrorContains(t, err, "Production history")
	require.Equal(t, now.UnixMilli(), res["sandbox_through_ms"])
	require.NotContains(t, res, "production_through_ms")
}

func TestConsumptionInfoFor(t *testing.T) {
	p := ConsumptionPolicy{CustomerConsented: true, SampleContentProvided: true, RefundPreference: PreferAuto}
	for _, c := range []struct {
		facts   sqlite.ConsumptionFacts
		percent int
		status  string
		prefer  string
	}{
		{sqlite.ConsumptionFacts{Delivered: true, Granted: 10, Consumed: 0}, 0, serverapi.DeliveryDelivered, serverapi.RefundGrantFull},
		{sqlite.ConsumptionFacts{Delivered: true, Granted: 30, Consumed: 10}, 33333, serverapi.DeliveryDelivered, serverapi.RefundGrantProrated},
		{sqlite.ConsumptionFacts{Delivered: true, Granted: 10, Consumed: 10}, 100000, serverapi.DeliveryDelivered, serverapi.RefundDecline},
		{sqlite.ConsumptionFacts{Delivered: true, Granted: 10, Consumed: 12}, 100000, serverapi.DeliveryDelivered, serverapi.RefundDecline},
		{sqlite.ConsumptionFacts{}, 0, serverapi.DeliveryUndeliveredOther, serverapi.RefundGrantFull},
		// All but a credit of a pack so big that its share rounds down to
		// 99999: not declined. Something used of it that rounds down to 0:
		// Apple refuses GRANT_PRORATED at 0, and prorated, 0 is a full refund.
		{sqlite.ConsumptionFacts{Delivered: true, Granted: 200000, Consumed: 199999}, 99999, serverapi.DeliveryDelivered, serverapi.RefundGrantProrated},
		{sqlite.ConsumptionFacts{Delivered: true, Granted: 200000, Consumed: 1}, 0, serverapi.DeliveryDelivered, serverapi.RefundGrantFull},
	} {
		info := ConsumptionInfoFor(c.facts, p)
		require.Equal(t, serverapi.Percent(c.percent), info.ConsumptionPercentage, c.facts)
		require.Equal(t, c.status, info.DeliveryStatus)
		require.Equal(t, c.prefer, info.RefundPreference)
		require.True(t, info.CustomerConsented)
		require.True(t, info.SampleContentProvided)
	}
	p.RefundPreference = PreferDecline
	require.Equal(t, serverapi.RefundDecline, ConsumptionInfoFor(sqlite.ConsumptionFacts{}, p).RefundPreference)
	p.RefundPreference = PreferNone
	require.Empty(t, ConsumptionInfoFor(sqlite.ConsumptionFacts{}, p).RefundPreference)
}

// Apple takes GRANT_PRORATED only with a consumptionPercentage above 0 and
// below 100000 (or none, for a subscription): the policy grant_prorated
// asks it only when the share is one, else it asks what a prorated refund
// of that share is: all of it (GRANT_FULL) or nothing (DECLINE).
func TestConsumptionInfoForProrated(t *testing.T) {
	p := ConsumptionPolicy{CustomerConsented: true, RefundPreference: PreferGrantProrated}
	for _, c := range []struct {
		facts   sqlite.ConsumptionFacts
		percent int
		prefer  string
	}{
		{sqlite.ConsumptionFacts{}, 0, serverapi.RefundGrantFull},
		{sqlite.ConsumptionFacts{Delivered: true, Granted: 10}, 0, serverapi.RefundGrantFull},
		{sqlite.ConsumptionFacts{Delivered: true, Granted: 10, Consumed: 4}, 40000, serverapi.RefundGrantProrated},
		{sqlite.ConsumptionFacts{Delivered: true, Granted: 10, Consumed: 10}, 100000, serverapi.RefundDecline},
	} {
		info := ConsumptionInfoFor(c.facts, p)
		require.Equal(t, serverapi.Percent(c.percent), info.ConsumptionPercentage, c.facts)
		require.Equal(t, c.prefer, info.RefundPreference, c.facts)
	}

	// Whatever the policy and the ledger, no answer breaks the rule.
	for _, policy := range []string{PreferAuto, PreferDecline, PreferGrantFull, PreferGrantProrated, PreferNone} {
		for _, granted := range []int64{0, 1, 10, 200000} {
			for _, consumed := range []int64{0, 1, granted / 2, granted - 1, granted, granted + 1} {
				for _, delivered := range []bool{false, true} {
					f := sqlite.ConsumptionFacts{Delivered: delivered, Granted: granted, Consumed: consumed}
					info := ConsumptionInfoFor(f, ConsumptionPolicy{CustomerConsented: true, RefundPreference: policy})
					if info.RefundPreference == serverapi.RefundGrantProrated {
						require.NotNil(t, info.ConsumptionPercentage, "%s %+v", policy, f)
						require.True(t, *info.ConsumptionPercentage > 0 && *info.ConsumptionPercentage < 100000, "%s %+v: %d", policy, f, *info.ConsumptionPercentage)
					}
				}
			}
		}
	}
}

// A subscription's period grants no lot: the tier is what was delivered,
// to its owner, and Apple computes the share used from the time elapsed,
// so the answer has no consumptionPercentage.
func TestConsumptionInfoForSubscription(t *testing.T) {
	kept := sqlite.ConsumptionFacts{Subscription: true, Delivered: true}
	unowned := sqlite.ConsumptionFacts{Subscription: true}
	for _, c := range []struct {
		policy string
		facts  sqlite.ConsumptionFacts
		status string
		prefer string
	}{
		{PreferAuto, kept, serverapi.DeliveryDelivered, serverapi.RefundGrantProrated},
		{PreferAuto, unowned, serverapi.DeliveryUndeliveredOther, serverapi.RefundGrantFull},
		{PreferGrantProrated, kept, serverapi.DeliveryDelivered, serverapi.RefundGrantProrated},
		{PreferGrantProrated, unowned, serverapi.DeliveryUndeliveredOther, serverapi.RefundGrantFull},
		{PreferDecline, kept, serverapi.DeliveryDelivered, serverapi.RefundDecline},
		{PreferGrantFull, kept, serverapi.DeliveryDelivered, serverapi.RefundGrantFull},
		{PreferNone, kept, serverapi.DeliveryDelivered, ""},
	} {
		info := ConsumptionInfoFor(c.facts, ConsumptionPolicy{CustomerConsented: true, RefundPreference: c.policy})
		require.Nil(t, info.ConsumptionPercentage, "%s %+v", c.policy, c.facts)
		require.Equal(t, c.status, info.DeliveryStatus, "%s %+v", c.policy, c.facts)
		require.Equal(t, c.prefer, info.RefundPreference, "%s %+v", c.policy, c.facts)
	}
}

type fakeConsumptionStore struct {
	pending  []sqlite.ConsumptionRequest
	answers  []sqlite.ConsumptionAnswer
	consumed int64
}

func (f *fakeConsumptionStore) PendingConsumptionRequests(context.Context, time.Time, time.Time, int) ([]sqlite.ConsumptionRequest, error) {
	return f.pending, nil
}

func (f *fakeConsumptionStore) ConsumptionFactsFor(context.Context, string, string) (sqlite.ConsumptionFacts, error) {
	return sqlite.ConsumptionFacts{Delivered: true, Granted: 10, Consumed: f.consumed}, nil
}

func (f *fakeConsumptionStore) RecordConsumptionAnswer(_ context.Context, a sqlite.ConsumptionAnswer) error {
	f.answers = append(f.answers, a)
	return nil
}

type fakeSender struct {
	err  error
	sent *int // counts the calls, when set
}

func (f fakeSender) SendConsumptionInfo(context.Context, string, string, serverapi.ConsumptionInfo) error {
	if f.sent != nil {
		*f.sent++
	}
	return f.err
}

func TestConsumptionAnswersRetriesUntilTheDeadline(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	store := &fakeConsumptionStore{consumed: 4, pending: []sqlite.ConsumptionRequest{
		{NotificationUUID: "fresh", TransactionID: "1", SignedAt: now.Add(-time.Minute), ReceivedAt: now.Add(-time.Minute), Attempts: 0},
		{NotificationUUID: "old", TransactionID: "2", SignedAt: now.Add(-11*time.Hour - 50*time.Minute), ReceivedAt: now.Add(-11*time.Hour - 50*time.Minute), Attempts: 5},
	}}
	res, err := ConsumptionAnswers(store, fakeSender{err: &serverapi.APIError{Status: 503}}, ConsumptionPolicy{CustomerConsented: true})(context.Background(), now)
	require.NoError(t, err)
	require.Equal(t, Result{"pending": 2, "sent": 0, "retry": 2, "expired": 0, "rejected": 0}, res)
	require.Equal(t, "retry", store.answers[0].Status)
	require.Equal(t, now.Add(time.Minute), store.answers[0].NextAttempt, "backoff starts at a minute")
	require.Equal(t, "retry", store.answers[1].Status, "a backoff (32 minutes) past the deadline does not give up")
	require.Equal(t, now.Add(5*time.Minute), store.answers[1].NextAttempt, "halfway to the deadline, 10 minutes away")

	store.answers = nil
	res, err = ConsumptionAnswers(store, fakeSender{}, ConsumptionPolicy{CustomerConsented: true})(context.Background(), now)
	require.NoError(t, err)
	require.Equal(t, int64(2), res["sent"])
	require.JSONEq(t, `{"customerConsented":true,"deliveryStatus":"DELIVERED","consumptionPercentage":40000,"refundPreference":"GRANT_PRORATED","sampleContentProvided":false}`,
		string(store.answers[0].Body), "each answer is recorded with what was sent")

	_, err = ConsumptionAnswers(store, fakeSender{}, ConsumptionPolicy{})(context.Background(), now)
	var skip *SkipError
	require.ErrorAs(t, err, &skip, "no consent, no data")
}

// An answer Apple refuses for good (or that the client will not send) is
// recorded rejected with why, at once: sent again it would be refused
// again, and retrying it until the deadline only hid the reason behind
// expired. Rate limits, Apple's failures and our own setup (a 401, or a
// 404 that names the app or no API at all) are retried.
func TestConsumptionAnswersRecordsRefusals(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	refusal := &serverapi.APIError{Status: 400, Code: serverapi.CodeConsumptionPercentageAutoRenewable,
		Message: "Invalid request. The consumption percentage field is not supported for auto-renewable subscription transactions."}
	for _, c := range []struct {
		err    error
		status string
	}{
		{refusal, "rejected"},
		{&serverapi.APIError{Status: 404, Code: serverapi.CodeTransactionIDNotFound}, "rejected"},
		{fmt.Errorf("%w: GRANT_PRORATED needs a percentage", serverapi.ErrInvalidRequest), "rejected"},
		{fmt.Errorf("%w, not \"Xcode\"", serverapi.ErrEnvironment), "rejected"},
		{&serverapi.APIError{Status: 401}, "retry"},
		{&serverapi.APIError{Status: 404, Code: serverapi.CodeAppNotFoundRetryable}, "retry"},
		{&serverapi.APIError{Status: 404, Code: 4040003}, "retry"}, // AppNotFoundError: the bundle id
		{&serverapi.APIError{Status: 404}, "retry"},                // no errorCode: not Apple's API
		{&serverapi.APIError{Status: 429}, "retry"},
		{&serverapi.APIError{Status: 500}, "retry"},
		{errors.New("connection reset"), "retry"},
	} {
		store := &fakeConsumptionStore{pending: []sqlite.ConsumptionRequest{
			{NotificationUUID: "n", TransactionID: "1", SignedAt: now.Add(-time.Minute), ReceivedAt: now.Add(-time.Minute), Attempts: 2}}}
		res, err := ConsumptionAnswers(store, fakeSender{err: c.err}, ConsumptionPolicy{CustomerConsented: true})(context.Background(), now)
		require.NoError(t, err)
		require.Equal(t, int64(1), res[c.status], "%v: %v", c.err, res)
		require.Len(t, store.answers, 1)
		require.Equal(t, c.status, store.answers[0].Status, c.err)
		require.Equal(t, c.err.Error(), store.answers[0].Err, "why is kept")
		if c.status == "rejected" {
			require.True(t, store.answers[0].NextAttempt.IsZero(), "never sent again")
		}
	}
	store := &fakeConsumptionStore{pending: []sqlite.ConsumptionRequest{{NotificationUUID: "n", TransactionID: "1", SignedAt: now, ReceivedAt: now}}}
	_, err := ConsumptionAnswers(store, fakeSender{err: refusal}, ConsumptionPolicy{CustomerConsented: true})(context.Background(), now)
	require.NoError(t, err)
	require.Contains(t, store.answers[0].Err, "errorCode 4000209", "Apple's errorCode is kept")
}

// Apple's 12-hour deadline counts from when it sent the request (its
// signedDate), not from when creditsd received it: a request that reached
// creditsd late (a failed webhook call, brought by reconcile) has less
// time, or none. Past the deadline nothing is sent, and the request is
// recorded expired, as a retry whose deadline passed while no run came is.
func TestConsumptionDeadlineFromAppleSignedDate(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	store := &fakeConsumptionStore{consumed: 4, pending: []sqlite.ConsumptionRequest{
		{NotificationUUID: "late", TransactionID: "1", SignedAt: now.Add(-13 * time.Hour), ReceivedAt: now.Add(-time.Minute)},
		{NotificationUUID: "stuck", TransactionID: "2", SignedAt: now.Add(-12 * time.Hour), ReceivedAt: now.Add(-12 * time.Hour), Attempts: 3},
		{NotificationUUID: "in-time", TransactionID: "3", SignedAt: now.Add(-11 * time.Hour), ReceivedAt: now.Add(-time.Minute)},
	}}
	sent := 0
	res, err := ConsumptionAnswers(store, fakeSender{sent: &sent}, ConsumptionPolicy{CustomerConsented: true})(context.Background(), now)
	require.NoError(t, err)
	require.Equal(t, Result{"pending": 3, "sent": 1, "retry": 0, "rejected": 0, "expired": 2}, res)
	require.Equal(t, 1, sent, "nothing is sent past the deadline")
	require.Equal(t, "expired", store.answers[0].Status)
	require.Empty(t, store.answers[0].Body, "no attempt was made")
	require.Contains(t, store.answers[0].Err, "2026-11-25T11:00:00Z", "the deadline is 12 hours after Apple signed it")
	require.Equal(t, "expired", store.answers[1].Status)
	require.Equal(t, "sent", store.answers[2].Status)

	// A failure 5 minutes before the deadline counted from Apple's
	// signedDate is tried again before that deadline: the backoff (8
	// minutes at the 4th attempt) fits before a deadline counted from
	// receipt, not before Apple's.
	store = &fakeConsumptionStore{pending: []sqlite.ConsumptionRequest{
		{NotificationUUID: "n", TransactionID: "1", SignedAt: now.Add(-11*time.Hour - 55*time.Minute), ReceivedAt: now.Add(-time.Hour), Attempts: 3}}}
	_, err = ConsumptionAnswers(store, fakeSender{err: &serverapi.APIError{Status: 503}}, ConsumptionPolicy{CustomerConsented: true})(context.Background(), now)
	require.NoError(t, err)
	require.Equal(t, "retry", store.answers[0].Status)
	require.Equal(t, now.Add(150*time.Second), store.answers[0].NextAttempt)
}

// A failed answer keeps being tried until Apple's deadline: Apple down from
// the request's start until 11h30 still gets its answer, at 11h40 (the
// attempt at 11h20 waits half the time left, its hourly backoff ending
// past 12h). Giving up when the backoff reached past the deadline, the job
// recorded it expired at 11h20. A wait that fits is kept. A Retry-After
// past the deadline (Apple's rate limit) is not obeyed past it either.
func TestConsumptionAnswersKeepTryingInTheLastHour(t *testing.T) {
	signed := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	up := signed.Add(11*time.Hour + 30*time.Minute)
	store := &fakeConsumptionStore{consumed: 4}
	req := sqlite.ConsumptionRequest{NotificationUUID: "n", TransactionID: "1", SignedAt: signed, ReceivedAt: signed}
	var statuses []string
	for now := signed; now.Before(signed.Add(13 * time.Hour)); now = now.Add(5 * time.Minute) {
		if len(store.answers) > 0 {
			last := store.answers[len(store.answers)-1]
			if last.Status != "retry" || now.Before(last.NextAttempt) {
				continue
			}
		}
		sender := fakeSender{err: &serverapi.APIError{Status: 503}}
		if !now.Before(up) {
			sender.err = nil
		}
		store.pending = []sqlite.ConsumptionRequest{req}
		_, err := ConsumptionAnswers(store, sender, ConsumptionPolicy{CustomerConsented: true})(context.Background(), now)
		require.NoError(t, err)
		last := store.answers[len(store.answers)-1]
		statuses = append(statuses, now.Sub(signed).String()+" "+last.Status)
		req.Attempts++
	}
	require.Equal(t, "11h40m0s sent", statuses[len(statuses)-1], "the first attempt due after 11h30: %v", statuses)

	store = &fakeConsumptionStore{pending: []sqlite.ConsumptionRequest{req}}
	now := signed.Add(11 * time.Hour)
	limited := &serverapi.APIError{Status: 429, RetryAfter: 24 * time.Hour}
	_, err := ConsumptionAnswers(store, fakeSender{err: limited}, ConsumptionPolicy{CustomerConsented: true})(context.Background(), now)
	require.NoError(t, err)
	require.Equal(t, "retry", store.answers[0].Status)
	require.Equal(t, now.Add(30*time.Minute), store.answers[0].NextAttempt)

	store = &fakeConsumptionStore{pending: []sqlite.ConsumptionRequest{req}}
	limited.RetryAfter = 40 * time.Minute // fits: not cut, or the next try is a sure 429
	_, err = ConsumptionAnswers(store, fakeSender{err: limited}, ConsumptionPolicy{CustomerConsented: true})(context.Background(), now)
	require.NoError(t, err)
	require.Equal(t, now.Add(40*time.Minute), store.answers[0].NextAttempt)
}

func TestRetryAfterHonoursApple(t *testing.T) {
	require.Equal(t, 90*time.Second, retryAfter(&serverapi.APIError{Status: 429, RetryAfter: 90 * time.Second}, 3))
	require.Equal(t, 8*time.Minute, retryAfter(errors.New("x"), 3))
	require.Equal(t, time.Hour, retryAfter(errors.New("x"), 40))
}

// reconcile's onlyFailures (issue 4: "window and onlyFailures
// configurable") reaches Apple's request, both ways, in every environment.
func TestReconcileAsksOnlyFailuresAsConfigured(t *testing.T) {
	for _, only := range []bool{true, false} {
		h := &fakeHistory{pages: map[string][]serverapi.NotificationHistoryResponse{
			receipts.Production: {page(false, "")}, receipts.Sandbox: {page(false, "")}}}
		_, err := Reconcile(h, fakeInbox{}, fakeCounts{}, ReconcileOptions{Environments: []string{receipts.Production, receipts.Sandbox},
			Window: time.Hour, OnlyFailures: only})(context.Background(), time.Now())
		require.NoError(t, err)
		for _, env := range []string{receipts.Production, receipts.Sandbox} {
			require.Equal(t, only, h.reqs[env].OnlyFailures, "%s, only_failures %v", env, only)
		}
	}
}
