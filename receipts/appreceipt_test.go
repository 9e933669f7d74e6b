package receipts

import (
	"bytes"
	"encoding/asn1"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/stretchr/testify/require"
)

// Receipt builders. Receipts are made with encoding/asn1 (DER), the way
// Apple's production receipts are shaped, plus hand-made BER where Xcode's
// differ (indefinite lengths, segmented OCTET STRINGs).

var (
	oidPKCS7Data       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidPKCS7SignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidSHA256          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
)

func mustDER(t testing.TB, v any, params string) []byte {
	t.Helper()
	b, err := asn1.MarshalWithParams(v, params)
	require.NoError(t, err)
	return b
}

func tlv(t testing.TB, class, tag int, compound bool, parts ...[]byte) []byte {
	t.Helper()
	return mustDER(t, asn1.RawValue{Class: class, Tag: tag, IsCompound: compound, Bytes: bytes.Join(parts, nil)}, "")
}

func derSet(t testing.TB, parts ...[]byte) []byte { return tlv(t, 0, asn1.TagSet, true, parts...) }
func derSeq(t testing.TB, parts ...[]byte) []byte { return tlv(t, 0, asn1.TagSequence, true, parts...) }

// attr is a ReceiptAttribute SEQUENCE { type, version, value OCTET STRING }.
func attr(t testing.TB, typ int, value []byte) []byte {
	return mustDER(t, struct {
		Type, Version int
		Value         []byte
	}{typ, 1, value}, "")
}

func utf8Attr(t testing.TB, typ int, s string) []byte { return attr(t, typ, mustDER(t, s, "utf8")) }
func ia5Attr(t testing.TB, typ int, s string) []byte  { return attr(t, typ, mustDER(t, s, "ia5")) }

// inApp is an in-app purchase receipt (type 17) holding attrs.
func inApp(t testing.TB, attrs ...[]byte) []byte {
	return attr(t, attrInAppPurchase, derSet(t, attrs...))
}

