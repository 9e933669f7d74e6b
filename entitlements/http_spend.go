package entitlements

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"
)

// spendBody is POST /v1/users/{user_id}/spends: credits, or a generation
// to price.
type spendBody struct {
	IdempotencyKey string      `json:"idempotency_key"`
	Product        string      `json:"product"`
	Credits        *int64      `json:"credits"`
	Generation     *Generation `json:"generation"`
}

// spendAnswer is the contract's answer to a spend.
type spendAnswer struct {
	SpendID       string      `json:"spend_id"`
	Product       string      `json:"product"`
	Credits       int64       `json:"credits"`
	FromAllowance int64       `json:"from_allowance"`
	FromLots      []LotPart   `json:"from_lots"`
	CreatedAt     time.Time   `json:"created_at"`
	ReversalID    string      `json:"reversal_id,omitempty"` // a replay's, once the spend is reversed
	Entitlement   Entitlement `json:"entitlement"`
}

// PostSpend charges a user for a generation: 201 with the spend, and the
// same answer for a replay of the key.
func (h *Handler) PostSpend(w http.ResponseWriter, r *http.Request) {
	req, err := h.spendRequest(r)
	if err != nil {
		h.Metrics.refusedSpend(err)
		WriteError(w, r, h.Log, err)
		return
	}
	sp, st, replayed, err := h.Store.Spend(r.Context(), req)
	if err != nil {
		h.Metrics.refusedSpend(err)
		WriteError(w, r, h.Log, err)
		return
	}
	if !replayed {
		h.Metrics.spent(sp)
	}
	WriteJSON(w, r, h.Log, http.StatusCreated, spendAnswer{SpendID: sp.SpendID, Product: sp.Product, Credits: sp.Credits,
		FromAllowance: sp.FromAllowance, FromLots: nonNil(sp.FromLots), CreatedAt: sp.CreatedAt,
		ReversalID: sp.ReversalID, Entitlement: Compute(st, h.Allowance)})
}

func (h *Handler) spendRequest(r *http.Request) (SpendRequest, error) {
	userID, actor, err := serviceCall(r, ScopeSpend)
	if err != nil {
		return SpendRequest{}, err
	}
	var b spendBody
	if err := DecodeJSON(r, &b); err != nil {
		return SpendRequest{}, err
	}
	if err := checkKey(b.IdempotencyKey); err != nil {
		return SpendRequest{}, err
	}
	req := SpendRequest{UserID: userID, Token: h.Tokens.Token(userID), Key: b.IdempotencyKey,
		Hash: bodyHash(b.Product, b.Credits, b.Generation), Product: b.Product, Actor: actor}
	if req.Credits, err = h.price(b); err != nil {
		if !h.keptUnder(r, req) {
			return SpendRequest{}, err
		}
		req.Refused = err
	}
	return req, nil
}

// keptUnder says whether a spend of this very body is kept under the
// request's key: its replay answers that spend even when the pricing, or
// the products, have changed since and would refuse the body now (the
// store replays a kept key before it charges anything). A key kept for
// another body, or a lookup that fails, leaves the refusal as it is.
func (h *Handler) keptUnder(r *http.Request, req SpendRequest) bool {
	hash, found, err := h.Store.SpendKept(r.Context(), req.UserID, req.Key)
	return err == nil && found && hash == req.Hash
}

// price is the spend's cost: the credits asked for, or the generation
// priced by the product's rate. The product must be one the pricing knows.
func (h *Handler) price(b spendBody) (int64, error) {
	if _, ok := h.Pricing[b.Product]; !ok {
		return 0, Errorf(KindInvalid, "unknown_product", "product %q: want one of %v", b.Product, h.Pricing.Products())
	}
	switch {
	case (b.Credits == nil) == (b.Generation == nil):
		return 0, Errorf(KindInvalid, "invalid_body", "send either credits or generation")
	case b.Credits != nil:
		return *b.Credits, checkCredits(*b.Credits)
	}
	cost, err := h.Pricing.Price(b.Product, *b.Generation)
	if err == nil {
		err = checkCredits(cost)
	}
	return cost, err
}

// checkCredits bounds a spend or grant to 1..MaxCredits.
func checkCredits(c int64) error {
	if c <= 0 || c > MaxCredits {
		return Errorf(KindInvalid, "invalid_credits", "credits must be a whole number from 1 to %d", MaxCredits)
	}
	return nil
}

// checkKey accepts 1–255 visible ASCII characters (! to ~): no space, which
// logs and headers would make ambiguous.
func checkKey(key string) error {
	ok := len(key) >= 1 && len(key) <= 255
	for i := 0; ok && i < len(key); i++ {
		ok = '!' <= key[i] && key[i] <= '~'
	}
	if !ok {
		return Errorf(KindInvalid, "invalid_idempotency_key", "idempotency_key must be 1–255 visible ASCII characters (! to ~, no space)")
	}
	return nil
}

// bodyHash fingerprints what a request asks for, so a replay of its key
// with another body is told apart from a true replay.
func bodyHash(parts ...any) string {
	b, _ := json.Marshal(parts) // plain values: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// reversalAnswer is the answer to a reversal.
type reversalAnswer struct {
	ReversalID         string      `json:"reversal_id"`
	SpendID            string      `json:"spend_id"`
	AllowanceReturned  int64       `json:"allowance_returned"`
	AllowanceForfeited int64       `json:"allowance_forfeited"`
	LotsReturned       []LotPart   `json:"lots_returned"`
	LotsForfeited      []LotPart   `json:"lots_forfeited"`
	CreatedAt          time.Time   `json:"created_at"`
	Entitlement        Entitlement `json:"entitlement"`
}

// PostReverse gives a failed generation's credits back: 201 the first
// time, 200 with the same reversal after.
func (h *Handler) PostReverse(w http.ResponseWriter, r *http.Request) {
	userID, actor, err := serviceCall(r, ScopeSpend)
	if err != nil {
		WriteError(w, r, h.Log, err)
		return
	}
	rv, st, created, err := h.Store.Reverse(r.Context(), userID, h.Tokens.Token(userID), r.PathValue("spend_id"), actor)
	if err != nil {
		WriteError(w, r, h.Log, err)
		return
	}
	WriteJSON(w, r, h.Log, createdIf(created), reversalAnswer{ReversalID: rv.ReversalID, SpendID: rv.SpendID,
		AllowanceReturned: rv.AllowanceReturned, AllowanceForfeited: rv.AllowanceForfeited,
		LotsReturned: nonNil(rv.LotsReturned), LotsForfeited: nonNil(rv.LotsForfeited), CreatedAt: rv.CreatedAt,
		Entitlement: Compute(st, h.Allowance)})
}

func nonNil(parts []LotPart) []LotPart {
	if parts == nil {
		return []LotPart{}
	}
	return parts
}
