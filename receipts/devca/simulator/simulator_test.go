package simulator_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/creditsd/creditsd/receipts/devca/simulator"
)

const (
	bundle = "com.example.sora"
	pack   = "com.example.sora.credits10"
	pro    = "com.example.pro.monthly"
	token  = "494e9788-ae04-5c6c-b335-be97cbf4dd38"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newSim is a simulator on a frozen clock that tests move by hand.
func newSim(t *testing.T) (*simulator.Simulator, *time.Time, *receipts.Verifier) {
	t.Helper()
	ca, err := devca.New(devca.Options{Now: t0.AddDate(0, -14, 0)})
	require.NoError(t, err)
	roots, err := receipts.ParseCertificates(ca.RootPEM())
	require.NoError(t, err)
	now := t0
	sim := &simulator.Simulator{CA: ca, BundleID: bundle, State: &simulator.State{}, Now: func() time.Time { return now }}
	v := &receipts.Verifier{Roots: roots, BundleID: bundle, Environments: []string{receipts.LocalTesting}}
	return sim, &now, v
}

// verify checks that ev verifies as Apple's would, and returns it decoded.
func verify(t *testing.T, v *receipts.Verifier, ev simulator.Event) *receipts.Notification {
	t.Helper()
	n, err := v.VerifyNotification(ev.SignedPayload)
	require.NoError(t, err)
	require.Equal(t, ev.Type, n.NotificationType)
	require.Equal(t, ev.Subtype, n.Subtype)
	require.Equal(t, ev.NotificationUUID, n.NotificationUUID)
	require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, n.NotificationUUID)
	if ev.Transaction != nil {
		_, err := v.VerifyTransaction(ev.SignedTransaction)
		require.NoError(t, err)
		require.Equal(t, ev.Transaction.Payload.TransactionID, n.Transaction.TransactionID)
	}
	return n
}

func TestPurchase(t *testing.T) {
	sim, _, v := newSim(t)
	ev, err := sim.Purchase(simulator.Sale{User: "alice", AppAccountToken: token, ProductID: pack,
		Environment: receipts.LocalTesting, Quantity: 3, PurchasedAt: t0.AddDate(0, -13, 0)})
	require.NoError(t, err)
	n := verify(t, v, ev)
	require.Equal(t, "ONE_TIME_CHARGE", n.NotificationType)
	tx := n.Transaction
	require.Equal(t, "2000000000000001", tx.TransactionID, "ids are numbered from a fresh state")
	require.Equal(t, tx.TransactionID, tx.OriginalTransactionID)
	require.Equal(t, token, tx.AppAccountToken)
	require.EqualValues(t, 3, tx.Quantity)
	require.Equal(t, "Consumable", tx.Type)
	require.Equal(t, t0.AddDate(0, -13, 0), tx.PurchaseDate.UTC())
	require.Equal(t, t0, tx.SignedDate.UTC(), "signed now, whenever it was bought: the chain is checked at signedDate")

	ev, err = sim.Purchase(simulator.Sale{ProductID: pack, Environment: receipts.LocalTesting})
	require.NoError(t, err)
	require.Equal(t, "2000000000000002", ev.Transaction.Payload.TransactionID)
	require.Greater(t, ev.Transaction.Payload.SignedDate, sim.State.Transactions["2000000000000001"].Payload.SignedDate,
		"the clock did not move, the signedDate did")

	_, err = sim.Purchase(simulator.Sale{ProductID: pack, Environment: receipts.LocalTesting, PurchasedAt: t0.Add(time.Hour)})
	require.ErrorContains(t, err, "future")
	_, err = sim.Purchase(simulator.Sale{ProductID: pack, Environment: receipts.LocalTesting, Quantity: -1})
	require.ErrorContains(t, err, "quantity")
}

