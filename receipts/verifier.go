package receipts

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The environments Apple writes into payloads.
const (
	Production   = "Production"
	Sandbox      = "Sandbox"
	Xcode        = "Xcode"
	LocalTesting = "LocalTesting"
)

// Verifier verifies Apple-signed JWS for one app. Set the fields before
// first use and do not change them after; a Verifier is then safe for
// concurrent use. Do not copy a Verifier that has been used.
type Verifier struct {
	// Roots are the trusted roots; empty means the embedded Apple Root
	// CA - G3. Use devca's root for development chains.
	Roots []*x509.Certificate
	// BundleID is the app's bundle id; required.
	BundleID string
	// AppAppleID is the app's App Store id; required when Production is
	// accepted. Production notifications must carry it, as Apple checks;
	// others may carry none, but not another app's. 0 outside Production
	// checks nothing there.
	AppAppleID int64
	// Environments lists the accepted environments; empty accepts none.
	// Unlike Apple's libraries, Xcode and LocalTesting are not exempt from
	// signature checks: their payloads must chain to a configured root.
	Environments []string

	cache   chainCache  // chains whose certificate signatures verified
	headers headerCache // headers (and their certificates) that parsed
	expiry  certExpiry  // NotAfter of the signing certificates seen
}

// VerifyTransaction verifies a signedTransaction (JWSTransaction): chain,
// signature, bundle id and environment.
func (v *Verifier) VerifyTransaction(signedTransaction string) (*Transaction, error) {
	if err := v.checkConfig(); err != nil {
		return nil, err
	}
	t, err := v.decodeTransaction(signedTransaction)
	if err != nil {
		return nil, err
	}
	if err := v.checkBundleID(t.BundleID); err != nil {
		return nil, err
	}
	if err := v.checkEnvironment(t.Environment); err != nil {
		return nil, err
	}
	return t, nil
}

// VerifyRenewalInfo verifies a signedRenewalInfo (JWSRenewalInfo). It
// carries no bundle id, so only chain, signature and environment are checked;
// tie it to the app through its originalTransactionId.
func (v *Verifier) VerifyRenewalInfo(signedRenewalInfo string) (*RenewalInfo, error) {
	if err := v.checkConfig(); err != nil {
		return nil, err
	}
	r, err := v.decodeRenewal(signedRenewalInfo)
	if err != nil {
		return nil, err
	}
	if err := v.checkEnvironment(r.Environment); err != nil {
		return nil, err
	}
	return r, nil
}

// decodeTransaction verifies the JWS and decodes it, without app checks.
func (v *Verifier) decodeTransaction(s string) (*Transaction, error) {
	t := &Transaction{JWS: s}
	raw, err := v.verifyJWS(s, t)
	if err != nil {
		return nil, err
	}
	t.Raw = raw
	if t.TransactionID == "" {
		// Callers key idempotency on it; a transaction without one
		// could be credited twice.
		return nil, newError(CodeMalformed, nil, "transaction has no transactionId")
	}
	if t.PurchaseDate.IsZero() {
		// A pack's lot is granted at it and expires from it: without one
		// it was planned from the year 1, recorded expired and answered
		// 2xx with nothing added, or granted_at 0001-01-01 for a product
		// that never expires. Apple always sends it.
		return nil, newError(CodeMalformed, nil, "transaction has no purchaseDate")
	}
	return t, nil
}

func (v *Verifier) decodeRenewal(s string) (*RenewalInfo, error) {
	r := &RenewalInfo{JWS: s}
	raw, err := v.verifyJWS(s, r)
	if err != nil {
		return nil, err
	}
	r.Raw = raw
	if r.OriginalTransactionID == "" {
		return nil, newError(CodeMalformed, nil, "renewal info has no originalTransactionId")
	}
	return r, nil
}

// signedPayload is a payload type that decodes itself from Apple's JSON
// and knows its signedDate.
type signedPayload interface {
	json.Unmarshaler
	signedAt() time.Time
}

// verifyJWS runs every check that does not depend on the payload type and
// decodes the payload into dst. Cheap checks run before the costly ones, so
// junk is refused before any signature is computed. It returns the payload.
func (v *Verifier) verifyJWS(s string, dst signedPayload) (json.RawMessage, error) {
	j, parsed, fresh, err := v.headers.parse(s)
	if err != nil {
		return nil, err
	}
	c, err := v.verifyChainAndSignature(j, parsed)
	if err != nil {
		return nil, err
	}
	v.headers.keep(s, fresh) // signed by a leaf that chains to a root: Apple's header
	// The payload type's own UnmarshalJSON, called directly: through
	// json.Unmarshal the payload was scanned twice more before it ran
	// (validated whole, then skipped to find its end), and a notification's
	// ~10 KiB is mostly its nested JWS. The UnmarshalJSON validates it.
	if err := dst.UnmarshalJSON(j.payload); err != nil {
		return nil, newError(CodeMalformed, err, "payload is not the expected JSON")
	}
	if dst.signedAt().IsZero() {
		return nil, newError(CodeMalformed, nil, "payload has no signedDate")
	}
	if err := c.checkValidity(dst.signedAt()); err != nil {
		return nil, err
	}
	v.expiry.remember(c.leaf, c.intermediate)
	return j.payload, nil
}

// verifyChainAndSignature checks the chain and the signature; parsed, if
// not nil, is the chain already parsed from j.x5c.
func (v *Verifier) verifyChainAndSignature(j *jws, parsed *chain) (*chain, error) {
	// Exact match: "es256", "none", "HS256" or anything else is refused,
	// which also closes the classic alg-confusion attacks.
	if j.alg != jwt.SigningMethodES256.Alg() {
		return nil, newError(CodeAlgorithm, nil, "alg must be ES256")
	}
	if len(j.x5c) != 3 {
		return nil, newError(CodeChainLength, nil, "x5c must hold 3 certificates, holds %d", len(j.x5c))
	}
	c := parsed
	if c == nil {
		var err error
		if c, err = parseChain(j.x5c); err != nil {
			return nil, err
		}
	}
	if err := c.checkProfile(); err != nil {
		return nil, err
	}
	if err := c.findRoot(v.roots(), &v.cache); err != nil {
		return nil, err
	}
	// checkProfile has made sure the leaf key is ECDSA P-256.
	key := c.leaf.PublicKey.(*ecdsa.PublicKey)
	if err := jwt.SigningMethodES256.Verify(j.signingStr, j.signature, key); err != nil {
		return nil, newError(CodeSignature, err, "signature does not verify")
	}
	return c, nil
}

func (v *Verifier) roots() []*x509.Certificate {
	if len(v.Roots) == 0 {
		return defaultRoots()
	}
	return v.Roots
}
