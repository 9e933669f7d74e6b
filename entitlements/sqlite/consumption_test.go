package sqlite

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// A subscription's period is told apart from a pack: it has no lot, and it
// was delivered when it was kept for an owner (the tier was hers).
func TestConsumptionFactsOfSubscription(t *testing.T) {
	ctx := context.Background()
	db := openWithAlice(t)
	start := testNow.AddDate(0, 0, -10)
	subNotify(t, db, "n1", subscription("s1", "s1", tokens.Token("alice"), start, start), nil)
	subNotify(t, db, "n2", subscription("s2", "s2", tokens.Token("nobody-yet"), start, start), nil)
	unknown := subscription("s3", "s3", tokens.Token("alice"), start, start)
	unknown.ProductID = "pro.yearly" // not in the catalog: kept with no tier, Apple's type says what it is
	recordUnknown(t, db, "n3", unknown)
	_, err := claim(t, db, "alice", purchase("p1", tokens.Token("alice")))
	require.NoError(t, err)

	for id, want := range map[string]ConsumptionFacts{
		"s1": {Subscription: true, Delivered: true},
		"s2": {Subscription: true, Delivered: false},
		"s3": {Subscription: true, Delivered: true},
		"p1": {Delivered: true, Granted: 10},
		"p9": {},
	} {
		f, err := db.ConsumptionFactsFor(ctx, id)
		require.NoError(t, err)
		require.Equal(t, want, f, id)
	}
}
