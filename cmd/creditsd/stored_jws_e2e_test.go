package main

import (
	"crypto/x509"
	"database/sql"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // the database the server wrote, read back here

	"github.com/creditsd/creditsd/receipts"
)

// What Apple signed is kept as it was signed, its signer's certificate
// chain once (and once more as the notification's payload encodes it): the stored notification and transaction, read through the
// views that put their headers back, verify again, whole, to what the
// webhook was sent.
func TestEndToEndKeepsWhatAppleSigned(t *testing.T) {
	w := newWorld(t)
	signedTx := w.transaction("4000001", w.tokens.Token("alice"), time.Now().Add(-time.Minute))
	signed := w.signedNotification("8a1c1c3e-0000-4000-8000-000000000401", "ONE_TIME_CHARGE", signedTx)
	a := w.do("POST", "/v1/appstore/notifications", "", map[string]string{"signedPayload": signed})
	require.Equal(t, http.StatusOK, a.status, a.raw)
	w.proc.stop(t)

	db, err := sql.Open("sqlite", "file:"+filepath.Join(w.dir, "creditsd.db")+"?mode=ro")
	require.NoError(t, err)
	defer db.Close()
	var storedNotification, storedTx string
	require.NoError(t, db.QueryRow(`SELECT n.jws, t.jws FROM notifications_signed n, transactions_signed t
		WHERE n.notification_uuid = '8a1c1c3e-0000-4000-8000-000000000401' AND t.transaction_id = '4000001'`).
		Scan(&storedNotification, &storedTx))
	require.Equal(t, signed, storedNotification)
	require.Equal(t, signedTx, storedTx)
	var headers, rowBytes int
	require.NoError(t, db.QueryRow(`SELECT (SELECT count(*) FROM jws_headers),
		(SELECT length(jws) FROM notifications WHERE notification_uuid = '8a1c1c3e-0000-4000-8000-000000000401')`).
		Scan(&headers, &rowBytes))
	require.Equal(t, 2, headers, "one signer: its header, and the run of the notification's payload that encodes it again")
	require.Less(t, rowBytes, len(signed)-2*len(strings.SplitN(signed, ".", 2)[0]),
		"the row repeats the certificate chain neither in its header nor inside its payload")

	v := &receipts.Verifier{Roots: []*x509.Certificate{w.ca.Root}, BundleID: e2eBundle, Environments: []string{receipts.Sandbox}}
	n, err := v.VerifyNotification(storedNotification)
	require.NoError(t, err, "the stored notification verifies again")
	require.Equal(t, "4000001", n.Transaction.TransactionID)
	require.Equal(t, signedTx, n.Transaction.JWS)
}
