package entitlements

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestExpiryExpiresAt(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return v
	}
	tests := []struct {
		name   string
		expiry Expiry
		from   string
		want   string
	}{
		{"twelve months", Expiry{Months: 12}, "2026-03-15T10:30:00Z", "2027-03-15T10:30:00Z"},
		{"leap day clamps to 28 Feb", Expiry{Months: 12}, "2028-02-29T23:00:00Z", "2029-02-28T23:00:00Z"},
		{"31 Jan plus one month clamps", Expiry{Months: 1}, "2027-01-31T00:00:00Z", "2027-02-28T00:00:00Z"},
		{"in UTC whatever the zone", Expiry{Months: 12}, "2026-03-01T01:00:00+02:00", "2027-02-28T23:00:00Z"},
		{"days", Expiry{Days: 30}, "2026-01-01T00:00:00Z", "2026-01-31T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.expiry.ExpiresAt(at(tt.from))
			require.True(t, ok)
			require.Equal(t, at(tt.want), got)
		})
	}
	_, ok := Expiry{Never: true}.ExpiresAt(at("2026-01-01T00:00:00Z"))
	require.False(t, ok, "never expires")
}

func TestParseExpiry(t *testing.T) {
	for in, want := range map[string]Expiry{"12mo": {Months: 12}, "30d": {Days: 30}, "never": {Never: true}} {
		got, err := ParseExpiry(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got)
		require.Equal(t, in, got.String())
	}
	for _, bad := range []string{"", "12", "0mo", "-1d", "1y", "twelve", "99999mo"} {
		_, err := ParseExpiry(bad)
		require.Error(t, err, bad)
	}
}

func TestLotCredits(t *testing.T) {
	got, err := LotCredits(Product{Credits: 10}, 3)
	require.NoError(t, err)
	require.Equal(t, int64(30), got)
	_, err = LotCredits(Product{Credits: 10}, 0)
	require.Error(t, err, "a quantity below 1 earns nothing")
	_, err = LotCredits(Product{Credits: math.MaxInt64 / 2}, 3)
	require.Error(t, err, "overflow is refused, not wrapped")
	_, err = LotCredits(Product{Credits: MaxCredits/2 + 1}, 2)
	require.Error(t, err, "a lot above MaxCredits is refused")
}

func TestPlanGrant(t *testing.T) {
	catalog := Catalog{
		"pack":    {ID: "pack", Credits: 10, ExpiresAfter: DefaultExpiry},
		"forever": {ID: "forever", Credits: 5, ExpiresAfter: Expiry{Never: true}},
		"pro":     {ID: "pro", Tier: TierPro},
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	bought := now.Add(-time.Hour)
	p := Purchase{TransactionID: "1", ProductID: "pack", Quantity: 2, PurchaseDate: bought}

	g, err := PlanGrant(p, catalog, now)
	require.NoError(t, err)
	require.Equal(t, OutcomeGranted, g.Outcome)
	require.Equal(t, int64(20), g.Credits, "credits × quantity")
	require.Equal(t, bought, g.GrantedAt, "granted at the purchase date")
	require.Equal(t, bought.AddDate(1, 0, 0), *g.ExpiresAt)

	old := p
	old.PurchaseDate = now.AddDate(0, -13, 0)
	g, err = PlanGrant(old, catalog, now)
	require.NoError(t, err)
	require.Equal(t, OutcomeExpired, g.Outcome, "bought 13 months ago")

	revoked := p
	revoked.RevocationDate = now
	g, _ = PlanGrant(revoked, catalog, now)
	require.Equal(t, OutcomeRevoked, g.Outcome)

	forever := p
	forever.ProductID = "forever"
	forever.PurchaseDate = now.AddDate(-5, 0, 0)
	g, _ = PlanGrant(forever, catalog, now)
	require.Equal(t, OutcomeGranted, g.Outcome)
	require.Nil(t, g.ExpiresAt)

	g, _ = PlanGrant(Purchase{ProductID: "pro", Quantity: 1}, catalog, now)
	require.Equal(t, OutcomeSubscription, g.Outcome)
	g, _ = PlanGrant(Purchase{ProductID: "other", Quantity: 1}, catalog, now)
	require.Equal(t, OutcomeUnknown, g.Outcome)

	zero := p
	zero.Quantity = 0
	_, err = PlanGrant(zero, catalog, now)
	require.Equal(t, "invalid_quantity", ErrorCode(err))
}

// A revocation takes back all of a purchase unless Apple says it was
// prorated (REFUND_PRORATED) with a share below 100 %: a percentage on a
// revocation of another type (a full refund, Family Sharing's revoke) does
// not make it partial, and such a pack is not granted.
func TestRefundPercent(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		typ  string
		pct  int64
		want int64
	}{
		{"REFUND_PRORATED", 50000, 50000},
		{"REFUND_PRORATED", 0, 100000},
		{"REFUND_PRORATED", 100000, 100000},
		{"REFUND_PRORATED", 150000, 100000},
		{"REFUND_FULL", 50000, 100000},
		{"FAMILY_REVOKE", 50000, 100000},
		{"", 50000, 100000},
	} {
		t.Run(fmt.Sprintf("%q %d", c.typ, c.pct), func(t *testing.T) {
			p := Purchase{TransactionID: "1", ProductID: "pack", Quantity: 1, PurchaseDate: now.Add(-time.Hour),
				RevocationDate: now, RevocationType: c.typ, RevocationPercent: c.pct}
			require.Equal(t, c.want, p.RefundPercent())
			_, part := p.PartRefunded()
			require.Equal(t, c.want < 100000, part)
			g, err := PlanGrant(p, Catalog{"pack": {ID: "pack", Credits: 10, ExpiresAfter: DefaultExpiry}}, now)
			require.NoError(t, err)
			require.Equal(t, c.want < 100000, g.Outcome == OutcomeGranted, "a pack revoked in full is not granted")
		})
	}
}
