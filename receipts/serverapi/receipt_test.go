package serverapi_test

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/creditsd/creditsd/receipts/serverapi"
	"github.com/creditsd/creditsd/receipts/serverapi/fakeappstore"
)

// appReceipt builds a minimal PKCS#7 app receipt holding one in-app purchase.
func appReceipt(t *testing.T, transactionID string) string {
	type attr struct {
		Type    int
		Version int
		Value   []byte
	}
	str, err := asn1.MarshalWithParams(transactionID, "utf8")
	require.NoError(t, err)
	inApp, err := asn1.MarshalWithParams([]attr{{Type: 1703, Version: 1, Value: str}}, "set")
	require.NoError(t, err)
	payload, err := asn1.MarshalWithParams([]attr{{Type: 2, Version: 1, Value: []byte{0x0c, 0x01, 'x'}}, {Type: 17, Version: 1, Value: inApp}}, "set")
	require.NoError(t, err)
	content, err := asn1.Marshal(struct {
		Type    asn1.ObjectIdentifier
		Content []byte `asn1:"explicit,tag:0"`
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}, payload})
	require.NoError(t, err)
	signed, err := asn1.Marshal(struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		ContentInfo      asn1.RawValue
		SignerInfos      asn1.RawValue
	}{1, asn1.RawValue{Class: 0, Tag: 17, IsCompound: true}, asn1.RawValue{FullBytes: content}, asn1.RawValue{Class: 0, Tag: 17, IsCompound: true}})
	require.NoError(t, err)
	outer, err := asn1.Marshal(struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: signed}})
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(outer)
}

func TestSignedTransactionForReceipt(t *testing.T) {
	ca, err := devca.New(devca.Options{})
	require.NoError(t, err)
	key, _ := fakeappstore.GenerateKey(t)
	srv := fakeappstore.New(t, fakeappstore.Options{CA: ca, BundleID: "com.example.sora", KeyID: "KEY1", IssuerID: "issuer", PublicKey: &key.PublicKey})
	client, err := serverapi.New(srv.ClientConfig(key))
	require.NoError(t, err)
	srv.AddTransaction(devca.Consumable("com.example.sora", receipts.Sandbox, "pack", "7000001", "", time.Now()))
	ctx := context.Background()

	signed, err := client.SignedTransactionForReceipt(ctx, appReceipt(t, "7000001"), []string{receipts.Production, receipts.Sandbox})
	require.NoError(t, err, "found in Sandbox after Production said not found")
	v := receipts.Verifier{Roots: []*x509.Certificate{ca.Root}, BundleID: "com.example.sora", Environments: []string{receipts.Sandbox}}
	tx, err := v.VerifyTransaction(signed)
	require.NoError(t, err)
	require.Equal(t, "7000001", tx.TransactionID)

	_, err = client.SignedTransactionForReceipt(ctx, appReceipt(t, "7000001"), []string{receipts.Production})
	require.True(t, errors.Is(err, serverapi.ErrNotFound), "only the accepted environments are asked")

	_, err = client.SignedTransactionForReceipt(ctx, "not a receipt", []string{receipts.Sandbox})
	var re *receipts.Error
	require.ErrorAs(t, err, &re)
	require.Equal(t, receipts.CodeAppReceipt, re.Code)
}
