package receipts

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/stretchr/testify/require"
)

// vectorVerifier is configured the way a real deployment for the vector's
// app would be: the embedded root, its bundle id and app id, Sandbox.
func vectorVerifier(t testing.TB, v vector) *Verifier {
	var appID int64
	if v.AppAppleID != "" {
		id, err := strconv.ParseInt(v.AppAppleID, 10, 64)
		require.NoError(t, err)
		appID = id
	}
	bundle := v.BundleID
	if bundle == "" {
		bundle = "unused.for.renewals"
	}
	return &Verifier{BundleID: bundle, AppAppleID: appID, Environments: []string{Sandbox}}
}

// decoded is what the manifest says about a vector, read back from the
// verified payload.
type decoded struct {
	signed                                   time.Time
	typ, productID, txID, bundle, env, appID string
}

// verifyVector verifies v.JWS with the method for v.Kind.
func verifyVector(ver *Verifier, v vector) (decoded, error) {
	switch v.Kind {
	case "transaction":
		t, err := ver.VerifyTransaction(v.JWS)
		if err != nil {
			return decoded{}, err
		}
		return decoded{t.SignedDate, t.Type, t.ProductID, t.TransactionID, t.BundleID, t.Environment, ""}, nil
	case "renewal":
		r, err := ver.VerifyRenewalInfo(v.JWS)
		if err != nil {
			return decoded{}, err
		}
		return decoded{r.SignedDate, "renewalInfo", r.ProductID, r.OriginalTransactionID, "", r.Environment, ""}, nil
	}
	n, err := ver.VerifyNotification(v.JWS)
	if err != nil {
		return decoded{}, err
	}
	d := decoded{signed: n.SignedDate, typ: n.NotificationType, bundle: n.BundleID(), env: n.Environment()}
	if id := n.AppAppleID(); id != 0 {
		d.appID = strconv.FormatInt(id, 10)
	}
	if n.Subtype != "" {
		d.typ += "/" + n.Subtype
	}
	if n.Transaction != nil {
		d.productID, d.txID = n.Transaction.ProductID, n.Transaction.TransactionID
	}
	return d, nil
}

func TestRealVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.File, func(t *testing.T) {
			d, err := verifyVector(vectorVerifier(t, v), v)
			require.NoError(t, err)
			require.Equal(t, v.Type, d.typ)
			require.Equal(t, v.ProductID, d.productID)
			require.Equal(t, v.TransactionID, d.txID)
			require.Equal(t, v.BundleID, d.bundle)
			require.Equal(t, v.Environment, d.env)
			if v.Kind == "notification" {
				require.Equal(t, v.AppAppleID, d.appID)
			}
			require.Equal(t, v.SignedDate, d.signed.Truncate(time.Second).Format(time.RFC3339))
		})
	}
}

// TestRealVectorsTampered changes one bit of each vector's signature and one
// digit of its payload; neither may verify.
func TestRealVectorsTampered(t *testing.T) {
	for i, v := range loadVectors(t) {
		t.Run(v.File, func(t *testing.T) {
			ver := vectorVerifier(t, v)
			_, err := verifyVector(ver, vector{Kind: v.Kind, JWS: flipSignatureBit(t, v.JWS, i*37%512)})
			requireCode(t, err, CodeSignature)
			_, err = verifyVector(ver, vector{Kind: v.Kind, JWS: changePayloadDigit(t, v.JWS)})
			requireCode(t, err, CodeSignature)
		})
	}
}

// TestRealVectorEverySignatureBit flips each of the 512 signature bits of
// one real transaction in turn.
func TestRealVectorEverySignatureBit(t *testing.T) {
	vs := loadVectors(t)
	v := vs[1]
	require.Equal(t, "transaction", v.Kind)
	ver := vectorVerifier(t, v)
	for bit := range 512 {
		_, err := ver.VerifyTransaction(flipSignatureBit(t, v.JWS, bit))
		requireCode(t, err, CodeSignature)
	}
}

func TestRealVectorsWrongConfig(t *testing.T) {
	other := newCA(t, devca.Options{})
	for _, v := range loadVectors(t) {
		t.Run(v.File, func(t *testing.T) {
			ver := vectorVerifier(t, v)
			ver.Roots = []*x509.Certificate{other.Root}
			_, err := verifyVector(ver, v)
			requireCode(t, err, CodeChain)

			ver = vectorVerifier(t, v)
			ver.Environments, ver.AppAppleID = []string{Production}, 1
			_, err = verifyVector(ver, v)
			requireCode(t, err, CodeEnvironment)

			if v.Kind == "renewal" {
				return // renewal infos carry no bundle id
			}
			ver = vectorVerifier(t, v)
			ver.BundleID = "com.example.other"
			_, err = verifyVector(ver, v)
			requireCode(t, err, CodeAppIdentifier)
		})
	}
}

func flipSignatureBit(t testing.TB, s string, bit int) string {
	t.Helper()
	parts := strings.Split(s, ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	require.NoError(t, err)
	sig[bit/8] ^= 1 << (bit % 8)
	parts[2] = base64.RawURLEncoding.EncodeToString(sig)
	return strings.Join(parts, ".")
}

// changePayloadDigit changes the payload's last digit (inside a value, so
// the JSON stays valid) and re-encodes it under the old signature.
func changePayloadDigit(t testing.TB, s string) string {
	t.Helper()
	parts := strings.Split(s, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	i := bytes.LastIndexFunc(payload, func(r rune) bool { return r >= '0' && r <= '9' })
	require.GreaterOrEqual(t, i, 0)
	payload[i] = '0' + (payload[i]-'0'+1)%10
	require.True(t, json.Valid(payload))
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}
