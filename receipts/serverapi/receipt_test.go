package serverapi_test

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/creditsd/creditsd/receipts/serverapi"
	"github.com/creditsd/creditsd/receipts/serverapi/fakeappstore"
)

func TestFindTransactionInfo(t *testing.T) {
	ca, err := devca.New(devca.Options{})
	require.NoError(t, err)
	key, _ := fakeappstore.GenerateKey(t)
	srv := fakeappstore.New(t, fakeappstore.Options{CA: ca, BundleID: "com.example.sora", KeyID: "KEY1", IssuerID: "issuer", PublicKey: &key.PublicKey})
	client, err := serverapi.New(srv.ClientConfig(key))
	require.NoError(t, err)
	srv.AddTransaction(devca.Consumable("com.example.sora", receipts.Sandbox, "pack", "7000001", "", time.Now()))
	ctx := context.Background()

	signed, err := client.FindTransactionInfo(ctx, []string{receipts.Production, receipts.Sandbox}, "7000001")
	require.NoError(t, err, "found in Sandbox after Production said not found")
	require.Equal(t, 2, srv.Requests())
	v := receipts.Verifier{Roots: []*x509.Certificate{ca.Root}, BundleID: "com.example.sora", Environments: []string{receipts.Sandbox}}
	tx, err := v.VerifyTransaction(signed)
	require.NoError(t, err)
	require.Equal(t, "7000001", tx.TransactionID)

	_, err = client.FindTransactionInfo(ctx, []string{receipts.Production}, "7000001")
	require.True(t, errors.Is(err, serverapi.ErrNotFound), "only the accepted environments are asked")
	_, err = client.FindTransactionInfo(ctx, []string{receipts.LocalTesting}, "7000001")
	require.True(t, errors.Is(err, serverapi.ErrNotFound), "nor those the API does not serve")
	require.Equal(t, 3, srv.Requests())
}
