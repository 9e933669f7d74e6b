package notifications

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/entitlements/sqlite"
	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
)

const bundleID = "com.example.sora"

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

type fixture struct {
	t      *testing.T
	ca     *devca.CA
	db     *sqlite.DB
	srv    *httptest.Server
	tokens entitlements.TokenDeriver
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ca, err := devca.New(devca.Options{Now: now.Add(-time.Hour)})
	require.NoError(t, err)
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "n.db"))
	require.NoError(t, err)
	db.Now = func() time.Time { return now }
	t.Cleanup(func() { db.Close() })
	tokens, err := entitlements.NewTokenDeriver(entitlements.DefaultTokenNamespace)
	require.NoError(t, err)
	f := &fixture{t: t, ca: ca, db: db, tokens: tokens}
	f.srv = httptest.NewServer(f.processor(db))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) processor(store Store) *Processor {
	return &Processor{
		Verifier: &receipts.Verifier{Roots: []*x509.Certificate{f.ca.Root}, BundleID: bundleID, Environments: []string{receipts.Sandbox}},
		Store:    store,
		Catalog:  entitlements.Catalog{"credits10": {ID: "credits10", Credits: 10, ExpiresAfter: entitlements.DefaultExpiry}},
		Now:      func() time.Time { return now },
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics:  NewMetrics(prometheus.NewRegistry()),
	}
}

// notification signs an Apple-shaped notification of type around a
// consumable transaction bought by user (no transaction if txID is "").
func (f *fixture) notification(uuid, typ, txID, productID, user string) string {
	f.t.Helper()
	data := &devca.NotificationData{AppAppleID: 1, BundleID: bundleID, Environment: receipts.Sandbox}
	if txID != "" {
		token := ""
		if user != "" {
			token = f.tokens.Token(user)
		}
		tx, err := f.ca.Sign(devca.Consumable(bundleID, receipts.Sandbox, productID, txID, token, now.Add(-time.Minute)))
		require.NoError(f.t, err)
		data.SignedTransactionInfo = tx
	}
	jws, err := f.ca.Sign(devca.NotificationPayload{NotificationType: typ, NotificationUUID: uuid, Version: "2.0",
		SignedDate: devca.Millis(now), Data: data})
	require.NoError(f.t, err)
	return jws
}

// rescindConsent signs a RESCIND_CONSENT notification, which carries
// appData where others carry data.
func (f *fixture) rescindConsent(uuid string) string {
	f.t.Helper()
	jws, err := f.ca.Sign(map[string]any{"notificationType": "RESCIND_CONSENT", "notificationUUID": uuid, "version": "2.0",
		"signedDate": devca.Millis(now), "appData": map[string]any{"appAppleId": 1, "bundleId": bundleID,
			"environment": receipts.Sandbox, "signedAppTransactionInfo": "e30.e30.sig"}})
	require.NoError(f.t, err)
	return jws
}

func (f *fixture) post(body string) (int, map[string]any) {
	f.t.Helper()
	resp, err := http.Post(f.srv.URL, "application/json", strings.NewReader(body))
	require.NoError(f.t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (f *fixture) send(jws string) (int, map[string]any) {
	b, _ := json.Marshal(map[string]string{"signedPayload": jws})
	return f.post(string(b))
}

func (f *fixture) balance(user string) int64 {
	st, err := f.db.UserState(context.Background(), user, f.tokens.Token(user), "service:test")
	require.NoError(f.t, err)
	return entitlements.Compute(st, entitlements.DefaultAllowance()).Credits.Balance
}

func TestWebhookGrantsOnce(t *testing.T) {
	f := newFixture(t)
	f.balance("alice") // alice exists
	jws := f.notification("uuid-1", "ONE_TIME_CHARGE", "tx-1", "credits10", "alice")
	status, body := f.send(jws)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "granted", body["outcome"])
	require.Equal(t, int64(10), f.balance("alice"))

	status, body = f.send(jws)
	require.Equal(t, http.StatusOK, status, "a duplicate is 2xx")
	require.Equal(t, true, body["duplicate"])
	require.Equal(t, int64(10), f.balance("alice"), "and changes nothing")

	status, _ = f.send(f.notification("uuid-2", "CONSUMPTION_REQUEST", "tx-1", "credits10", "alice"))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, int64(10), f.balance("alice"), "another notification of the same transaction grants nothing more")

	status, body = f.send(f.notification("uuid-3", "REFUND_DECLINED", "tx-1", "credits10", "alice"))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "granted", body["outcome"], "a declined refund is recorded and changes nothing")
	require.Equal(t, int64(10), f.balance("alice"))
}

