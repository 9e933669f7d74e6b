package entitlements

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// adminStore is a Store for the admin endpoints: it records the grant
// requests it is given, and counts the ledger pages it reads and the
// tiers it sets.
type adminStore struct {
	Store
	grants   *[]GrantRequest
	ledgers  *int
	setTiers *int
}

func (s adminStore) AdminGrant(_ context.Context, req GrantRequest) (Lot, UserState, bool, error) {
	*s.grants = append(*s.grants, req)
	return Lot{LotID: "lot_1", Granted: req.Credits, Remaining: req.Credits, ExpiresAt: req.ExpiresAt},
		UserState{UserID: req.UserID, At: time.Now()}, true, nil
}

func (s adminStore) Ledger(context.Context, string, string, string, int64, int) ([]Entry, int64, error) {
	*s.ledgers++
	return []Entry{}, 0, nil
}

func (s adminStore) SetTier(_ context.Context, userID, _, _ string, _ *time.Time, _, _ string) (UserState, error) {
	*s.setTiers++
	return UserState{UserID: userID, At: time.Now()}, nil
}

func newAdminStore() adminStore {
	return adminStore{grants: new([]GrantRequest), ledgers: new(int), setTiers: new(int)}
}

func adminHandler(s adminStore) *Handler {
	return &Handler{Store: s, Allowance: AllowancePolicy{Tiers: map[string]int64{TierFree: 3, "pro": 30}},
		Now: time.Now, Log: slog.New(slog.DiscardHandler)}
}

func grantBodyJSON(t *testing.T, key string, credits int64, reason string, expiresAt string) string {
	t.Helper()
	b := map[string]any{"idempotency_key": key, "credits": credits, "reason": reason}
	if expiresAt != "" {
		b["expires_at"] = expiresAt
	}
	out, err := json.Marshal(b)
	require.NoError(t, err)
	return string(out)
}

// A reason is at most 500 characters, counted as characters (the
// contract's maxLength), not bytes: 500 accented letters are 1000 bytes
// and a valid reason; 501 are not.
func TestPostGrantReasonLengthInCharacters(t *testing.T) {
	s := newAdminStore()
	h := adminHandler(s)
	w := callAs(t, h.PostGrant, http.MethodPost, "/v1/users/dave/grants", ScopeAdmin,
		grantBodyJSON(t, "g1", 5, strings.Repeat("é", 500), ""), "user_id", "dave")
	require.Equal(t, http.StatusCreated, w.Code, "500 characters, 1000 bytes: %s", w.Body.String())
	require.Len(t, *s.grants, 1)

	w = callAs(t, h.PostGrant, http.MethodPost, "/v1/users/dave/grants", ScopeAdmin,
		grantBodyJSON(t, "g2", 5, strings.Repeat("é", 501), ""), "user_id", "dave")
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"code":"invalid_reason"`)
}

// A grant's idempotency fingerprint covers expires_at, at the millisecond
// the store keeps: the same key with another expiry is another grant
// (the store answers 409), while times that differ below the millisecond
// are the same grant, and the store is given the time it keeps.
func TestPostGrantFingerprintCoversExpiry(t *testing.T) {
	s := newAdminStore()
	h := adminHandler(s)
	for _, exp := range []string{"2031-01-01T00:00:00.0001Z", "2031-01-01T00:00:00.0009Z", "2032-01-01T00:00:00Z", ""} {
		w := callAs(t, h.PostGrant, http.MethodPost, "/v1/users/dave/grants", ScopeAdmin,
			grantBodyJSON(t, "g1", 5, "goodwill", exp), "user_id", "dave")
		require.Equal(t, http.StatusCreated, w.Code, "%s: %s", exp, w.Body.String())
	}
	g := *s.grants
	require.Len(t, g, 4)
	ms := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	require.Equal(t, ms, *g[0].ExpiresAt, "the store keeps milliseconds")
	require.Equal(t, ms, *g[1].ExpiresAt)
	require.Equal(t, g[0].Hash, g[1].Hash, "the same expiry, to the millisecond, is the same grant")
	require.NotEqual(t, g[0].Hash, g[2].Hash, "another expiry is another grant")
	require.NotEqual(t, g[0].Hash, g[3].Hash, "no expiry is another grant")
	require.NotEqual(t, g[2].Hash, g[3].Hash)
}

// ?cursor= is a next_cursor the ledger returned, always above 0, and
// ?limit= is 1 to 500, each given once (empty is none): anything else, or
// a query string that cannot be read, is refused before the store is read.
func TestGetLedgerPageParams(t *testing.T) {
	for _, q := range []string{"cursor=0", "cursor=-3", "cursor=abc", "limit=0", "limit=501", "limit=x",
		"cursor=1&cursor=2", "limit=5&limit=6", "cursor=&cursor=", "cursor=99999999999999999999",
		"cursor=%zz", "limit=1;cursor=3"} {
		s := newAdminStore()
		w := callAs(t, adminHandler(s).GetLedger, http.MethodGet, "/v1/users/dave/ledger?"+q, ScopeAdmin, "", "user_id", "dave")
		require.Equal(t, http.StatusBadRequest, w.Code, "%s: %s", q, w.Body.String())
		code := "invalid_cursor"
		switch {
		case strings.ContainsAny(q, "%;"):
			code = "invalid_query" // a garbled query was read as none: the first page
		case strings.HasPrefix(q, "limit"):
			code = "invalid_limit"
		}
		require.Contains(t, w.Body.String(), `"code":"`+code+`"`, q)
		require.Zero(t, *s.ledgers, q)
	}
	// An empty value is none, as pagers send it for the first page.
	for _, q := range []string{"cursor=1", "limit=1", "limit=500", "cursor=3&limit=2", "other=x", "cursor=", "limit=", "cursor=&limit=10&"} {
		s := newAdminStore()
		w := callAs(t, adminHandler(s).GetLedger, http.MethodGet, "/v1/users/dave/ledger?"+q, ScopeAdmin, "", "user_id", "dave")
		require.Equal(t, http.StatusOK, w.Code, "%s: %s", q, w.Body.String())
	}
}

// PUT /v1/users/{user_id}/tier takes credits:admin alone: the generation
// backend's credits:spend reads entitlements and spends, but sets no tier.
func TestPutTierRefusesTheSpendScope(t *testing.T) {
	s := newAdminStore()
	h := adminHandler(s)
	w := callAs(t, h.PutTier, http.MethodPut, "/v1/users/dave/tier", ScopeSpend, `{"tier":"pro","reason":"web"}`, "user_id", "dave")
	require.Equal(t, http.StatusForbidden, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"code":"insufficient_scope"`)
	require.Zero(t, *s.setTiers)

	w = callAs(t, h.PutTier, http.MethodPut, "/v1/users/dave/tier", ScopeAdmin, `{"tier":"pro","reason":"web"}`, "user_id", "dave")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, 1, *s.setTiers)
}

