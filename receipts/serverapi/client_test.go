package serverapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/creditsd/creditsd/receipts/serverapi"
	"github.com/creditsd/creditsd/receipts/serverapi/fakeappstore"
	"github.com/stretchr/testify/require"
)

const bundleID = "com.example.credits"

// world is a fake App Store with a key the client signs with.
type world struct {
	ca     *devca.CA
	key    *ecdsa.PrivateKey
	apple  *fakeappstore.Server
	sleeps []time.Duration // waits the client asked for, in order
	mu     sync.Mutex
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ca, err := devca.New(devca.Options{})
	require.NoError(t, err)
	key, _ := fakeappstore.GenerateKey(t)
	w := &world{ca: ca, key: key}
	w.apple = fakeappstore.New(t, fakeappstore.Options{
		CA: ca, BundleID: bundleID, KeyID: "KEY123", IssuerID: "issuer-uuid", PublicKey: &key.PublicKey,
	})
	return w
}

// client returns a Client for the fake whose retries do not sleep but
// record the wait; mutate adjusts its Config first.
func (w *world) client(t *testing.T, mutate func(*serverapi.Config)) *serverapi.Client {
	t.Helper()
	cfg := w.apple.ClientConfig(w.key)
	serverapi.SetSleep(&cfg, func(_ context.Context, d time.Duration) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.sleeps = append(w.sleeps, d)
		return nil
	})
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := serverapi.New(cfg)
	require.NoError(t, err)
	return c
}

// slept is the sum of the waits the client asked for: a clock that the
// recorded sleeps move on.
func (w *world) slept() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var d time.Duration
	for _, s := range w.sleeps {
		d += s
	}
	return d
}

func (w *world) addPurchase(env, id string) {
	w.apple.AddTransaction(devca.Consumable(bundleID, env, "com.example.credits.10", id, "", time.Now()))
}