func TestWebhookKeepsWhatItCannotUse(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct{ name, jws, outcome string }{
		{"unknown type", f.notification("u-1", "SOMETHING_NEW", "", "", ""), "recorded"},
		{"unknown product", f.notification("u-2", "ONE_TIME_CHARGE", "tx-9", "other.product", "alice"), "unknown_product"},
		{"test notification", f.notification("u-3", "TEST", "", "", ""), "recorded"},
		{"rescind consent (appData, no data)", f.rescindConsent("u-4"), "recorded"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := f.send(c.jws)
			require.Equal(t, http.StatusOK, status)
			require.Equal(t, c.outcome, body["outcome"])
			require.Equal(t, false, body["duplicate"])
		})
	}
	require.Equal(t, int64(0), f.balance("alice"))
}

func TestWebhookRefusesWhatDoesNotVerify(t *testing.T) {
	f := newFixture(t)
	other, err := devca.New(devca.Options{Now: now.Add(-time.Hour)})
	require.NoError(t, err)
	good := f.notification("r-1", "ONE_TIME_CHARGE", "tx-r", "credits10", "alice")
	parts := strings.Split(good, ".")

	innerByStranger, err := other.Sign(devca.Consumable(bundleID, receipts.Sandbox, "credits10", "tx-s", f.tokens.Token("alice"), now))
	require.NoError(t, err)
	badInner, err := f.ca.Sign(devca.NotificationPayload{NotificationType: "ONE_TIME_CHARGE", NotificationUUID: "r-2",
		Version: "2.0", SignedDate: devca.Millis(now),
		Data: &devca.NotificationData{BundleID: bundleID, Environment: receipts.Sandbox, SignedTransactionInfo: innerByStranger}})
	require.NoError(t, err)
	wrongApp, err := f.ca.Sign(devca.NotificationPayload{NotificationType: "TEST", NotificationUUID: "r-3", Version: "2.0",
		SignedDate: devca.Millis(now), Data: &devca.NotificationData{BundleID: "com.other.app", Environment: receipts.Sandbox}})
	require.NoError(t, err)
	strangerOuter, err := other.Sign(devca.NotificationPayload{NotificationType: "TEST", NotificationUUID: "r-4", Version: "2.0",
		SignedDate: devca.Millis(now), Data: &devca.NotificationData{BundleID: bundleID, Environment: receipts.Sandbox}})
	require.NoError(t, err)

	for _, c := range []struct{ name, body, code string }{
		{"forged signature", `{"signedPayload":"` + parts[0] + "." + parts[1] + "." + parts[2][:10] + "AAAA" + parts[2][14:] + `"}`, "invalid_signature"},
		{"another CA", `{"signedPayload":"` + strangerOuter + `"}`, "invalid_chain"},
		{"bad inner transaction", `{"signedPayload":"` + badInner + `"}`, "invalid_chain"},
		{"another app", `{"signedPayload":"` + wrongApp + `"}`, "invalid_app_identifier"},
		{"not a JWS", `{"signedPayload":"hello"}`, "malformed_jws"},
		{"not JSON", `signedPayload=x`, "invalid_body"},
		{"empty payload", `{"signedPayload":""}`, "invalid_body"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := f.post(c.body)
			require.Equal(t, http.StatusBadRequest, status)
			require.Equal(t, c.code, body["code"])
		})
	}
	require.Equal(t, int64(0), f.balance("alice"), "nothing that failed to verify granted anything")
}

func TestWebhookBodyCap(t *testing.T) {
	f := newFixture(t)
	big := `{"signedPayload":"` + strings.Repeat("a", MaxBodyBytes) + `"}`
	status, body := f.post(big)
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
	require.Equal(t, "body_too_large", body["code"])

	// Without a Content-Length (chunked), the cap still holds while reading.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(big))
		pw.Close()
	}()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL, pr)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
}

// A request that declares a body past the cap is refused (413) before a
// byte is read or a buffer is made for it, whatever it really sends: the
// declared length is the client's word, and 2^50 bytes of it must not
// become an allocation.
func TestWebhookRefusesADeclaredLengthPastTheCap(t *testing.T) {
	f := newFixture(t)
	req := httptest.NewRequest(http.MethodPost, "/v1/appstore/notifications", strings.NewReader(`{"signedPayload":"a.b.c"}`))
	req.ContentLength = 1 << 50
	rec := httptest.NewRecorder()
	require.NotPanics(t, func() { f.processor(f.db).ServeHTTP(rec, req) })
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, rec.Body.String())
	var p entitlements.Problem
	require.NoError(t, json.NewDecoder(rec.Body).Decode(&p))
	require.Equal(t, "body_too_large", p.Code)
}