// unread fails the test if the body is read: a body larger than the limit
// must be refused by its Content-Length alone.
type unread struct{ t *testing.T }

func (u unread) Read([]byte) (int, error) {
	u.t.Error("the body was read")
	return 0, io.ErrUnexpectedEOF
}

// A body whose Content-Length is over the limit is refused before a byte
// is read, as the webhook's is: a client that asked to continue
// (Expect: 100-continue) was told to send 100 MB, to be refused past 64 KiB.
func TestBodyTooLargeRefusedUpFront(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/v1/users/dave/grants", unread{t})
	r.ContentLength = 100_000_000
	var v struct{}
	err := DecodeJSON(r, &v)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, "body_too_large", e.Code)
	require.Equal(t, KindTooLarge, e.Kind)
}

// keyedStore answers a known key's grant as the store does, without
// checking it again, and checks a new one (GrantRequest.CheckNew).
type keyedStore struct {
	adminStore
	known map[string]bool
}

func (s keyedStore) AdminGrant(ctx context.Context, req GrantRequest) (Lot, UserState, bool, error) {
	if !s.known[req.Key] {
		if err := req.CheckNew(time.Now()); err != nil {
			return Lot{}, UserState{}, false, err
		}
	}
	return s.adminStore.AdminGrant(ctx, req)
}

// A new grant's reason must be audit text (Printable), but a replay is
// answered whatever its reason: a grant an earlier version accepted under
// a reason with a right-to-left override or a line separator was refused
// 400 on its replay, where the contract answers what the first call did.
// A control character stays refused for any request, as before.
func TestGrantReasonCheckedWhenNew(t *testing.T) {
	s := keyedStore{adminStore: newAdminStore(), known: map[string]bool{"old": true}}
	h := adminHandler(s.adminStore)
	h.Store = s
	post := func(key, reason string) *httptest.ResponseRecorder {
		return callAs(t, h.PostGrant, http.MethodPost, "/v1/users/dave/grants", ScopeAdmin,
			grantBodyJSON(t, key, 5, reason, ""), "user_id", "dave")
	}
	for _, reason := range []string{"refund \u202egnp.exe", "line\u2028two", "pua \ue000", "end \u2069"} {
		w := post("old", reason)
		require.Equal(t, http.StatusCreated, w.Code, "a replay of %q: %s", reason, w.Body.String())
		w = post("new", reason)
		require.Equal(t, http.StatusBadRequest, w.Code, "a new grant of %q: %s", reason, w.Body.String())
		require.Contains(t, w.Body.String(), `"code":"invalid_reason"`)
	}
	w := post("old", "a\u0000b")
	require.Equal(t, http.StatusBadRequest, w.Code, "a control character, replay or not")
	require.Equal(t, http.StatusCreated, post("new", "👨\u200d👩\u200d👧 goodwill").Code)
}

// A tier change has no key, so each is new: its reason is audit text.
func TestPutTierReasonIsAuditText(t *testing.T) {
	s := newAdminStore()
	h := adminHandler(s)
	w := callAs(t, h.PutTier, http.MethodPut, "/v1/users/dave/tier", ScopeAdmin, `{"tier":"pro","reason":"web\u202e"}`, "user_id", "dave")
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"code":"invalid_reason"`)
	require.Zero(t, *s.setTiers)
}
