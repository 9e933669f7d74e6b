package entitlements

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// grantBody is POST /v1/users/{user_id}/grants.
type grantBody struct {
	IdempotencyKey string       `json:"idempotency_key"`
	Credits        int64        `json:"credits"`
	ExpiresAt      *requestTime `json:"expires_at"`
	Reason         string       `json:"reason"`
}

// grantAnswer is the answer to a grant.
type grantAnswer struct {
	Lot         Lot         `json:"lot"`
	Entitlement Entitlement `json:"entitlement"`
}

// PostGrant gives a user goodwill credits: 201 with the lot, and 201 with
// the same lot (its remaining as it is now) for a replay of the key.
func (h *Handler) PostGrant(w http.ResponseWriter, r *http.Request) {
	req, err := h.grantRequest(r)
	if err == nil {
		var lot Lot
		var st UserState
		if lot, st, _, err = h.Store.AdminGrant(r.Context(), req); err == nil {
			WriteJSON(w, r, h.Log, http.StatusCreated, grantAnswer{Lot: lot, Entitlement: Compute(st, h.Allowance)})
			return
		}
	}
	WriteError(w, r, h.Log, err)
}

func (h *Handler) grantRequest(r *http.Request) (GrantRequest, error) {
	userID, actor, err := serviceCall(r, ScopeAdmin)
	if err != nil {
		return GrantRequest{}, err
	}
	var b grantBody
	if err := DecodeJSON(r, &b); err != nil {
		return GrantRequest{}, err
	}
	if err := checkKey(b.IdempotencyKey); err != nil {
		return GrantRequest{}, err
	}
	if err := checkCredits(b.Credits); err != nil {
		return GrantRequest{}, err
	}
	if err := checkReason(b.Reason); err != nil {
		return GrantRequest{}, err
	}
	var exp *time.Time
	if b.ExpiresAt != nil {
		t := b.ExpiresAt.UTC().Truncate(time.Millisecond)
		exp = &t
	}
	return GrantRequest{UserID: userID, Token: h.Tokens.Token(userID), Key: b.IdempotencyKey,
		Hash: bodyHash(b.Credits, exp, b.Reason), Credits: b.Credits, ExpiresAt: exp, Reason: b.Reason, Actor: actor}, nil
}

// checkReason refuses a reason no request may carry: empty, longer than
// 500 characters, or with a control character or invalid UTF-8. A new
// grant's or tier change's reason must be audit text as well
// (checkNewReason); a grant's replay is answered as before, whatever
// rule its reason met when it was first granted.
func checkReason(reason string) error {
	if reason == "" || utf8.RuneCountInString(reason) > 500 {
		return Errorf(KindInvalid, "invalid_reason", "reason is required, at most 500 characters")
	}
	if strings.ContainsFunc(reason, func(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }) {
		return Errorf(KindInvalid, "invalid_reason", "reason must be UTF-8 text, without control characters")
	}
	return nil
}

// ledgerAnswer is a page of the ledger.
type ledgerAnswer struct {
	Entries    []Entry `json:"entries"`
	NextCursor *string `json:"next_cursor"`
}

// GetLedger lists a user's ledger newest first; ?cursor= pages, ?limit=
// sets the page size (default 50, at most 500). The read creates a user
// it is the first call to name, as the entitlement reads do.
func (h *Handler) GetLedger(w http.ResponseWriter, r *http.Request) {
	userID, actor, err := serviceCall(r, ScopeAdmin)
	if err != nil {
		WriteError(w, r, h.Log, err)
		return
	}
	before, limit, err := pageParams(r)
	if err != nil {
		WriteError(w, r, h.Log, err)
		return
	}
	entries, next, err := h.Store.Ledger(r.Context(), userID, h.Tokens.Token(userID), actor, before, limit)
	if err != nil {
		WriteError(w, r, h.Log, err)
		return
	}
	ans := ledgerAnswer{Entries: entries}
	if next > 0 {
		c := strconv.FormatInt(next, 10)
		ans.NextCursor = &c
	}
	WriteJSON(w, r, h.Log, http.StatusOK, ans)
}

func pageParams(r *http.Request) (before int64, limit int, err error) {
	// url.Query drops what it cannot parse (a bad escape, a ';'), so a
	// pager whose cursor was garbled got the first page, as if it had none.
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return 0, 0, Errorf(KindInvalid, "invalid_query", "the query string cannot be read: %v", err)
	}
	limit = 50
	if c, ok, err := oneParam(q, "cursor", "invalid_cursor"); err != nil {
		return 0, 0, err
	} else if ok {
		if before, err = strconv.ParseInt(c, 10, 64); err != nil || before <= 0 {
			return 0, 0, Errorf(KindInvalid, "invalid_cursor", "cursor must be a next_cursor this endpoint returned")
		}
	}
	if l, ok, err := oneParam(q, "limit", "invalid_limit"); err != nil {
		return 0, 0, err
	} else if ok {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > 500 {
			return 0, 0, Errorf(KindInvalid, "invalid_limit", "limit must be a whole number from 1 to 500")
		}
	}
	return before, limit, nil
}

// oneParam is the query's value of name, if given, once (else code). An
// empty one is none: pagers send ?cursor= for the first page.
func oneParam(q url.Values, name, code string) (string, bool, error) {
	vs := q[name]
	switch {
	case len(vs) > 1:
		return "", false, Errorf(KindInvalid, code, "%s is given %d times; give it once", name, len(vs))
	case len(vs) == 0 || vs[0] == "":
		return "", false, nil
	}
	return vs[0], true, nil
}

// tierBody is PUT /v1/users/{user_id}/tier: a tier granted outside the App
// Store (a web subscription), until expires_at; tier free clears it.
type tierBody struct {
	Tier      string       `json:"tier"`
	ExpiresAt *requestTime `json:"expires_at"`
	Reason    string       `json:"reason"`
}

// PutTier sets a user's tier override and answers the entitlement.
func (h *Handler) PutTier(w http.ResponseWriter, r *http.Request) {
	userID, actor, err := serviceCall(r, ScopeAdmin)
	var b tierBody
	if err == nil {
		err = DecodeJSON(r, &b)
	}
	if err == nil {
		err = h.checkTier(b)
	}
	if err == nil {
		var st UserState
		if st, err = h.Store.SetTier(r.Context(), userID, h.Tokens.Token(userID), b.Tier, b.ExpiresAt.ptr(), b.Reason, actor); err == nil {
			WriteJSON(w, r, h.Log, http.StatusOK, Compute(st, h.Allowance))
			return
		}
	}
	WriteError(w, r, h.Log, err)
}

func (h *Handler) checkTier(b tierBody) error {
	if _, ok := h.Allowance.Tiers[b.Tier]; !ok {
		return Errorf(KindInvalid, "unknown_tier", "tier %q: want one of %v", b.Tier, keys(h.Allowance.Tiers))
	}
	if b.ExpiresAt != nil {
		if err := checkExpiry(b.ExpiresAt.Time, h.Now()); err != nil {
			return err
		}
	}
	if err := checkReason(b.Reason); err != nil {
		return err
	}
	return checkNewReason(b.Reason) // a tier change has no key: each is new
}
