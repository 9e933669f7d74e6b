package entitlements

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/creditsd/creditsd/receipts"
)

// MaxBodyBytes caps every request body; a StoreKit JWS is a few KB.
const MaxBodyBytes = 64 << 10

// MaxTransactionBodyBytes caps POST /v1/me/transactions' body, which may
// carry a StoreKit 1 app receipt: every period of a subscription stays in
// it, and a long-time subscriber's receipt outgrows 64 KiB. Its purchases
// are read, the newest first, up to receipts.MaxReceiptClaims. A
// signed_transaction is still held to MaxBodyBytes.
const MaxTransactionBodyBytes = 1 << 20

// Store is what the handlers need of the ledger; entitlements/sqlite has it.
type Store interface {
	UserState(ctx context.Context, userID, token, actor string) (UserState, error)
	ClaimPurchase(ctx context.Context, userID, token string, p Purchase, g Grant) (granted bool, err error)
	SettledPurchases(ctx context.Context, userID string, transactionIDs []string) (map[string]bool, error)
	Spend(ctx context.Context, req SpendRequest) (Spend, UserState, bool, error)
	SpendKept(ctx context.Context, userID, key string) (hash string, found bool, err error)
	Reverse(ctx context.Context, userID, token, spendID, actor string) (Reversal, UserState, bool, error)
	AdminGrant(ctx context.Context, req GrantRequest) (Lot, UserState, bool, error)
	Ledger(ctx context.Context, userID, token, actor string, before int64, limit int) ([]Entry, int64, error)
	SetTier(ctx context.Context, userID, token, tier string, expiresAt *time.Time, reason, actor string) (UserState, error)
}

// TransactionVerifier verifies a StoreKit 2 signed transaction.
type TransactionVerifier interface {
	VerifyTransaction(signedTransaction string) (*receipts.Transaction, error)
}

// Handler serves the app- and backend-facing endpoints for entitlements.
// Routes are registered in one place, by the program's mux.
type Handler struct {
	Store     Store
	Verifier  TransactionVerifier
	Receipts  ReceiptLookup // nil until the App Store Server API is configured
	Catalog   Catalog
	Allowance AllowancePolicy
	Pricing   Pricing
	Tokens    TokenDeriver
	Metrics   *Metrics
	Now       func() time.Time
	Log       *slog.Logger

	// ReceiptTimeout bounds a receipt's whole lookup at Apple, retries and
	// their waits included, so that a slow or rate-limiting App Store is
	// answered 503 while the server can still write an answer; zero leaves
	// it to the request's context.
	ReceiptTimeout time.Duration

	// ReceiptBudget bounds, per user, the purchases that app receipts may
	// have looked up at the App Store; nil sets no bound.
	ReceiptBudget *Budget
}

// GetMyEntitlement answers GET /v1/me/entitlement for a user token.
func (h *Handler) GetMyEntitlement(w http.ResponseWriter, r *http.Request) {
	userID, err := userCaller(r)
	if err != nil {
		WriteError(w, r, h.Log, err)
		return
	}
	h.answerEntitlement(w, r, userID, UserActor(userID), http.StatusOK)
}

// GetUserEntitlement answers GET /v1/users/{user_id}/entitlement for a
// service token with credits:spend or credits:admin.
func (h *Handler) GetUserEntitlement(w http.ResponseWriter, r *http.Request) {
	userID, actor, err := serviceCall(r, ScopeSpend, ScopeAdmin)
	if err != nil {
		WriteError(w, r, h.Log, err)
		return
	}
	h.answerEntitlement(w, r, userID, actor, http.StatusOK)
}

// answerEntitlement answers userID's entitlement. The read is the user's
// first call if she is new, and actor, its caller, is then named in the
// entries of the purchases that waited for her.
func (h *Handler) answerEntitlement(w http.ResponseWriter, r *http.Request, userID, actor string, status int) {
	st, err := h.Store.UserState(r.Context(), userID, h.Tokens.Token(userID), actor)
	if err != nil {
		WriteError(w, r, h.Log, err)
		return
	}
	WriteJSON(w, r, h.Log, status, Compute(st, h.Allowance))
}

// transactionRequest is the body of POST /v1/me/transactions.
type transactionRequest struct {
	SignedTransaction string `json:"signed_transaction"`
	AppReceipt        string `json:"app_receipt"`
}

