package receipts

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAppReceiptClaimEdges: claim order and bounds the contract states
// that the existing table leaves open.
func TestAppReceiptClaimEdges(t *testing.T) {
	sd := oidPKCS7SignedData
	period := func(id, date string) []byte {
		return inApp(t, utf8Attr(t, 1703, id), ia5Attr(t, 1704, date), ia5Attr(t, 1708, "2099-01-01T00:00:00Z"))
	}
	t.Run("only the newest period, with a purchase between periods", func(t *testing.T) {
		der := receiptDER(t, sd, period("601", "2026-03-01T00:00:00Z"),
			inApp(t, utf8Attr(t, 1703, "602"), ia5Attr(t, 1704, "2026-02-01T00:00:00Z")),
			period("603", "2026-01-01T00:00:00Z"))
		got, err := TransactionIDsFromAppReceipt(b64(der))
		require.NoError(t, err)
		require.Equal(t, []string{"601", "602"}, got)
	})
	t.Run("many undated purchases keep the receipt's order", func(t *testing.T) {
		var attrs [][]byte
		var want []string
		for i := range 12 {
			id := strconv.Itoa(900 + i)
			attrs = append(attrs, inApp(t, utf8Attr(t, 1703, id)))
			want = append(want, id)
		}
		attrs = append(attrs, inApp(t, utf8Attr(t, 1703, "912"), ia5Attr(t, 1704, "2026-01-01T00:00:00Z")))
		got, err := TransactionIDsFromAppReceipt(b64(receiptDER(t, sd, attrs...)))
		require.NoError(t, err)
		require.Equal(t, append([]string{"912"}, want[:MaxReceiptClaims-1]...), got)
	})
}

// TestAppReceiptRefusesMoreShapes: hostile or wrongly typed BER the parser
// must refuse (not accept, not panic).
func TestAppReceiptRefusesMoreShapes(t *testing.T) {
	sd := oidPKCS7SignedData
	good := receiptDER(t, sd, typicalAttrs(t)...)
	valid := b64(good)
	// bareEContent wraps payload as eContent without the explicit [0].
	bareEContent := func(eContent []byte) []byte {
		encap := derSeq(t, mustDER(t, oidPKCS7Data, ""), eContent)
		signed := derSeq(t, mustDER(t, 1, ""), derSet(t), encap, derSet(t))
		return derSeq(t, mustDER(t, sd, ""), tlv(t, 2, 0, true, signed))
	}
	payload := derSet(t, inApp(t, utf8Attr(t, 1703, "777")))
	deep := mustDER(t, payload, "")
	for range maxBERDepth + 1 {
		deep = tlv(t, 0, 4, true, deep) // constructed OCTET STRING of one segment
	}
	for name, input := range map[string]string{
		// Line breaks are skipped by the decoder; the bound on the text
		// must still hold, so that a huge body costs nothing.
		"huge with line breaks":                        valid[:8] + strings.Repeat("\n", 2*maxAppReceiptBytes) + valid[8:],
		"length of length over 4 bytes":                b64([]byte{0x30, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
		"ContentInfo primitive":                        b64(append([]byte{0x10}, good[1:]...)),
		"OCTET STRING segments nested too deeply":      b64(bareEContent(deep)),
		"eContent context-tagged, not an OCTET STRING": b64(bareEContent(tlv(t, 2, 4, false, payload))),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := TransactionIDsFromAppReceipt(input)
			requireCode(t, err, CodeAppReceipt)
		})
	}
}
