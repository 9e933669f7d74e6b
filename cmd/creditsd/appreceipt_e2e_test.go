package main

import (
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/creditsd/creditsd/receipts/serverapi/fakeappstore"
)

// A StoreKit 1 app receipt is claimed through the App Store Server API: the
// transaction id is read locally, fetched from (a fake of) Apple's API,
// verified like any other signed transaction, and granted once.
func TestEndToEndAppReceipt(t *testing.T) {
	w, apple := newWorldWithApple(t, "")

	apple.AddTransaction(devca.Consumable(e2eBundle, receipts.Sandbox, e2ePack, "5000001", w.tokens.Token("alice"), time.Now()))
	body := map[string]string{"app_receipt": appReceipt(t, "5000001")}
	a := w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute), body)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	require.Equal(t, float64(10), a.body["credits"].(map[string]any)["balance"])
	a = w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute), body)
	require.Equal(t, http.StatusOK, a.status, "a second submission grants nothing")

	a = w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute), map[string]string{"app_receipt": appReceipt(t, "5999999")})
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, "unknown_transaction", a.code())
	a = w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute), map[string]string{"app_receipt": "bm90IGEgcmVjZWlwdA=="})
	require.Equal(t, http.StatusBadRequest, a.status, a.raw)
	require.Equal(t, "invalid_app_receipt", a.code())
	apple.FailNext(http.StatusInternalServerError, "")
	apple.FailNext(http.StatusInternalServerError, "")
	apple.FailNext(http.StatusInternalServerError, "")
	apple.FailNext(http.StatusInternalServerError, "")
	a = w.do("POST", "/v1/me/transactions", w.token("alice", "", time.Minute), map[string]string{"app_receipt": appReceipt(t, "5000002")})
	require.Equal(t, http.StatusServiceUnavailable, a.status, a.raw)
	require.Equal(t, "app_store_unavailable", a.code())
}

// newWorldWithApple is a world whose app_store_api points at a fake App
// Store Server that signs with the world's CA.
func newWorldWithApple(t *testing.T, extraYAML string) (*world, *fakeappstore.Server) {
	ca := newCA(t)
	key, p8 := fakeappstore.GenerateKey(t)
	apple := fakeappstore.New(t, fakeappstore.Options{CA: ca, BundleID: e2eBundle, KeyID: "KEY123", IssuerID: "issuer-1", PublicKey: &key.PublicKey})
	p8File := filepath.Join(t.TempDir(), "AuthKey_KEY123.p8")
	require.NoError(t, os.WriteFile(p8File, p8, 0o600))
	return newWorldWith(t, ca, fmt.Sprintf(`app_store_api:
  key_id: KEY123
  issuer_id: issuer-1
  private_key_file: %s
  production_url: %s
  sandbox_url: %s
%s`, p8File, apple.URL, apple.SandboxURL, extraYAML)), apple
}

// appReceipt builds a minimal PKCS#7 app receipt with one in-app purchase.
func appReceipt(t *testing.T, transactionID string) string {
	type attr struct {
		Type, Version int
		Value         []byte
	}
	str, err := asn1.MarshalWithParams(transactionID, "utf8")
	require.NoError(t, err)
	inApp, err := asn1.MarshalWithParams([]attr{{Type: 1703, Version: 1, Value: str}}, "set")
	require.NoError(t, err)
	payload, err := asn1.MarshalWithParams([]attr{{Type: 17, Version: 1, Value: inApp}}, "set")
	require.NoError(t, err)
	content, err := asn1.Marshal(struct {
		Type    asn1.ObjectIdentifier
		Content []byte `asn1:"explicit,tag:0"`
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}, payload})
	require.NoError(t, err)
	set := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true}
	signed, err := asn1.Marshal(struct {
		Version     int
		Digests     asn1.RawValue
		ContentInfo asn1.RawValue
		SignerInfos asn1.RawValue
	}{1, set, asn1.RawValue{FullBytes: content}, set})
	require.NoError(t, err)
	outer, err := asn1.Marshal(struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: signed}})
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(outer)
}
