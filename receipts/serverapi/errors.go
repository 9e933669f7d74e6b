package serverapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ErrNotFound is what an APIError of Apple's TransactionIdNotFoundError
// (404, errorCode 4040010) unwraps to: Apple knows no such transaction for
// this bundle id in that environment (try the other environment before
// giving up, as Apple advises). Other 404s do not: Apple's account and app
// errors name this service's setup or a passing fault, and a 404 with no
// errorCode is a base URL that is not Apple's API.
var ErrNotFound = errors.New("serverapi: not found")

// ErrEnvironment is returned, before any request, for an environment other
// than receipts.Production or receipts.Sandbox: Xcode and LocalTesting
// transactions exist only on the device.
var ErrEnvironment = errors.New("serverapi: the App Store Server API serves only Production and Sandbox")

// Apple's errorCode values that callers may want to switch on; fakeappstore
// answers with them too.
const (
	CodeGeneralBadRequest         int64 = 4000000
	CodeInvalidTransactionID      int64 = 4000006
	CodeStartDateTooFarInPast     int64 = 4000012 // older than the environment's HistoryRetention
	CodeStartDateAfterEndDate     int64 = 4000013
	CodeInvalidPaginationToken    int64 = 4000014
	CodeInvalidStartDate          int64 = 4000015
	CodeInvalidEndDate            int64 = 4000016
	CodeMultipleFiltersSupplied   int64 = 4000019
	CodeInvalidCustomerConsented  int64 = 4000035
	CodeInvalidDeliveryStatus     int64 = 4000036
	CodeInvalidSampleContent      int64 = 4000041
	CodeAccountNotFoundRetryable  int64 = 4040002
	CodeAppNotFoundRetryable      int64 = 4040004
	CodeOriginalNotFoundRetryable int64 = 4040006
	CodeTransactionIDNotFound     int64 = 4040010
	CodeRateLimitExceeded         int64 = 4290000
	CodeGeneralInternal           int64 = 5000000
	CodeGeneralInternalRetryable  int64 = 5000001

	// CodeConsumptionPercentageAutoRenewable (Apple's
	// ConsumptionPercentageAutoRenewableSubscriptionError) refuses a
	// consumptionPercentage sent for an auto-renewable subscription.
	CodeConsumptionPercentageAutoRenewable int64 = 4000209
)

// unauthorizedHint is the 401 message: Apple says nothing useful, and the
// cause is nearly always one of these settings.
const unauthorizedHint = "check app_store_api.key_id, issuer_id and the private key; " +
	"the key must be an App Store Connect In-App Purchase key for bundle %s"

// APIError is an answer other than 2xx. It never holds the token or key.
type APIError struct {
	Status  int    // HTTP status
	Code    int64  // Apple's errorCode, 0 when the body had none
	Message string // Apple's errorMessage; for 401, which settings to check
	// RetryAfter is the wait a 429's Retry-After asked for, when present.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "serverapi: App Store Server API answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Code != 0 {
		fmt.Fprintf(&b, " (errorCode %d)", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, "; retry after %s", e.RetryAfter)
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrNotFound) true for Apple's
// TransactionIdNotFoundError, and for no other 404.
func (e *APIError) Unwrap() error {
	if e.Status == http.StatusNotFound && e.Code == CodeTransactionIDNotFound {
		return ErrNotFound
	}
	return nil
}

// Retryable reports whether the same request may succeed later: Apple
// was rate limiting or failing, not refusing the request. Apple's own
// libraries name three 404s retryable: an account, an app or an original
// transaction not found "but you can try again".
func (e *APIError) Retryable() bool {
	switch {
	case e.Status == http.StatusTooManyRequests || e.Status >= 500:
		return true
	case e.Status != http.StatusNotFound:
		return false
	}
	switch e.Code {
	case CodeAccountNotFoundRetryable, CodeAppNotFoundRetryable, CodeOriginalNotFoundRetryable:
		return true
	}
	return false
}

// Setup reports whether the answer is about this service's setup rather
// than the request: a 401 (the key and its ids), or a 404 that is not
// Apple's TransactionIdNotFoundError (the app's bundle id, or a base URL
// that is not Apple's API). An operator may mend it, so a job keeps the
// request to send again.
func (e *APIError) Setup() bool {
	return e.Status == http.StatusUnauthorized ||
		e.Status == http.StatusNotFound && e.Code != CodeTransactionIDNotFound && !e.Retryable()
}
