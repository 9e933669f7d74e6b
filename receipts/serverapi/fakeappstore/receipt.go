package fakeappstore

import (
	"encoding/asn1"
	"encoding/base64"
	"testing"
)

// AppReceipt builds a minimal StoreKit 1 app receipt (PKCS#7 signedData
// around the receipt's ASN.1 set) holding one in-app purchase with
// transactionID, unsigned: creditsd reads only the id from it and asks the
// App Store Server API for the rest, as Apple's libraries do.
func AppReceipt(t testing.TB, transactionID string) string {
	t.Helper()
	type attr struct {
		Type, Version int
		Value         []byte
	}
	must := func(b []byte, err error) []byte {
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	id := must(asn1.MarshalWithParams(transactionID, "utf8"))
	inApp := must(asn1.MarshalWithParams([]attr{{Type: 1703, Version: 1, Value: id}}, "set"))
	payload := must(asn1.MarshalWithParams([]attr{{Type: 17, Version: 1, Value: inApp}}, "set"))
	content := must(asn1.Marshal(struct {
		Type    asn1.ObjectIdentifier
		Content []byte `asn1:"explicit,tag:0"`
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}, payload}))
	set := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true}
	signed := must(asn1.Marshal(struct {
		Version                          int
		Digests, ContentInfo, SignerInfo asn1.RawValue
	}{1, set, asn1.RawValue{FullBytes: content}, set}))
	outer := must(asn1.Marshal(struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue
	}{asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2},
		asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: signed}}))
	return base64.StdEncoding.EncodeToString(outer)
}
