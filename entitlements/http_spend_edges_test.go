package entitlements

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// spendRecorder is a Store that charges every spend it is given, records
// them, and counts the reversals it is asked for.
type spendRecorder struct {
	Store
	spends    *[]SpendRequest
	reversals *int
}

func newSpendRecorder() spendRecorder {
	return spendRecorder{spends: new([]SpendRequest), reversals: new(int)}
}

func (s spendRecorder) Spend(_ context.Context, req SpendRequest) (Spend, UserState, bool, error) {
	*s.spends = append(*s.spends, req)
	return Spend{SpendID: "sp_1", Product: req.Product, Credits: req.Credits}, UserState{UserID: req.UserID, At: time.Now()}, false, nil
}

func (s spendRecorder) SpendKept(context.Context, string, string) (string, bool, error) {
	return "", false, nil
}

func (s spendRecorder) Reverse(_ context.Context, userID, _, spendID, _ string) (Reversal, UserState, bool, error) {
	*s.reversals++
	return Reversal{ReversalID: "rv_1", SpendID: spendID}, UserState{UserID: userID, At: time.Now()}, true, nil
}

// An idempotency key is 1 to 255 characters from '!' to '~': the space,
// which logs and headers would make ambiguous, is not one, nor is a 256th.
func TestPostSpendIdempotencyKeyBounds(t *testing.T) {
	visible := make([]byte, 0, '~'-'!'+1)
	for c := byte('!'); c <= '~'; c++ {
		visible = append(visible, c)
	}
	ok := []string{"k", strings.Repeat("k", 255), string(visible)}
	bad := []string{strings.Repeat("k", 256), "gen 7f3a", " ", "gen\t1", "gen\x7f"}
	for _, key := range append(ok, bad...) {
		s := newSpendRecorder()
		h := &Handler{Store: s, Pricing: DefaultPricing(), Log: slog.New(slog.DiscardHandler)}
		body := `{"idempotency_key":` + quoteJSON(t, key) + `,"product":"sora","credits":1}`
		w := callAs(t, h.PostSpend, http.MethodPost, "/v1/users/erin/spends", ScopeSpend, body, "user_id", "erin")
		if len(*s.spends) == 1 {
			require.Contains(t, ok, key, "key %q was accepted", key)
			require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
			continue
		}
		require.Contains(t, bad, key, "key %q was refused: %s", key, w.Body.String())
		require.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
		require.Contains(t, w.Body.String(), `"code":"invalid_idempotency_key"`)
	}
}

// A generation the pricing prices above MaxCredits is refused as
// invalid_credits, as the same figure sent as credits is: a configured
// rate of up to 1,000,000 credits per one-second unit, over up to 86400
// seconds, can price one far above it.
func TestPostSpendPricedGenerationBounded(t *testing.T) {
	pricing := Pricing{"render": {UnitSeconds: 1, MaxSeconds: 86400, PerUnit: map[string]int64{"8k": 1_000_000}}}
	for _, tc := range []struct {
		seconds string
		status  int
	}{{"1000", http.StatusCreated}, {"1001", http.StatusBadRequest}, {"86400", http.StatusBadRequest}} {
		s := newSpendRecorder()
		h := &Handler{Store: s, Pricing: pricing, Log: slog.New(slog.DiscardHandler)}
		w := callAs(t, h.PostSpend, http.MethodPost, "/v1/users/erin/spends", ScopeSpend,
			`{"idempotency_key":"r1","product":"render","generation":{"seconds":`+tc.seconds+`,"resolution":"8k"}}`, "user_id", "erin")
		require.Equal(t, tc.status, w.Code, "%s s: %s", tc.seconds, w.Body.String())
		if tc.status == http.StatusCreated {
			require.Equal(t, MaxCredits, (*s.spends)[0].Credits)
			continue
		}
		require.Contains(t, w.Body.String(), `"code":"invalid_credits"`)
		require.Empty(t, *s.spends, "%s s reached the store", tc.seconds)
	}
}

// A reversal takes credits:spend, the generation backend's scope, alone:
// credits:admin grants and reads ledgers but gives no spend back.
func TestPostReverseTakesTheSpendScope(t *testing.T) {
	s := newSpendRecorder()
	h := &Handler{Store: s, Log: slog.New(slog.DiscardHandler)}
	w := callAs(t, h.PostReverse, http.MethodPost, "/v1/users/erin/spends/sp_1/reverse", ScopeAdmin, "", "user_id", "erin", "spend_id", "sp_1")
	require.Equal(t, http.StatusForbidden, w.Code, w.Body.String())
	require.Contains(t, w.Body.String(), `"code":"insufficient_scope"`)
	require.Zero(t, *s.reversals)

	w = callAs(t, h.PostReverse, http.MethodPost, "/v1/users/erin/spends/sp_1/reverse", ScopeSpend, "", "user_id", "erin", "spend_id", "sp_1")
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	require.Equal(t, 1, *s.reversals)
}

// quoteJSON is s as a JSON string.
func quoteJSON(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	require.NoError(t, err)
	return string(b)
}
