package serverapi_test

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/creditsd/creditsd/receipts/serverapi"
	"github.com/creditsd/creditsd/receipts/serverapi/fakeappstore"
)

// appStore is a fake App Store signing with a new test CA, and a client of it.
func appStore(t *testing.T) (*devca.CA, *fakeappstore.Server, *serverapi.Client) {
	t.Helper()
	ca, err := devca.New(devca.Options{})
	require.NoError(t, err)
	key, _ := fakeappstore.GenerateKey(t)
	srv := fakeappstore.New(t, fakeappstore.Options{CA: ca, BundleID: "com.example.sora", KeyID: "KEY1", IssuerID: "issuer", PublicKey: &key.PublicKey})
	client, err := serverapi.New(srv.ClientConfig(key))
	require.NoError(t, err)
	return ca, srv, client
}

func TestFindTransactionInfo(t *testing.T) {
	ca, srv, client := appStore(t)
	srv.AddTransaction(devca.Consumable("com.example.sora", receipts.Sandbox, "pack", "7000001", "", time.Now()))
	ctx := context.Background()

	signed, err := client.FindTransactionInfo(ctx, []string{receipts.Production, receipts.Sandbox}, "7000001")
	require.NoError(t, err, "found in Sandbox after Production said not found")
	require.Equal(t, 2, srv.Requests())
	v := receipts.Verifier{Roots: []*x509.Certificate{ca.Root}, BundleID: "com.example.sora", Environments: []string{receipts.Sandbox}}
	tx, err := v.VerifyTransaction(signed)
	require.NoError(t, err)
	require.Equal(t, "7000001", tx.TransactionID)

	_, err = client.FindTransactionInfo(ctx, []string{receipts.Production}, "7000001")
	require.True(t, errors.Is(err, serverapi.ErrNotFound), "only the accepted environments are asked")
	_, err = client.FindTransactionInfo(ctx, []string{receipts.LocalTesting}, "7000001")
	require.True(t, errors.Is(err, serverapi.ErrNotFound), "nor those the API does not serve")
	require.Equal(t, 3, srv.Requests())
}

// Production answers 401 until the app's first release, while App Review
// buys in Sandbox: a 401 there moves on to Sandbox, as a 404 does. When
// Sandbox does not know the transaction, or Production is all there is to
// ask, the 401 is the answer: Production could not be asked.
func TestFindTransactionInfoBeforeTheFirstRelease(t *testing.T) {
	_, srv, client := appStore(t)
	srv.AddTransaction(devca.Consumable("com.example.sora", receipts.Sandbox, "pack", "7000002", "", time.Now()))
	ctx := context.Background()
	both := []string{receipts.Production, receipts.Sandbox}

	srv.FailNext(http.StatusUnauthorized, "")
	signed, err := client.FindTransactionInfo(ctx, both, "7000002")
	require.NoError(t, err, "found in Sandbox after Production said 401")
	require.NotEmpty(t, signed)

	var apiErr *serverapi.APIError
	srv.FailNext(http.StatusUnauthorized, "")
	_, err = client.FindTransactionInfo(ctx, both, "7000003")
	require.ErrorAs(t, err, &apiErr, "Sandbox knows none, and Production could not be asked")
	require.Equal(t, http.StatusUnauthorized, apiErr.Status)
	require.False(t, errors.Is(err, serverapi.ErrNotFound))

	srv.FailNext(http.StatusUnauthorized, "")
	_, err = client.FindTransactionInfo(ctx, []string{receipts.Production}, "7000002")
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusUnauthorized, apiErr.Status)

	srv.FailNext(http.StatusUnauthorized, "")
	srv.FailNext(http.StatusUnauthorized, "")
	_, err = client.FindTransactionInfo(ctx, both, "7000002")
	require.ErrorAs(t, err, &apiErr, "a key Sandbox refuses too is the error")
	require.Equal(t, http.StatusUnauthorized, apiErr.Status)
}

// A 404 from Production that is not the transaction's own (the app or the
// account not found, retryable or not; no errorCode at all) says nothing of
// the transaction, so Sandbox is asked as after a 401: a retryable one
// ended the lookup, once its retries were spent, with a 503 for a receipt
// Sandbox could have claimed.
func TestFindTransactionInfoPastProductionsOtherNotFounds(t *testing.T) {
	for _, body := range []string{`{"errorCode":4040004,"errorMessage":"try again"}`, `{"errorCode":4040003}`, `404 page not found`} {
		t.Run(body, func(t *testing.T) {
			ca, err := devca.New(devca.Options{})
			require.NoError(t, err)
			key, _ := fakeappstore.GenerateKey(t)
			sandbox := fakeappstore.New(t, fakeappstore.Options{CA: ca, BundleID: "com.example.sora", KeyID: "KEY1", IssuerID: "issuer", PublicKey: &key.PublicKey})
			sandbox.AddTransaction(devca.Consumable("com.example.sora", receipts.Sandbox, "pack", "7000004", "", time.Now()))
			production := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusNotFound)
				_, _ = w.Write([]byte(body))
			}))
			t.Cleanup(production.Close)
			cfg := sandbox.ClientConfig(key)
			cfg.ProductionURL, cfg.RetryBackoff = production.URL, time.Millisecond
			client, err := serverapi.New(cfg)
			require.NoError(t, err)
			signed, err := client.FindTransactionInfo(context.Background(), []string{receipts.Production, receipts.Sandbox}, "7000004")
			require.NoError(t, err, "found in Sandbox")
			require.NotEmpty(t, signed)
		})
	}
}