// receiptDER wraps receipt attributes in a PKCS#7 signedData ContentInfo
// with a real certificate and an empty signerInfos, like a receipt whose
// signature nobody checks here.
func receiptDER(t testing.TB, oid asn1.ObjectIdentifier, attrs ...[]byte) []byte {
	t.Helper()
	payload := derSet(t, attrs...)
	encap := derSeq(t, mustDER(t, oidPKCS7Data, ""), tlv(t, 2, 0, true, mustDER(t, payload, "")))
	ca, err := devca.New(devca.Options{})
	require.NoError(t, err)
	signedData := derSeq(t,
		mustDER(t, 1, ""),
		derSet(t, derSeq(t, mustDER(t, oidSHA256, ""))),
		encap,
		tlv(t, 2, 0, true, ca.Leaf.Raw), // certificates [0] IMPLICIT
		derSet(t),                       // signerInfos
	)
	return derSeq(t, mustDER(t, oid, ""), tlv(t, 2, 0, true, signedData))
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// typicalAttrs is a receipt with app fields around one consumable purchase.
func typicalAttrs(t testing.TB) [][]byte {
	return [][]byte{
		utf8Attr(t, 2, "com.example.credits"),
		utf8Attr(t, 3, "1.0"),
		inApp(t,
			ia5Attr(t, 1701, "1"),
			utf8Attr(t, 1702, "com.example.credits.10"),
			utf8Attr(t, 1703, "2000000123456789"),
			utf8Attr(t, 1705, "2000000000000001"),
		),
		attr(t, 4, []byte{0xde, 0xad}), // opaque value
	}
}

// indef is a BER indefinite-length element: identifier, 0x80, parts, EOC.
func indef(id byte, parts ...[]byte) []byte {
	out := append([]byte{id, 0x80}, bytes.Join(parts, nil)...)
	return append(out, 0, 0)
}

// xcodeReceipt is the BER shape Xcode's StoreKit testing writes: every
// wrapper indefinite, eContent a constructed OCTET STRING in two segments.
func xcodeReceipt(t testing.TB, attrs ...[]byte) []byte {
	payload := derSet(t, attrs...)
	half := len(payload) / 2
	eContent := indef(0x24, mustDER(t, payload[:half], ""), mustDER(t, payload[half:], ""))
	encap := indef(0x30, mustDER(t, oidPKCS7Data, ""), indef(0xa0, eContent))
	signedData := indef(0x30, mustDER(t, 1, ""), derSet(t), encap, derSet(t))
	return indef(0x30, mustDER(t, oidPKCS7SignedData, ""), indef(0xa0, signedData))
}

func TestTransactionIDsFromAppReceipt(t *testing.T) {
	sd := oidPKCS7SignedData
	// purchase is an in-app purchase with id bought at date ("" for none).
	purchase := func(t *testing.T, id, date string) []byte {
		if date == "" {
			return inApp(t, utf8Attr(t, 1703, id))
		}
		return inApp(t, utf8Attr(t, 1703, id), ia5Attr(t, 1704, date))
	}
	// period is a subscription's period with id bought at date.
	period := func(t *testing.T, id, date string) []byte {
		return inApp(t, utf8Attr(t, 1703, id), ia5Attr(t, 1704, date), ia5Attr(t, 1708, "2099-01-01T00:00:00Z"))
	}
	for _, tc := range []struct {
		name string
		der  func(t *testing.T) []byte
		want []string
	}{
		{"OK", func(t *testing.T) []byte { return receiptDER(t, sd, typicalAttrs(t)...) }, []string{"2000000123456789"}},
		{"OKTransactionIDPreferredInAnyOrder", func(t *testing.T) []byte {
			return receiptDER(t, sd, inApp(t, utf8Attr(t, 1705, "111"), utf8Attr(t, 1703, "222")))
		}, []string{"222"}},
		{"OKMissing1703FallsBackTo1705", func(t *testing.T) []byte {
			return receiptDER(t, sd, inApp(t, utf8Attr(t, 1702, "p"), ia5Attr(t, 1705, "333")))
		}, []string{"333"}},
		{"OKEveryPurchaseNewestFirst", func(t *testing.T) []byte {
			return receiptDER(t, sd, purchase(t, "501", "2026-01-01T00:00:00Z"),
				inApp(t, ia5Attr(t, 1704, "2026-03-01T10:00:00Z"), utf8Attr(t, 1703, "502")),
				purchase(t, "503", "2026-03-01T09:00:00Z"))
		}, []string{"502", "503", "501"}},
		{"OKNewestByInstantNotText", func(t *testing.T) []byte {
			return receiptDER(t, sd, purchase(t, "511", "2026-03-01T12:00:00+05:00"), purchase(t, "512", "2026-03-01T08:00:00Z"))
		}, []string{"512", "511"}},
		{"OKUndatedLastInTheReceiptsOrder", func(t *testing.T) []byte {
			return receiptDER(t, sd, purchase(t, "521", ""), purchase(t, "522", ""), purchase(t, "523", "2026-01-01T00:00:00Z"))
		}, []string{"523", "521", "522"}},
		{"OKUnreadableDateIsUndated", func(t *testing.T) []byte {
			return receiptDER(t, sd, purchase(t, "541", "2099-13-40"),
				inApp(t, utf8Attr(t, 1703, "542"), attr(t, 1704, mustDER(t, 2099, ""))),
				purchase(t, "543", "2026-02-01T00:00:00Z"))
		}, []string{"543", "541", "542"}},
		{"OKTiesKeepTheReceiptsOrder", func(t *testing.T) []byte {
			return receiptDER(t, sd, purchase(t, "531", "2026-01-01T00:00:00Z"), purchase(t, "532", "2026-01-01T00:00:00Z"))
		}, []string{"531", "532"}},
		{"OKOnlyTheNewestPeriod", func(t *testing.T) []byte {
			return receiptDER(t, sd, period(t, "551", "2026-01-01T00:00:00Z"), purchase(t, "552", "2025-12-01T00:00:00Z"),
				period(t, "553", "2026-03-01T00:00:00Z"), period(t, "554", "2026-02-01T00:00:00Z"))
		}, []string{"553", "552"}},
		{"OKAPeriodOlderThanThePurchases", func(t *testing.T) []byte {
			return receiptDER(t, sd, period(t, "561", "2026-01-01T00:00:00Z"), purchase(t, "562", "2026-02-01T00:00:00Z"))
		}, []string{"562", "561"}},
		{"OKEachIDOnce", func(t *testing.T) []byte {
			// Periods read by their 1705 share their subscription's id.
			return receiptDER(t, sd, purchase(t, "571", "2026-01-01T00:00:00Z"), purchase(t, "571", "2026-01-02T00:00:00Z"),
				inApp(t, utf8Attr(t, 1705, "572"), ia5Attr(t, 1704, "2026-02-01T00:00:00Z"), ia5Attr(t, 1708, "2026-03-01T00:00:00Z")),
				inApp(t, utf8Attr(t, 1705, "572"), ia5Attr(t, 1704, "2026-03-01T00:00:00Z"), ia5Attr(t, 1708, "2026-04-01T00:00:00Z")))
		}, []string{"572", "571"}},
		{"OKPassesOverAnUnreadablePurchase", func(t *testing.T) []byte {
			return receiptDER(t, sd, purchase(t, "../581", "2026-03-01T00:00:00Z"), purchase(t, "582", "2026-01-01T00:00:00Z"))
		}, []string{"582"}},
		{"OKSkipsInAppWithoutIDs", func(t *testing.T) []byte {
			return receiptDER(t, sd, inApp(t, utf8Attr(t, 1702, "p")), inApp(t, utf8Attr(t, 1703, "666")))
		}, []string{"666"}},
		{"OKBareEContent", func(t *testing.T) []byte {
			payload := derSet(t, inApp(t, utf8Attr(t, 1703, "777")))
			encap := derSeq(t, mustDER(t, oidPKCS7Data, ""), mustDER(t, payload, ""))
			signed := derSeq(t, mustDER(t, 1, ""), derSet(t), encap, derSet(t))
			return derSeq(t, mustDER(t, sd, ""), tlv(t, 2, 0, true, signed))
		}, []string{"777"}},
		{"OKXcodeBER", func(t *testing.T) []byte { return xcodeReceipt(t, typicalAttrs(t)...) }, []string{"2000000123456789"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TransactionIDsFromAppReceipt(b64(tc.der(t)))
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// At most MaxReceiptClaims ids, the newest: a receipt is unsigned, and each
// id is a request to Apple.
func TestTransactionIDsFromAppReceiptBound(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var attrs [][]byte
	var want []string
	for i := range MaxReceiptClaims + 2 {
		id := strconv.Itoa(800 + i)
		attrs = append(attrs, inApp(t, utf8Attr(t, 1703, id), ia5Attr(t, 1704, start.AddDate(0, 0, i).Format(time.RFC3339))))
		want = append([]string{id}, want...)
	}
	got, err := TransactionIDsFromAppReceipt(b64(receiptDER(t, oidPKCS7SignedData, attrs...)))
	require.NoError(t, err)
	require.Equal(t, want[:MaxReceiptClaims], got)
}

func TestTransactionIDsFromAppReceiptRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, input, detail string
	}{
		{"ErrEmpty", "  ", "empty"},
		{"ErrNotBase64", "not base64!", "base64"},
		{"ErrJunk", b64([]byte("this is not ASN.1 at all")), "ContentInfo"},
		{"ErrHuge", strings.Repeat("QUFB", 1<<19), "larger than"},
		{"ErrHugeDecoded", b64(make([]byte, maxAppReceiptBytes+1)), "larger than"},
		{"ErrDeepNesting", b64(bytes.Repeat([]byte{0x30, 0x80}, 100_000)), "deeper than"},
		{"ErrHighTag", b64([]byte{0x3f, 0x81, 0x00, 0x00}), "high tag"},
		{"ErrIndefinitePrimitive", b64([]byte{0x04, 0x80, 0x00, 0x00}), "indefinite length on a primitive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := TransactionIDsFromAppReceipt(tc.input)
			requireCode(t, err, CodeAppReceipt)
			require.Contains(t, err.Error(), tc.detail)
		})
	}
}

func TestTransactionIDsFromAppReceiptRefusesShapes(t *testing.T) {
	sd := oidPKCS7SignedData
	for _, tc := range []struct {
		name   string
		der    func(t *testing.T) []byte
		detail string
	}{
		{"ErrWrongOID", func(t *testing.T) []byte { return receiptDER(t, oidPKCS7Data, typicalAttrs(t)...) }, "not a PKCS#7 signedData"},
		{"ErrNoInApp", func(t *testing.T) []byte { return receiptDER(t, sd, utf8Attr(t, 2, "com.example.credits")) }, "no in-app purchase"},
		{"ErrNoIDs", func(t *testing.T) []byte { return receiptDER(t, sd, inApp(t, utf8Attr(t, 1702, "p"))) }, "no transaction id"},
		{"ErrIDNotString", func(t *testing.T) []byte { return receiptDER(t, sd, inApp(t, attr(t, 1703, mustDER(t, 5, "")))) }, "not a UTF8String"},
		{"ErrIDPathTraversal", func(t *testing.T) []byte { return receiptDER(t, sd, inApp(t, utf8Attr(t, 1703, "../x"))) }, "outside"},
		{"ErrIDTooLong", func(t *testing.T) []byte {
			return receiptDER(t, sd, inApp(t, utf8Attr(t, 1703, strings.Repeat("9", maxIDLen+1))))
		}, "longer than"},
		{"ErrInAppNotSet", func(t *testing.T) []byte { return receiptDER(t, sd, attr(t, 17, []byte("junk"))) }, "in-app purchase attribute SET"},
		{"ErrAttributeShape", func(t *testing.T) []byte {
			return receiptDER(t, sd, derSeq(t, mustDER(t, 17, ""), mustDER(t, "x", "utf8")))
		}, "attribute version"},
		{"ErrTrailingBytes", func(t *testing.T) []byte {
			return append(receiptDER(t, sd, typicalAttrs(t)...), 0x05, 0x00)
		}, "stray bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := TransactionIDsFromAppReceipt(b64(tc.der(t)))
			requireCode(t, err, CodeAppReceipt)
			require.Contains(t, err.Error(), tc.detail)
		})
	}
}

// Every strict prefix of a valid receipt, DER or BER, is refused cleanly.
func TestTransactionIDsFromAppReceiptTruncated(t *testing.T) {
	for _, der := range [][]byte{
		receiptDER(t, oidPKCS7SignedData, typicalAttrs(t)...),
		xcodeReceipt(t, typicalAttrs(t)...),
	} {
		for n := range len(der) {
			_, err := TransactionIDsFromAppReceipt(b64(der[:n]))
			requireCode(t, err, CodeAppReceipt)
		}
	}
}

// Many tiny elements under nested indefinite lengths: the scan must finish
// and refuse, not blow up in time or stack.
func TestTransactionIDsFromAppReceiptBoundedWork(t *testing.T) {
	nulls := bytes.Repeat([]byte{0x05, 0x00}, (maxAppReceiptBytes-100)/2)
	inner := indef(0x31, nulls)
	for range maxBERDepth - 2 {
		inner = indef(0x30, inner)
	}
	_, err := TransactionIDsFromAppReceipt(b64(inner))
	requireCode(t, err, CodeAppReceipt)
}

// FuzzAppReceipt feeds arbitrary bytes, as the base64 receipt they encode
// and as the string itself. Nothing may panic; every failure is a *Error
// with CodeAppReceipt; every success is 1 to MaxReceiptClaims distinct ids,
// each safe to put in a URL path.
// Seeds: testdata/fuzz/FuzzAppReceipt plus the receipts built here.
func FuzzAppReceipt(f *testing.F) {
	f.Add(receiptDER(f, oidPKCS7SignedData, typicalAttrs(f)...))
	f.Add(xcodeReceipt(f, typicalAttrs(f)...))
	f.Add([]byte{0x30, 0x80, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, input := range []string{b64(data), string(data)} {
			ids, err := TransactionIDsFromAppReceipt(input)
			if err != nil {
				requireCode(t, err, CodeAppReceipt)
				continue
			}
			require.NotEmpty(t, ids)
			require.LessOrEqual(t, len(ids), MaxReceiptClaims)
			require.Len(t, slices.Compact(slices.Sorted(slices.Values(ids))), len(ids), "ids %q", ids)
			for _, id := range ids {
				require.NotEmpty(t, id)
				require.LessOrEqual(t, len(id), maxIDLen)
				for _, c := range []byte(id) {
					require.True(t, isIDByte(c), "id %q", id)
				}
			}
		}
	})
}