func TestGetTransactionInfo(t *testing.T) {
	w := newWorld(t)
	w.addPurchase(receipts.Production, "2000000000000001")
	w.addPurchase(receipts.Sandbox, "2000000000000002")
	c := w.client(t, nil)
	v := &receipts.Verifier{Roots: []*x509.Certificate{w.ca.Root}, BundleID: bundleID, AppAppleID: 1,
		Environments: []string{receipts.Production, receipts.Sandbox}}

	t.Run("OK", func(t *testing.T) {
		for env, id := range map[string]string{receipts.Production: "2000000000000001", receipts.Sandbox: "2000000000000002"} {
			jws, err := c.GetTransactionInfo(t.Context(), env, id)
			require.NoError(t, err)
			tx, err := v.VerifyTransaction(jws)
			require.NoError(t, err, "the answer verifies with receipts.Verifier")
			require.Equal(t, id, tx.TransactionID)
			require.Equal(t, env, tx.Environment)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		for _, id := range []string{"999", "2000000000000002"} { // unknown; Sandbox asked of Production
			_, err := c.GetTransactionInfo(t.Context(), receipts.Production, id)
			require.ErrorIs(t, err, serverapi.ErrNotFound)
			var e *serverapi.APIError
			require.ErrorAs(t, err, &e)
			require.Equal(t, serverapi.CodeTransactionIDNotFound, e.Code)
			require.False(t, e.Retryable())
		}
	})
	t.Run("ErrEnvironment", func(t *testing.T) {
		before := w.apple.Requests()
		for _, env := range []string{receipts.Xcode, receipts.LocalTesting, "production", ""} {
			_, err := c.GetTransactionInfo(t.Context(), env, "2000000000000001")
			require.ErrorIs(t, err, serverapi.ErrEnvironment)
		}
		_, err := c.GetTransactionInfo(t.Context(), receipts.Production, "../notifications/history")
		require.Error(t, err)
		require.Equal(t, before, w.apple.Requests(), "refused before any request")
	})
}

// The fake checks every claim as Apple does; a wrong setting gets a 401
// that names the settings to check and never shows the token.
func TestUnauthorized(t *testing.T) {
	w := newWorld(t)
	w.addPurchase(receipts.Production, "1")
	otherKey, _ := fakeappstore.GenerateKey(t)
	for name, mutate := range map[string]func(*serverapi.Config){
		"WrongKeyID":    func(c *serverapi.Config) { c.KeyID = "OTHER" },
		"WrongIssuer":   func(c *serverapi.Config) { c.IssuerID = "other-issuer" },
		"WrongBundleID": func(c *serverapi.Config) { c.BundleID = "com.example.other" },
		"WrongKey":      func(c *serverapi.Config) { c.PrivateKey = otherKey },
		"Expired":       func(c *serverapi.Config) { c.Now = func() time.Time { return time.Now().Add(-6 * time.Minute) } },
	} {
		t.Run(name, func(t *testing.T) {
			before := w.apple.Requests()
			_, err := w.client(t, mutate).GetTransactionInfo(t.Context(), receipts.Production, "1")
			var e *serverapi.APIError
			require.ErrorAs(t, err, &e)
			require.Equal(t, 401, e.Status)
			require.ErrorContains(t, err, "check app_store_api.key_id, issuer_id and the private key")
			require.ErrorContains(t, err, "In-App Purchase key for bundle ")
			require.NotContains(t, err.Error(), "eyJ", "the JWT leaked into the error")
			require.Equal(t, before+1, w.apple.Requests(), "a 401 is not retried")
		})
	}
}

func TestNotificationHistory(t *testing.T) {
	w := newWorld(t)
	base := time.Now().UTC().Add(-7 * 24 * time.Hour).Truncate(time.Hour) // within the 30 days Sandbox keeps
	for i := range 5 {
		w.apple.AddNotification("payload-"+string(rune('a'+i)), base.Add(time.Duration(i)*time.Hour), i%2 == 1)
	}
	w.apple.AddNotification("too-late", base.Add(48*time.Hour), true)
	c := w.client(t, nil)
	req := serverapi.NotificationHistoryRequest{StartDate: base.UnixMilli(), EndDate: base.Add(24 * time.Hour).UnixMilli()}

	t.Run("AllPages", func(t *testing.T) {
		require.Equal(t, []string{"payload-a", "payload-b", "payload-c", "payload-d", "payload-e"}, allPayloads(t, c, req))
	})
	t.Run("OnlyFailures", func(t *testing.T) {
		r := req
		r.OnlyFailures = true
		require.Equal(t, []string{"payload-b", "payload-d"}, allPayloads(t, c, r))
	})
	t.Run("SendAttempts", func(t *testing.T) {
		page, err := c.GetNotificationHistory(t.Context(), receipts.Sandbox, req, "")
		require.NoError(t, err)
		require.Equal(t, []serverapi.SendAttempt{{AttemptDate: base.UnixMilli(), SendAttemptResult: "SUCCESS"}},
			page.NotificationHistory[0].SendAttempts)
	})
	t.Run("ErrInvalidToken", func(t *testing.T) {
		_, err := c.GetNotificationHistory(t.Context(), receipts.Production, req, "forged")
		var e *serverapi.APIError
		require.ErrorAs(t, err, &e)
		require.Equal(t, serverapi.CodeInvalidPaginationToken, e.Code)
	})
	t.Run("ErrInvalidRequest", func(t *testing.T) {
		before := w.apple.Requests()
		_, err := c.GetNotificationHistory(t.Context(), receipts.Production, serverapi.NotificationHistoryRequest{}, "")
		require.Error(t, err)
		require.Equal(t, before, w.apple.Requests())
	})
}

func allPayloads(t *testing.T, c *serverapi.Client, req serverapi.NotificationHistoryRequest) []string {
	t.Helper()
	var out []string
	token := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10, "pagination never ends")
		page, err := c.GetNotificationHistory(t.Context(), receipts.Production, req, token)
		require.NoError(t, err)
		for _, item := range page.NotificationHistory {
			out = append(out, item.SignedPayload)
		}
		if !page.HasMore {
			return out
		}
		token = page.PaginationToken
	}
}

func TestSendConsumptionInfo(t *testing.T) {
	w := newWorld(t)
	w.addPurchase(receipts.Sandbox, "2000000000000003")
	c := w.client(t, nil)
	info := serverapi.ConsumptionInfo{CustomerConsented: true, DeliveryStatus: serverapi.DeliveryDelivered,
		ConsumptionPercentage: serverapi.Percent(40000), RefundPreference: serverapi.RefundGrantProrated, SampleContentProvided: true}

	// The fake refuses unknown or missing field names, so this also pins
	// the JSON names against Apple's.
	require.NoError(t, c.SendConsumptionInfo(t.Context(), receipts.Sandbox, "2000000000000003", info))
	require.Equal(t, map[string][]serverapi.ConsumptionInfo{"2000000000000003": {info}}, w.apple.Consumption())

	err := c.SendConsumptionInfo(t.Context(), receipts.Production, "2000000000000003", info)
	require.ErrorIs(t, err, serverapi.ErrNotFound, "a Sandbox transaction is unknown to Production")

	before := w.apple.Requests()
	info.CustomerConsented = false
	require.ErrorContains(t, c.SendConsumptionInfo(t.Context(), receipts.Sandbox, "2000000000000003", info), "consent")
	require.Equal(t, before, w.apple.Requests(), "refused before any request")
}

// A shared Client under concurrent use; run with -race.
func TestClientConcurrent(t *testing.T) {
	w := newWorld(t)
	w.addPurchase(receipts.Production, "42")
	c := w.client(t, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if _, err := c.GetTransactionInfo(context.Background(), receipts.Production, "42"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}
