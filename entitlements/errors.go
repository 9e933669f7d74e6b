package entitlements

import (
	"errors"
	"fmt"
	"time"
)

// Kind is the class of a domain error; the HTTP layer maps each kind to one
// status in one place (see writeError).
type Kind int

// Error kinds.
const (
	KindInternal         Kind = iota // our fault: logged, never detailed to the client
	KindInvalid                      // 400: the request is malformed
	KindUnauthenticated              // 401
	KindForbidden                    // 403
	KindNotFound                     // 404
	KindMethodNotAllowed             // 405
	KindConflict                     // 409
	KindTooLarge                     // 413
	KindUnprocessable                // 422: well-formed and verified, but unusable here
	KindPaymentRequired              // 402: the spend cannot be paid
	KindUnavailable                  // 503: a dependency (Apple) failed; try again
	KindTooManyRequests              // 429: the caller must wait (Error.RetryAfter)
)

// Error is a domain error with a stable snake_case code for clients.
type Error struct {
	Kind   Kind
	Code   string
	Detail string

	// RetryAfter, when set, is how long the client should wait before it
	// tries again; it is sent as Retry-After.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Code + ": " + e.Detail }

// Errorf builds an *Error.
func Errorf(kind Kind, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// ErrorCode is err's code, or "internal" for anything that is not an *Error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return "internal"
}
