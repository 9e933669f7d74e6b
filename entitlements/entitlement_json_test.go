package entitlements

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestEntitlementAppendJSON holds the hand-written encoder to what
// encoding/json writes for the same struct without it, over random
// entitlements with awkward strings, times and numbers.
func TestEntitlementAppendJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		e := randomEntitlement(r)
		want, err := json.Marshal(reflected(e))
		if err != nil { // a time encoding/json refuses: the encoder must refuse the same way
			_, err2 := json.Marshal(e)
			require.Error(t, err2, "case %d", i)
			out, err3 := e.AppendJSON([]byte("x"))
			require.Error(t, err3, "case %d", i)
			require.Equal(t, "x", string(out), "case %d: nothing appended", i)
			continue
		}
		got, err := e.AppendJSON(nil)
		require.NoError(t, err, "case %d", i)
		require.Equal(t, string(want), string(got), "case %d", i)
		got, err = json.Marshal(e)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got), "case %d, through MarshalJSON", i)
	}
}

func TestWriteJSONAppender(t *testing.T) {
	e := randomEntitlement(rand.New(rand.NewPCG(3, 4)))
	w := httptest.NewRecorder()
	WriteJSON(w, httptest.NewRequest("GET", "/v1/me/entitlement", nil), nil, 201, e)
	want, err := json.Marshal(reflected(e))
	require.NoError(t, err)
	require.Equal(t, 201, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	require.Equal(t, string(want)+"\n", w.Body.String(), "the same bytes json.Encoder wrote, newline and all")
}

// TestWriteJSONMarshalFailure: an answer that cannot be marshaled is a
// logged 500 problem, not its 2xx with an empty or broken body. A lot
// granted after year 9999 in UTC is one, whichever encoder meets it, and
// a NaN another.
func TestWriteJSONMarshalFailure(t *testing.T) {
	far := time.Date(10000, 1, 1, 4, 0, 0, 0, time.UTC)
	e := Entitlement{UserID: "kate", Tier: TierFree, Credits: Credits{Balance: 5,
		Lots: []Lot{{LotID: "lot_1", Source: SourceAdmin, Granted: 5, Remaining: 5, GrantedAt: far}}}}
	for name, v := range map[string]any{
		"entitlement (its AppendJSON)":   e,
		"spend answer (its MarshalJSON)": spendAnswer{SpendID: "sp_1", Entitlement: e},
		"grant answer (the lot's time)":  grantAnswer{Lot: e.Credits.Lots[0], Entitlement: e},
		"NaN (encoding/json's refusal)":  map[string]float64{"x": math.NaN()},
	} {
		t.Run(name, func(t *testing.T) {
			var logged bytes.Buffer
			w := httptest.NewRecorder()
			WriteJSON(w, httptest.NewRequest("POST", "/v1/users/kate/grants", nil), slog.New(slog.NewTextHandler(&logged, nil)), 201, v)
			require.Equal(t, 500, w.Code)
			require.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
			var p Problem
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p), w.Body.String())
			require.Equal(t, "internal", p.Code)
			require.Contains(t, logged.String(), "request failed")
			require.Contains(t, logged.String(), "marshal the")
		})
	}
}

// A lot stored with an expiry past the last one an answer can write (an
// admin grant could set one before session 25) is answered as expiring at
// that last millisecond, by every encoder, instead of failing the answer.
func TestLotExpiryPastYear9999IsAnswered(t *testing.T) {
	last := `"expires_at":"9999-12-31T23:59:59.999Z"`
	for _, far := range []time.Time{
		time.Date(10000, 1, 1, 4, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("", -5*3600)), // 10000-01-01T04:00:00Z
	} {
		lot := Lot{LotID: "lot_1", Source: SourceAdmin, Granted: 5, Remaining: 5, ExpiresAt: &far}
		e := Entitlement{UserID: "kate", Tier: TierFree, Credits: Credits{Balance: 5, Lots: []Lot{lot}}}
		b, err := e.AppendJSON(nil)
		require.NoError(t, err)
		require.Contains(t, string(b), last)
		b, err = json.Marshal(grantAnswer{Lot: lot, Entitlement: e})
		require.NoError(t, err)
		require.Equal(t, 2, bytes.Count(b, []byte(last)), string(b))
		require.Equal(t, far, *lot.ExpiresAt, "the lot itself keeps its expiry")
	}
	last999 := time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
	lot := Lot{LotID: "lot_1", Source: SourceAdmin, ExpiresAt: &last999}
	b, err := lot.MarshalJSON()
	require.NoError(t, err)
	require.Contains(t, string(b), last, "the last writable millisecond is written as it is")
}

