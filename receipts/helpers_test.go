package receipts

import (
	"bufio"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/stretchr/testify/require"
)

const (
	testBundleID   = "com.example.credits"
	testAppAppleID = int64(1234567890)
)

// requireCode asserts err is a *Error with the given code.
func requireCode(t testing.TB, err error, code Code) {
	t.Helper()
	require.Error(t, err)
	var e *Error
	require.True(t, errors.As(err, &e), "not a *receipts.Error: %v", err)
	require.Equal(t, code, e.Code, "error: %v", err)
}

// newCA mints a devca chain; the zero Options make a healthy one.
func newCA(t testing.TB, opts devca.Options) *devca.CA {
	t.Helper()
	ca, err := devca.New(opts)
	require.NoError(t, err)
	return ca
}

// verifierFor trusts ca's root and accepts Sandbox and Production.
func verifierFor(ca *devca.CA) *Verifier {
	return &Verifier{
		Roots:        []*x509.Certificate{ca.Root},
		BundleID:     testBundleID,
		AppAppleID:   testAppAppleID,
		Environments: []string{Sandbox, Production},
	}
}

func sign(t testing.TB, ca *devca.CA, payload any) string {
	t.Helper()
	s, err := ca.Sign(payload)
	require.NoError(t, err)
	return s
}

func millisOf(tm time.Time) int64 { return tm.UnixMilli() }

// txPayload is a plausible transaction signed at signedAt.
func txPayload(signedAt time.Time) map[string]any {
	return map[string]any{
		"transactionId":         "2000000000000001",
		"originalTransactionId": "2000000000000001",
		"bundleId":              testBundleID,
		"productId":             "credits.100",
		"purchaseDate":          millisOf(signedAt.Add(-time.Minute)),
		"originalPurchaseDate":  millisOf(signedAt.Add(-time.Minute)),
		"quantity":              1,
		"type":                  "Consumable",
		"inAppOwnershipType":    "PURCHASED",
		"signedDate":            millisOf(signedAt),
		"environment":           Sandbox,
		"transactionReason":     "PURCHASE",
		"storefront":            "USA",
		"storefrontId":          "143441",
		"price":                 990,
		"currency":              "USD",
	}
}

func renewalPayload(signedAt time.Time) map[string]any {
	return map[string]any{
		"originalTransactionId": "2000000000000001",
		"autoRenewProductId":    "sub.monthly",
		"productId":             "sub.monthly",
		"autoRenewStatus":       1,
		"signedDate":            millisOf(signedAt),
		"environment":           Sandbox,
		"renewalDate":           millisOf(signedAt.Add(30 * 24 * time.Hour)),
	}
}

func notificationPayload(signedAt time.Time, data map[string]any) map[string]any {
	return map[string]any{
		"notificationType": "ONE_TIME_CHARGE",
		"notificationUUID": "7a1c1d2e-0000-4000-8000-000000000001",
		"version":          "2.0",
		"signedDate":       millisOf(signedAt),
		"data":             data,
	}
}

func notificationData(env string) map[string]any {
	return map[string]any{
		"appAppleId":  testAppAppleID,
		"bundleId":    testBundleID,
		"environment": env,
	}
}

// vector is one row of the real Apple vectors' MANIFEST.tsv.
type vector struct {
	File, Kind, Type, BundleID, AppAppleID, Environment, ProductID, TransactionID, SignedDate string
	JWS                                                                                       string
}

const vectorsDir = "../../shared/apple-vectors"

// loadVectors reads the real Apple-signed vectors, skipping only when the
// shared directory does not exist at all.
func loadVectors(t testing.TB) []vector {
	t.Helper()
	if _, err := os.Stat(vectorsDir); errors.Is(err, os.ErrNotExist) {
		t.Skip("no real Apple vectors at " + vectorsDir)
	}
	f, err := os.Open(filepath.Join(vectorsDir, "MANIFEST.tsv"))
	require.NoError(t, err)
	defer f.Close()
	var out []vector
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		require.GreaterOrEqual(t, len(c), 9, "manifest row %q", sc.Text())
		jws, err := os.ReadFile(filepath.Join(vectorsDir, c[0]))
		require.NoError(t, err)
		out = append(out, vector{c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], strings.TrimSpace(string(jws))})
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, out)
	return out
}
