package receipts

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts/devca"
)

func TestEarliestNotAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	soon, err := devca.New(devca.Options{Now: now.AddDate(0, -1, 0), LeafNotAfter: now.AddDate(0, 0, 20)})
	require.NoError(t, err)
	lapsed, err := devca.New(devca.Options{Now: now.AddDate(-1, 0, 0), LeafNotAfter: now.AddDate(0, 0, -1)})
	require.NoError(t, err)
	v := &Verifier{Roots: []*x509.Certificate{soon.Root, lapsed.Root}, BundleID: "b", Environments: []string{Sandbox}}

	_, ok := v.EarliestNotAfter(now)
	require.False(t, ok, "nothing seen yet")
	sign := func(ca *devca.CA, signed time.Time) {
		jws, err := ca.Sign(devca.Consumable("b", Sandbox, "p", "1", "", signed))
		require.NoError(t, err)
		_, err = v.VerifyTransaction(jws)
		require.NoError(t, err)
	}
	sign(lapsed, now.AddDate(0, 0, -3)) // valid when signed, its leaf lapsed since
	got, ok := v.EarliestNotAfter(now)
	require.True(t, ok)
	require.Equal(t, lapsed.Intermediate.NotAfter, got, "the lapsed leaf is left out; its intermediate still counts")
	sign(soon, now)
	got, ok = v.EarliestNotAfter(now)
	require.True(t, ok)
	require.Equal(t, soon.Leaf.NotAfter, got)
}
