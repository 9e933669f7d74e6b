package fakeappstore

import (
	"encoding/asn1"
	"encoding/base64"
	"testing"
	"time"
)

// AppReceipt builds a minimal StoreKit 1 app receipt (PKCS#7 signedData
// around the receipt's ASN.1 set) holding one in-app purchase with
// transactionID, unsigned: creditsd reads only the id from it and asks the
// App Store Server API for the rest, as Apple's libraries do.
func AppReceipt(t testing.TB, transactionID string) string {
	t.Helper()
	return AppReceiptOf(t, InApp{TransactionID: transactionID})
}

// InApp is one in-app purchase of an app receipt.
type InApp struct {
	TransactionID string
	Purchased     time.Time // its purchase_date; zero leaves it out
	Expires       time.Time // an auto-renewable period's expiry (1708); zero for a purchase
}

// AppReceiptOf is AppReceipt holding these in-app purchases, in this order.
func AppReceiptOf(t testing.TB, purchases ...InApp) string {
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
	var inApps []attr
	for _, p := range purchases {
		fields := []attr{{Type: 1703, Version: 1, Value: must(asn1.MarshalWithParams(p.TransactionID, "utf8"))}}
		if !p.Purchased.IsZero() {
			date := p.Purchased.UTC().Format(time.RFC3339)
			fields = append(fields, attr{Type: 1704, Version: 1, Value: must(asn1.MarshalWithParams(date, "ia5"))})
		}
		if !p.Expires.IsZero() {
			date := p.Expires.UTC().Format(time.RFC3339)
			fields = append(fields, attr{Type: 1708, Version: 1, Value: must(asn1.MarshalWithParams(date, "ia5"))})
		}
		inApps = append(inApps, attr{Type: 17, Version: 1, Value: must(asn1.MarshalWithParams(fields, "set"))})
	}
	payload := must(asn1.MarshalWithParams(inApps, "set"))
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