var awkward = []string{"", "alice", "user@example.com:1", `quote"d`, `back\slash`, "<tag>&amp;", "tab\there",
	"\x00\x1f", "é ü 漢字", "\u2028\u2029", "bad \xff utf-8", "com.example.sora.credits10", "2000000123456789"}

func randomEntitlement(r *rand.Rand) Entitlement {
	str := func() string { return awkward[r.IntN(len(awkward))] }
	num := func() int64 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return math.MinInt64 + r.Int64N(10)
		case 2:
			return math.MaxInt64 - r.Int64N(10)
		}
		return r.Int64N(2000) - 1000
	}
	e := Entitlement{UserID: str(), AppAccountToken: str(), Tier: str(),
		Allowance: Allowance{Limit: num(), Used: num(), Remaining: num(), ResetsAt: randomTime(r)},
		Credits:   Credits{Balance: num(), Debt: num()}, Spendable: num()}
	if r.IntN(5) > 0 {
		e.Credits.Lots = []Lot{}
		for range r.IntN(4) {
			l := Lot{LotID: str(), Source: str(), ProductID: str(), TransactionID: str(), Environment: str(),
				Granted: num(), Remaining: num(), GrantedAt: randomTime(r)}
			if r.IntN(2) == 0 {
				x := randomTime(r)
				l.ExpiresAt = &x
			}
			e.Credits.Lots = append(e.Credits.Lots, l)
		}
	}
	return e
}

func randomTime(r *rand.Rand) time.Time {
	zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+30*60), time.FixedZone("", -8*3600),
		time.FixedZone("", 24*3600), time.FixedZone("", -25*3600)}
	var t time.Time
	switch r.IntN(6) {
	case 0:
		t = time.UnixMilli(r.Int64N(4e12)) // milliseconds, as the store keeps them
	case 1:
		t = time.Unix(r.Int64N(4e9), r.Int64N(1e9)) // nanoseconds
	case 2:
		t = time.Date(10000+r.IntN(5), 1, 1, 0, 0, 0, 0, time.UTC) // past what RFC 3339 can say
	case 3:
		t = time.Date(-1-r.IntN(5), 1, 1, 0, 0, 0, 0, time.UTC)
	case 4:
		t = time.Time{}
	default:
		t = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	}
	return t.In(zones[r.IntN(len(zones))])
}

// TestLotKeysAlwaysWritten: the contract lists product_id, transaction_id
// and environment on every lot. A lot without them (an admin lot; a
// restored lot has no transaction) writes null, through the entitlement's
// encoder and encoding/json alike.
func TestLotKeysAlwaysWritten(t *testing.T) {
	at := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	admin := Lot{LotID: "lot_a", Source: SourceAdmin, Granted: 5, Remaining: 5, GrantedAt: at}
	restored := Lot{LotID: "lot_r", Source: SourceRestored, ProductID: "com.example.sora.credits10",
		Environment: "Production", Granted: 2, Remaining: 2, GrantedAt: at, ExpiresAt: &at}
	adminJSON := `{"lot_id":"lot_a","source":"admin","product_id":null,"transaction_id":null,"environment":null,` +
		`"granted":5,"remaining":5,"granted_at":"2026-11-25T00:00:00Z","expires_at":null}`
	restoredJSON := `{"lot_id":"lot_r","source":"restored","product_id":"com.example.sora.credits10","transaction_id":null,` +
		`"environment":"Production","granted":2,"remaining":2,"granted_at":"2026-11-25T00:00:00Z","expires_at":"2026-11-25T00:00:00Z"}`

	e := Entitlement{Credits: Credits{Lots: []Lot{admin, restored}}}
	got, err := e.AppendJSON(nil)
	require.NoError(t, err)
	require.Contains(t, string(got), `"lots":[`+adminJSON+`,`+restoredJSON+`]`)
	got, err = json.Marshal(grantAnswer{Lot: admin, Entitlement: e})
	require.NoError(t, err)
	require.Contains(t, string(got), `{"lot":`+adminJSON+`,"entitlement":`)
}
