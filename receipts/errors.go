package receipts

import "fmt"

// Code is a stable, machine-readable reason a verification failed. Callers
// switch on it (never on message text) and may show it to clients.
type Code string

// The failure codes. Every one except CodeConfig means the input itself is
// bad: retrying the same input can never succeed.
const (
	CodeMalformed     Code = "malformed_jws"          // not 3 base64url parts, bad JSON, missing required fields
	CodeAlgorithm     Code = "unsupported_algorithm"  // alg != ES256
	CodeChainLength   Code = "invalid_chain_length"   // x5c must hold exactly 3
	CodeChain         Code = "invalid_chain"          // does not chain to a configured root / bad cert signature
	CodeCertificate   Code = "invalid_certificate"    // unparsable cert, outside validity at signedDate, missing Apple OID, wrong key type
	CodeSignature     Code = "invalid_signature"      // JWS signature does not verify
	CodeAppIdentifier Code = "invalid_app_identifier" // bundleId / appAppleId not ours
	CodeEnvironment   Code = "invalid_environment"    // environment not accepted
	CodeInnerMismatch Code = "inner_payload_mismatch" // inner transaction/renewal disagrees with the notification's bundle id / environment

	// CodeConfig means the Verifier itself is unusable (no bundle id, no or
	// unknown environments, Production without AppAppleID). It is the one
	// code not caused by the input, so it is the one that is retryable: the
	// same payload verifies once the configuration is fixed.
	CodeConfig Code = "verifier_misconfigured"
)

// Error is the only error type returned by this package. Detail is safe to
// show a client: it names fields and checks, never keys or secrets. Err, when
// set, is the underlying library error, for logs.
type Error struct {
	Code   Code
	Detail string
	Err    error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("receipts: %s: %s: %v", e.Code, e.Detail, e.Err)
	}
	return fmt.Sprintf("receipts: %s: %s", e.Code, e.Detail)
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the same input might verify later. Only a
// failure not caused by the input can be retryable. We do no online checks
// (no OCSP, no network), so today that is only a misconfigured Verifier;
// every other code is permanent: the data is bad, and a caller should
// answer it as such instead of asking the sender to try again.
func (e *Error) Retryable() bool {
	return e.Code == CodeConfig
}

func newError(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...), Err: err}
}

// withContext prefixes the detail of an inner payload's error so a client
// can tell which nested JWS failed, keeping its code.
func withContext(err error, where string) error {
	e, ok := err.(*Error)
	if !ok {
		return err
	}
	return &Error{Code: e.Code, Detail: where + ": " + e.Detail, Err: e.Err}
}
