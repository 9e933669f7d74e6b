package entitlements

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// keptSpendStore is a Store that keeps one spend, of hash, under every
// key, and records the spend request it is given.
type keptSpendStore struct {
	Store
	hash string
	got  *SpendRequest
}

func (s keptSpendStore) SpendKept(context.Context, string, string) (string, bool, error) {
	return s.hash, s.hash != "", nil
}

func (s keptSpendStore) Spend(_ context.Context, req SpendRequest) (Spend, UserState, bool, error) {
	*s.got = req
	if req.Refused != nil {
		return Spend{SpendID: "sp_kept", Product: req.Product, Credits: 8}, UserState{UserID: req.UserID}, true, nil
	}
	return Spend{}, UserState{}, false, Errorf(KindInternal, "charged", "a refused body was charged")
}

// callAs sends method path with body to serve as a service holding scope,
// with the path's values given as name, value pairs.
func callAs(t *testing.T, serve http.HandlerFunc, method, path, scope, body string, values ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(values); i += 2 {
		r.SetPathValue(values[i], values[i+1])
	}
	r = r.WithContext(WithCaller(r.Context(), NewCaller("generation-backend", scope)))
	w := httptest.NewRecorder()
	serve(w, r)
	return w
}

// postSpend sends a spend body as the generation backend does.
func postSpend(t *testing.T, h *Handler, body string) *httptest.ResponseRecorder {
	t.Helper()
	return callAs(t, h.PostSpend, http.MethodPost, "/v1/users/carol/spends", ScopeSpend, body, "user_id", "carol")
}

// A body the pricing refuses now reaches the store, marked Refused, only
// when a spend of that very body is kept under its key: the store then
// replays it. With none kept, or one kept for another body, the refusal is
// the answer and the store is not asked to spend.
func TestPostSpendRefusedBodyOnlyReplays(t *testing.T) {
	const body = `{"idempotency_key": "g1", "product": "sora", "credits": 8}`
	var got SpendRequest
	h := &Handler{Pricing: Pricing{}, Log: slog.New(slog.DiscardHandler)} // sells nothing now
	credits := int64(8)
	h.Store = keptSpendStore{hash: bodyHash("sora", &credits, (*Generation)(nil)), got: &got}
	w := postSpend(t, h, body)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"spend_id":"sp_kept"`)
	require.Equal(t, "unknown_product", ErrorCode(got.Refused))

	got = SpendRequest{}
	h.Store = keptSpendStore{hash: "another body's", got: &got}
	w = postSpend(t, h, body)
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"code":"unknown_product"`)
	require.Empty(t, got.Key, "the store was not asked to spend")

	h.Store = keptSpendStore{got: &got}
	w = postSpend(t, h, body)
	require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
	require.Empty(t, got.Key)
}