// PostTransaction answers POST /v1/me/transactions: the app submits a
// StoreKit transaction, or an app receipt of the purchases to claim, and
// the caller claims it. 201 if this call gave something new (a lot, an
// active subscription it claimed, or credits a refund had taken), else
// 200; either way the answer is the caller's entitlement.
func (h *Handler) PostTransaction(w http.ResponseWriter, r *http.Request) {
	start := time.Now() // net/http's write timeout runs from about now, before the body is read
	userID, err := userCaller(r)
	if err == nil {
		var granted bool
		granted, err = h.submitTransaction(r, userID, start)
		if err == nil {
			h.answerEntitlement(w, r, userID, UserActor(userID), createdIf(granted))
			return
		}
	}
	WriteError(w, r, h.Log, err)
}

func (h *Handler) submitTransaction(r *http.Request, userID string, start time.Time) (bool, error) {
	var req transactionRequest
	if err := decodeJSON(r, &req, MaxTransactionBodyBytes); err != nil {
		return false, err
	}
	switch {
	case len(req.SignedTransaction) > MaxBodyBytes:
		// Only an app receipt needs the larger body.
		return false, Errorf(KindTooLarge, "body_too_large", "signed_transaction exceeds %d bytes", MaxBodyBytes)
	case req.SignedTransaction != "" && req.AppReceipt != "":
		return false, Errorf(KindInvalid, "invalid_body", "send either signed_transaction or app_receipt, not both")
	case req.SignedTransaction != "":
		return h.claimSigned(r.Context(), userID, req.SignedTransaction, false)
	case req.AppReceipt == "":
		return false, Errorf(KindInvalid, "invalid_body", "signed_transaction (or app_receipt) is required")
	}
	return h.claimReceipt(r.Context(), userID, req.AppReceipt, start)
}

// claimSigned verifies an Apple-signed transaction and claims it for userID.
// unproven says that the caller holds only its id (an app receipt), so it
// may take only what is already theirs (Purchase.Unproven).
func (h *Handler) claimSigned(ctx context.Context, userID, signed string, unproven bool) (bool, error) {
	p, err := h.verify(signed)
	if err != nil {
		return false, err
	}
	token := h.Tokens.Token(userID)
	if p.AppAccountToken != "" && p.AppAccountToken != token {
		return false, Errorf(KindForbidden, "transaction_not_yours",
			"transaction %s was bought with another user's app_account_token", p.TransactionID)
	}
	p.Unproven = unproven
	g, err := PlanGrant(p, h.Catalog, h.Now())
	if err != nil {
		return false, err
	}
	if g.Outcome == OutcomeUnknown {
		return false, Errorf(KindUnprocessable, "product_not_sold", "App Store product %q is not sold by this service", p.ProductID)
	}
	return h.Store.ClaimPurchase(ctx, userID, token, p, g)
}

// verify checks a signed transaction. Data that verifies but is not for this
// app or environment is 422, not 400: it is genuine, just not usable here.
func (h *Handler) verify(jws string) (Purchase, error) {
	t, err := h.Verifier.VerifyTransaction(jws)
	var ve *receipts.Error
	if errors.As(err, &ve) && (ve.Code == receipts.CodeAppIdentifier || ve.Code == receipts.CodeEnvironment) {
		return Purchase{}, Errorf(KindUnprocessable, string(ve.Code), "%s", ve.Detail)
	}
	if err != nil {
		return Purchase{}, err
	}
	return PurchaseFrom(t), nil
}

// DecodeJSON reads one JSON object of at most MaxBodyBytes into v, refusing
// unknown fields and trailing data, with errors a client can act on.
func DecodeJSON(r *http.Request, v any) error { return decodeJSON(r, v, MaxBodyBytes) }

// decodeJSON is DecodeJSON for a body of at most limit bytes.
func decodeJSON(r *http.Request, v any, limit int64) error {
	if r.ContentLength > limit {
		// Refused before a byte is read, as the webhook does: a client
		// that asked to continue (Expect: 100-continue) was told to send
		// all of it, to be refused past the limit.
		return Errorf(KindTooLarge, "body_too_large", "the body exceeds %d bytes", limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err == nil {
		err = decodeObject(body, v)
	}
	var tooBig *http.MaxBytesError
	var wrongType *json.UnmarshalTypeError
	var badTime *requestTimeError
	switch {
	case errors.As(err, &tooBig):
		return Errorf(KindTooLarge, "body_too_large", "the body exceeds %d bytes", limit)
	case errors.Is(err, io.EOF):
		return Errorf(KindInvalid, "invalid_body", "the body is empty; a JSON object is required")
	case errors.As(err, &wrongType):
		return fieldTypeError(wrongType)
	case errors.As(err, &badTime):
		// expires_at is the only time a request carries (grants, tiers).
		return Errorf(KindInvalid, "invalid_expires_at", "expires_at must be an RFC 3339 time, e.g. 2027-01-01T00:00:00Z")
	case err != nil:
		return Errorf(KindInvalid, "invalid_body", "the body is not the expected JSON object: %v", err)
	}
	return nil
}

// requestTime is a time a request body carries. It decodes as time.Time
// does, but fails with a *requestTimeError, so that DecodeJSON knows a bad
// time by its type: time.Time's own error for a value that is not a JSON
// string has none.
type requestTime struct{ time.Time }

// RFC 3339 (§5.6) allows a lower-case t and z, which time.Time refuses, and
// bounds an offset's hours to 23, which it does not: +24:00 was read as a
// day earlier. The only letters a date-time holds are its T and Z.
func (t *requestTime) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		b = bytes.ToUpper(b)
	}
	if err := t.Time.UnmarshalJSON(b); err != nil {
		return &requestTimeError{err}
	}
	if _, offset := t.Zone(); offset <= -24*60*60 || offset >= 24*60*60 {
		return &requestTimeError{errors.New("an offset of a day or more")}
	}
	return nil
}