func TestRefundAndReversal(t *testing.T) {
	sim, now, v := newSim(t)
	ev, err := sim.Purchase(simulator.Sale{AppAccountToken: token, ProductID: pack, Environment: receipts.LocalTesting})
	require.NoError(t, err)
	id := ev.Transaction.Payload.TransactionID

	*now = now.Add(time.Minute)
	ev, err = sim.Refund(id, 0)
	require.NoError(t, err)
	tx := verify(t, v, ev).Transaction
	require.Equal(t, "REFUND", ev.Type)
	require.Equal(t, *now, tx.RevocationDate.UTC())
	require.Equal(t, "REFUND_FULL", tx.RevocationType)
	require.Equal(t, *now, tx.SignedDate.UTC(), "re-signed later than the purchase")
	_, err = sim.Refund(id, 0)
	require.ErrorContains(t, err, "already refunded")

	ev, err = sim.ReverseRefund(id)
	require.NoError(t, err)
	tx = verify(t, v, ev).Transaction
	require.Equal(t, "REFUND_REVERSED", ev.Type)
	require.False(t, tx.Revoked())
	require.Empty(t, tx.RevocationType)
	_, err = sim.ReverseRefund(id)
	require.ErrorContains(t, err, "not refunded")

	ev, err = sim.Refund(id, 40)
	require.NoError(t, err)
	tx = verify(t, v, ev).Transaction
	require.Equal(t, "REFUND_PRORATED", tx.RevocationType)
	require.EqualValues(t, 40000, tx.RevocationPercentage)

	_, err = sim.Refund("2000000000000099", 0)
	require.ErrorContains(t, err, "has not sold it")
}

func TestSubscription(t *testing.T) {
	sim, now, v := newSim(t)
	ev, err := sim.Subscribe(simulator.Sale{User: "alice", AppAccountToken: token, ProductID: pro, Environment: receipts.LocalTesting})
	require.NoError(t, err)
	n := verify(t, v, ev)
	require.Equal(t, "SUBSCRIBED", n.NotificationType)
	require.Equal(t, "INITIAL_BUY", n.Subtype)
	require.Equal(t, t0.AddDate(0, 1, 0), n.Transaction.ExpiresDate.UTC())
	require.Equal(t, "Auto-Renewable Subscription", n.Transaction.Type)
	require.NotNil(t, n.Renewal)
	require.Equal(t, 1, n.Renewal.AutoRenewStatus)
	first := n.Transaction.TransactionID

	ev, err = sim.Renew(first)
	require.NoError(t, err)
	n = verify(t, v, ev)
	require.Equal(t, "DID_RENEW", n.NotificationType)
	require.NotEqual(t, first, n.Transaction.TransactionID, "a renewal is a new transaction")
	require.Equal(t, first, n.Transaction.OriginalTransactionID)
	require.Equal(t, t0.AddDate(0, 1, 0), n.Transaction.PurchaseDate.UTC(), "the next period starts where the last ends")
	require.Equal(t, t0.AddDate(0, 2, 0), n.Transaction.ExpiresDate.UTC())

	*now = now.Add(time.Hour)
	events, err := sim.Expire(first)
	require.NoError(t, err)
	require.Len(t, events, 2, "the running period and the renewed one that has not started")
	for _, ev := range events {
		n := verify(t, v, ev)
		require.Equal(t, "EXPIRED", n.NotificationType)
		require.Equal(t, "VOLUNTARY", n.Subtype)
		require.Equal(t, 0, n.Renewal.AutoRenewStatus)
		tx := n.Transaction
		require.False(t, tx.ExpiresDate.After(*now) && tx.ExpiresDate.After(tx.PurchaseDate), "no period runs past now")
	}

	_, err = sim.Renew("2000000000000099")
	require.Error(t, err)
	ev, err = sim.Purchase(simulator.Sale{ProductID: pack, Environment: receipts.LocalTesting})
	require.NoError(t, err)
	_, err = sim.Renew(ev.Transaction.Payload.TransactionID)
	require.ErrorContains(t, err, "not a subscription")
}

func TestConsumptionRequestAndTest(t *testing.T) {
	sim, _, v := newSim(t)
	ev, err := sim.Purchase(simulator.Sale{ProductID: pack, Environment: receipts.LocalTesting})
	require.NoError(t, err)
	ev, err = sim.ConsumptionRequest(ev.Transaction.Payload.TransactionID)
	require.NoError(t, err)
	n := verify(t, v, ev)
	require.Equal(t, "CONSUMPTION_REQUEST", n.NotificationType)
	require.Equal(t, "UNINTENDED_PURCHASE", n.Data.ConsumptionRequestReason)

	ev, err = sim.Test(receipts.LocalTesting)
	require.NoError(t, err)
	n = verify(t, v, ev)
	require.Equal(t, "TEST", n.NotificationType)
	require.Nil(t, n.Transaction)
}
