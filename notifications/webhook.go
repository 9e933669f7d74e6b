package notifications

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/receipts"
)

// MaxBodyBytes caps the webhook body. Real notifications are under 20 KB.
const MaxBodyBytes = 64 << 10

// ServeHTTP is Apple's webhook, POST /v1/appstore/notifications. It answers
// 2xx only once the notification is durable, 4xx for anything that does not
// verify, and 5xx only when recording failed, so that Apple retries.
func (p *Processor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > MaxBodyBytes {
		p.problem(w, r, entitlements.Errorf(entitlements.KindTooLarge, "body_too_large", "the body exceeds %d bytes", MaxBodyBytes))
		return
	}
	var body struct {
		SignedPayload string `json:"signedPayload"`
	}
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes)).Decode(&body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		err = entitlements.Errorf(entitlements.KindTooLarge, "body_too_large", "the body exceeds %d bytes", MaxBodyBytes)
	case err != nil:
		err = entitlements.Errorf(entitlements.KindInvalid, "invalid_body", "the body must be {\"signedPayload\": \"<JWS>\"}")
	case body.SignedPayload == "":
		err = entitlements.Errorf(entitlements.KindInvalid, "invalid_body", "signedPayload is required")
	}
	if err != nil {
		p.problem(w, r, err)
		return
	}
	res, err := p.Process(r.Context(), body.SignedPayload, SourceWebhook)
	if err != nil {
		p.problem(w, r, err)
		return
	}
	entitlements.WriteJSON(w, http.StatusOK, res)
}

// problem answers err. A verification failure that is retryable (none is
// today: there are no online checks) is 503, so Apple tries again.
func (p *Processor) problem(w http.ResponseWriter, r *http.Request, err error) {
	var ve *receipts.Error
	if errors.As(err, &ve) && ve.Retryable() {
		pr := entitlements.ProblemFor(r, p.Log, err)
		pr.Status = http.StatusServiceUnavailable
		entitlements.WriteProblem(w, pr)
		return
	}
	entitlements.WriteError(w, r, p.Log, err)
}
