package entitlements

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/creditsd/creditsd/receipts"
)

// Problem is an RFC 9457 problem+json body with a stable code.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`

	RetryAfter time.Duration `json:"-"` // sent as the Retry-After header, in whole seconds
}

var kindStatus = map[Kind]int{
	KindInternal:         http.StatusInternalServerError,
	KindInvalid:          http.StatusBadRequest,
	KindUnauthenticated:  http.StatusUnauthorized,
	KindForbidden:        http.StatusForbidden,
	KindNotFound:         http.StatusNotFound,
	KindMethodNotAllowed: http.StatusMethodNotAllowed,
	KindConflict:         http.StatusConflict,
	KindTooLarge:         http.StatusRequestEntityTooLarge,
	KindUnprocessable:    http.StatusUnprocessableEntity,
	KindPaymentRequired:  http.StatusPaymentRequired,
	KindUnavailable:      http.StatusServiceUnavailable,
	KindTooManyRequests:  http.StatusTooManyRequests,
}

// WriteError answers err as problem+json. This is the one place errors meet
// HTTP: domain errors keep their kind and code, verification errors are 400
// with the verifier's code (503 for a misconfigured Verifier), and anything
// else is a logged 500 whose detail is not sent.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	WriteProblem(w, ProblemFor(r, log, err))
}

// ProblemFor maps err to its problem.
func ProblemFor(r *http.Request, log *slog.Logger, err error) Problem {
	p, internal := problemOf(err)
	gone := r.Context().Err() != nil
	// A failure of ours that is not the request's end (a locked or full
	// database) stays a 5xx even when the client has gone by then: a
	// caller whose timeout is shorter than the store's would otherwise
	// turn every such failure into a 499 that no 5xx alert sees.
	ours := internal && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	if p.Status >= 500 && gone && !ours {
		return abandoned(r, log, err)
	}
	if internal && log != nil {
		log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "status", p.Status,
			"err", err, "client_gone", gone)
	}
	return p
}

// problemOf is err's problem, and whether err is one of ours to log.
func problemOf(err error) (p Problem, internal bool) {
	var de *Error
	var ve *receipts.Error
	switch {
	case errors.As(err, &de) && de.Kind != KindInternal:
		p := newProblem(kindStatus[de.Kind], de.Code, de.Detail)
		p.RetryAfter = de.RetryAfter
		return p, false
	case errors.As(err, &ve) && ve.Retryable():
		// A Verifier that cannot verify anything is the service's fault,
		// not the data's: 503, so that Apple or the app tries again once
		// it is mended.
		return newProblem(http.StatusServiceUnavailable, string(ve.Code), ve.Detail), false
	case errors.As(err, &ve):
		return newProblem(http.StatusBadRequest, string(ve.Code), ve.Detail), false
	}
	return newProblem(http.StatusInternalServerError, "internal", "the service could not complete the request; it was logged"), true
}

// StatusClientClosedRequest is the status recorded, as nginx's 499, for a
// request whose client went away before its answer.
const StatusClientClosedRequest = 499

// abandoned is the problem of a request that ended because its client went
// away (or the server's shutdown ran out of grace): nobody reads the answer,
// and the failure is the request's end, not the service's. Counted as 5xx
// and logged as errors, these let any client raise alarms by hanging up.
// What the request wrote stands; the client's retry with its idempotency
// key finds it.
func abandoned(r *http.Request, log *slog.Logger, err error) Problem {
	if log != nil {
		log.DebugContext(r.Context(), "request abandoned by its client", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	p := newProblem(StatusClientClosedRequest, "client_closed_request", "the client closed the request before it was answered")
	p.Title = "Client Closed Request"
	return p
}

func newProblem(status int, code, detail string) Problem {
	return Problem{Type: "urn:creditsd:problem:" + code, Title: http.StatusText(status), Status: status, Detail: detail, Code: code}
}

// WriteProblem writes p.
func WriteProblem(w http.ResponseWriter, p Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	if p.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(ceilSeconds(p.RetryAfter)/time.Second), 10))
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// WriteJSON answers v with status. v is marshaled before anything is sent:
// once the status is out, a value that fails to marshal could only leave a
// 2xx with an empty or broken body, so the failure is logged and answered
// as a 500 instead.
func WriteJSON(w http.ResponseWriter, r *http.Request, log *slog.Logger, status int, v any) {
	body, err := marshalAnswer(v)
	if err != nil {
		WriteError(w, r, log, fmt.Errorf("marshal the %T answer: %w", v, err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// marshalAnswer is v as json.Encoder writes it, newline and all.
func marshalAnswer(v any) ([]byte, error) {
	var b []byte
	var err error
	if a, ok := v.(jsonAppender); ok { // skips the check encoding/json makes of a Marshaler's output
		b, err = a.AppendJSON(make([]byte, 0, 4096))
	} else {
		b, err = json.Marshal(v)
	}
	return append(b, '\n'), err
}

// jsonAppender is a type that writes its own JSON, as encoding/json would,
// or fails where encoding/json would.
type jsonAppender interface {
	AppendJSON([]byte) ([]byte, error)
}

// ceilSeconds is d rounded up to the second: a wait told in whole seconds
// must not end before d does, or the client comes back too soon.
func ceilSeconds(d time.Duration) time.Duration {
	return (d + time.Second - 1).Truncate(time.Second)
}