// ptr is the time, or nil for a time the body left out.
func (t *requestTime) ptr() *time.Time {
	if t == nil {
		return nil
	}
	return &t.Time
}

// requestTimeError is a value that is not an RFC 3339 time in a JSON string.
type requestTimeError struct{ err error }

func (e *requestTimeError) Error() string { return e.err.Error() }
func (e *requestTimeError) Unwrap() error { return e.err }

// fieldTypeError names a field given a value of the wrong JSON type in the
// client's words, not Go's: credits of 1.5 (or 1.0, or 1e1, which Go will
// not read into an integer) is invalid_credits, as an out-of-range one is.
func fieldTypeError(e *json.UnmarshalTypeError) error {
	if e.Field == "credits" {
		return Errorf(KindInvalid, "invalid_credits",
			"credits must be a whole number from 1 to 1,000,000,000, written without a decimal point or exponent")
	}
	want := "a string"
	switch e.Type.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want = "a whole number"
	case reflect.Float32, reflect.Float64:
		want = "a number"
	case reflect.Bool:
		want = "true or false"
	case reflect.Struct, reflect.Map:
		want = "an object"
	case reflect.Slice, reflect.Array:
		want = "an array"
	}
	got, _, _ := strings.Cut(e.Value, " ") // "number 1.5": the kind, not the value
	return Errorf(KindInvalid, "invalid_body", "%s must be %s, not a JSON %s", e.Field, want, got)
}

// decodeObject decodes body, one JSON object, into v. It looks at the
// first byte because encoding/json takes a JSON null for a struct as "no
// fields": without the check, a body of null would be refused later for the
// first field it lacks, not as the wrong body.
func decodeObject(body []byte, v any) error {
	if start := bytes.TrimLeft(body, " \t\r\n"); len(start) > 0 && start[0] != '{' {
		return errors.New("it is not an object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	// Anything but white space after the object is refused: dec.More
	// would pass a stray ']' or '}', as it answers false before either.
	if err == nil && len(bytes.TrimLeft(body[dec.InputOffset():], " \t\r\n")) > 0 {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		err = checkNames(body, v)
	}
	return err
}

// userCaller is the user id of a user token; service tokens act on users
// through the /v1/users/{user_id} endpoints instead.
func userCaller(r *http.Request) (string, error) {
	c, ok := CallerFrom(r.Context())
	if !ok {
		return "", Errorf(KindUnauthenticated, "missing_token", "a bearer token is required")
	}
	if c.Service() || !ValidUserID(c.Subject) {
		return "", Errorf(KindForbidden, "user_token_required", "this endpoint takes a user's token")
	}
	return c.Subject, nil
}

// serviceCall checks that the caller is a service holding one of scopes,
// and returns the {user_id} the path names and the caller's actor name for
// the ledger's audit trail.
func serviceCall(r *http.Request, scopes ...string) (userID, actor string, err error) {
	c, ok := CallerFrom(r.Context())
	if !ok {
		return "", "", Errorf(KindUnauthenticated, "missing_token", "a bearer token is required")
	}
	if !slices.ContainsFunc(scopes, c.Has) {
		return "", "", Errorf(KindForbidden, "insufficient_scope", "this endpoint needs a service token with scope %v", scopes)
	}
	userID = r.PathValue("user_id")
	if !ValidUserID(userID) {
		return "", "", Errorf(KindInvalid, "invalid_user_id", "user ids are 1–128 letters, digits, '-', '_', '.', '@' or ':'")
	}
	return userID, ServiceActor(c.Subject), nil
}

// createdIf is 201 when a call created something, else 200.
func createdIf(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}