type failingStore struct{}

func (failingStore) RecordNotification(context.Context, sqlite.Notification, sqlite.Effect) (sqlite.Recorded, error) {
	return sqlite.Recorded{}, errors.New("disk I/O error")
}

func TestWebhookAnswers5xxOnlyWhenItCouldNotRecord(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.processor(failingStore{}))
	defer srv.Close()
	b, _ := json.Marshal(map[string]string{"signedPayload": f.notification("f-1", "ONE_TIME_CHARGE", "tx-f", "credits10", "alice")})
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(string(b)))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode, "so that Apple retries")
	var p entitlements.Problem
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	require.Equal(t, "internal", p.Code)
	require.NotContains(t, p.Detail, "disk", "internal errors are logged, not sent")
}

// cancelledStore fails as the store does when the request's context ends.
type cancelledStore struct{}

func (cancelledStore) RecordNotification(ctx context.Context, _ sqlite.Notification, _ sqlite.Effect) (sqlite.Recorded, error) {
	return sqlite.Recorded{}, ctx.Err()
}

// TestRecordFailuresCountTheStoresOwn: a sender that hangs up before its
// notification is recorded is no failure to record (the alarm an operator
// sets on creditsd_notifications_record_failures_total); the store's own
// failure is one.
func TestRecordFailuresCountTheStoresOwn(t *testing.T) {
	f := newFixture(t)
	signed := f.notification("c-1", "ONE_TIME_CHARGE", "tx-c", "credits10", "alice")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := f.processor(cancelledStore{})
	_, err := p.Process(ctx, signed, SourceWebhook)
	require.ErrorIs(t, err, context.Canceled)
	require.Zero(t, testutil.ToFloat64(p.Metrics.failures))

	p.Store = failingStore{}
	_, err = p.Process(context.Background(), signed, SourceWebhook)
	require.Error(t, err)
	require.Equal(t, 1.0, testutil.ToFloat64(p.Metrics.failures))
}

// TestWebhookAnswers503WhileTheVerifierIsMisconfigured: a Verifier that
// cannot verify anything (here no bundle id) is the service's fault, not
// the body's: 503, so that Apple retries once it is fixed, with a title
// that names that status.
func TestWebhookAnswers503WhileTheVerifierIsMisconfigured(t *testing.T) {
	f := newFixture(t)
	pr := f.processor(f.db)
	pr.Verifier = &receipts.Verifier{Roots: []*x509.Certificate{f.ca.Root}, Environments: []string{receipts.Sandbox}}
	srv := httptest.NewServer(pr)
	defer srv.Close()
	b, _ := json.Marshal(map[string]string{"signedPayload": f.notification("m-1", "ONE_TIME_CHARGE", "tx-m", "credits10", "alice")})
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(string(b)))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	var p entitlements.Problem
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	require.Equal(t, entitlements.Problem{Type: "urn:creditsd:problem:verifier_misconfigured", Title: "Service Unavailable",
		Status: http.StatusServiceUnavailable, Detail: p.Detail, Code: "verifier_misconfigured"}, p)
}

// An operator hears of Apple's own notifications that the configuration
// refuses (another bundle id or environment: the chain and signature
// verified), at warn; junk anyone may post is only debug, so that it
// cannot flood the log. A recorded notification's line names its
// transaction, so that grepping for a customer's purchase finds it.
func TestWebhookLogs(t *testing.T) {
	f := newFixture(t)
	var logged bytes.Buffer
	p := f.processor(f.db)
	p.Log = slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv := httptest.NewServer(p)
	defer srv.Close()
	f.srv = srv

	status, _ := f.send(f.notification("uuid-log-1", "ONE_TIME_CHARGE", "tx-log-1", "credits10", "alice"))
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, logged.String(), "transaction_id=tx-log-1")

	other, err := f.ca.Sign(devca.NotificationPayload{NotificationType: "TEST", NotificationUUID: "uuid-log-2", Version: "2.0",
		SignedDate: devca.Millis(now), Data: &devca.NotificationData{AppAppleID: 1, BundleID: "com.example.other", Environment: receipts.Sandbox}})
	require.NoError(t, err)
	status, _ = f.send(other)
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, logged.String(), `level=WARN msg="notification refused" source=webhook err="receipts: invalid_app_identifier`)

	logged.Reset()
	for _, junk := range []string{"a.b.c", f.notification("uuid-log-3", "TEST", "", "", "")[:200] + "x.y"} {
		status, _ = f.send(junk)
		require.Equal(t, http.StatusBadRequest, status)
	}
	require.Empty(t, logged.String(), "junk is counted, not logged above debug")
}
