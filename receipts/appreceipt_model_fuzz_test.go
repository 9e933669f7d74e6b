package receipts

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzAppReceiptModel builds well-formed receipts from the fuzzer's bytes,
// in every BER shape the reader must accept (definite lengths in short,
// long and non-minimal form, indefinite lengths, OCTET STRINGs split into
// nested segments, INTEGERs with leading zeros, eContent with or without
// its explicit [0]), and holds TransactionIDsFromAppReceipt to a model of
// what it must claim: the shape of the encoding must never change the
// answer.
func FuzzAppReceiptModel(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 0, 1, 0, 0, 1, 2, 0, 0, 2, 3, 1, 0})
	f.Add(bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, 40))
	f.Add(bytes.Repeat([]byte{0xff, 0x80, 0x41, 0x13}, 60))
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &gen{data: data}
		der, want, ok := g.receipt()
		ids, err := TransactionIDsFromAppReceipt(b64(der))
		if !ok {
			requireCode(t, err, CodeAppReceipt)
			return
		}
		require.NoError(t, err, "% x", der)
		require.Equal(t, want, ids, "% x", der)
	})
}

// gen turns fuzz bytes into choices; past the end every choice is 0.
type gen struct {
	data []byte
}

func (g *gen) byte() byte {
	if len(g.data) == 0 {
		return 0
	}
	b := g.data[0]
	g.data = g.data[1:]
	return b
}

func (g *gen) pick(n int) int { return int(g.byte()) % n }

var (
	modelIDs   = []string{"2000000000000001", "2000000000000002", "1000000000000003", "abc_DEF-9", "7", "0000000000000000000000000000000000000000000000000000000000000064"}
	modelDates = []string{"2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00", "2025-06-30T12:34:56Z", "2023-12-31T23:59:59.999Z", "1999-01-01T00:00:00Z"}
)

// modelPurchase is one in-app purchase as the model sees it.
type modelPurchase struct {
	id       string
	date     time.Time
	period   bool
	readable bool
}

// receipt returns the DER/BER receipt, the ids it must yield, and whether
// it must be accepted at all.
func (g *gen) receipt() ([]byte, []string, bool) {
	var attrs [][]byte
	var purchases []modelPurchase
	n := g.pick(16)
	for range n {
		switch g.pick(5) {
		case 0: // another receipt field
			attrs = append(attrs, g.attribute(2+g.pick(20), g.str("com.example.credits")))
		default:
			value, p := g.purchase()
			attrs = append(attrs, g.attribute(attrInAppPurchase, value))
			purchases = append(purchases, p)
		}
	}
	payload := g.constructed(0x31, attrs...)
	eContent := g.octetString(payload)
	if g.pick(4) != 0 {
		eContent = g.constructed(0xa0, eContent) // the standard's explicit [0]
	}
	encap := g.constructed(0x30, g.primitive(0x06, []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01}), eContent)
	signedData := g.constructed(0x30,
		g.primitive(0x02, []byte{1}),
		g.constructed(0x31),
		encap,
		g.constructed(0x31),
	)
	der := g.constructed(0x30, g.primitive(0x06, oidSignedData), g.constructed(0xa0, signedData))
	want, ok := modelClaims(purchases)
	return der, want, ok
}

// modelClaims is what the documentation promises: newest purchase first
// (undated last, ties in receipt order), every purchase that is not a
// period plus the newest period, each id once, at most MaxReceiptClaims.
func modelClaims(purchases []modelPurchase) ([]string, bool) {
	var dated, undated []modelPurchase
	for _, p := range purchases {
		switch {
		case !p.readable || p.id == "":
		case p.date.IsZero():
			undated = append(undated, p)
		default:
			dated = append(dated, p)
		}
	}
	if len(dated)+len(undated) == 0 {
		return nil, false
	}
	slices.SortStableFunc(dated, func(a, b modelPurchase) int { return b.date.Compare(a.date) })
	var ids []string
	newestPeriod := true
	for _, p := range append(dated, undated...) {
		if p.period {
			if !newestPeriod {
				continue
			}
			newestPeriod = false
		}
		if !slices.Contains(ids, p.id) && len(ids) < MaxReceiptClaims {
			ids = append(ids, p.id)
		}
	}
	return ids, true
}

// purchase encodes one in-app purchase's attribute SET.
func (g *gen) purchase() ([]byte, modelPurchase) {
	p := modelPurchase{readable: true}
	var attrs [][]byte
	id, orig := "", ""
	switch g.pick(6) {
	case 0, 1, 2:
		id = modelIDs[g.pick(len(modelIDs))]
	case 3:
		orig = modelIDs[g.pick(len(modelIDs))]
	case 4:
		id, orig = modelIDs[g.pick(len(modelIDs))], modelIDs[g.pick(len(modelIDs))]
	}
	if id != "" {
		attrs = append(attrs, g.attribute(attrTransactionID, g.str(id)))
	}
	if orig != "" {
		attrs = append(attrs, g.attribute(attrOriginalTransactionID, g.str(orig)))
	}
	p.id = id
	if p.id == "" {
		p.id = orig
	}
	switch d := g.pick(len(modelDates) + 2); {
	case d < len(modelDates):
		attrs = append(attrs, g.attribute(attrPurchaseDate, g.str(modelDates[d])))
		p.date, _ = time.Parse(time.RFC3339, modelDates[d])
	case d == len(modelDates):
		attrs = append(attrs, g.attribute(attrPurchaseDate, g.str("not a date"))) // undated
	}
	if g.pick(3) == 0 {
		p.period = true
		attrs = append(attrs, g.attribute(attrSubscriptionExpiry, g.str(modelDates[0])))
	}
	for range g.pick(3) { // fields nobody reads
		attrs = append(attrs, g.attribute(1700+g.pick(20)%2, g.str("x"))) // 1700, 1701
	}
	if g.pick(16) == 0 {
		// An id outside Apple's alphabet makes the purchase unreadable,
		// unless an id of that type came first (the first one wins).
		typ := []int{attrTransactionID, attrOriginalTransactionID}[g.pick(2)]
		attrs = append(attrs, g.attribute(typ, g.str("../x")))
		p.readable = typ == attrTransactionID && id != "" || typ == attrOriginalTransactionID && orig != ""
	}
	// Attribute order in a SET is not significant; shuffle a little, but
	// keep the id attributes' relative order out of it (first wins).
	if len(attrs) > 1 && g.pick(2) == 0 {
		i, j := g.pick(len(attrs)), g.pick(len(attrs))
		if !isIDAttr(attrs[i]) && !isIDAttr(attrs[j]) {
			attrs[i], attrs[j] = attrs[j], attrs[i]
		}
	}
	return g.constructed(0x31, attrs...), p
}

func isIDAttr(b []byte) bool {
	return bytes.Contains(b, []byte{0x06, 0xa7, 0x02}) || bytes.Contains(b, []byte{0x06, 0xa9, 0x02}) // 1703, 1705 then version
}

// attribute is SEQUENCE { type INTEGER, version INTEGER, value OCTET STRING }.
func (g *gen) attribute(typ int, value []byte) []byte {
	return g.constructed(0x30, g.integer(typ), g.integer(1), g.octetString(value))
}

// integer encodes a non-negative int minimally, sometimes with leading zeros.
func (g *gen) integer(n int) []byte {
	var b []byte
	for v := n; ; v >>= 8 {
		b = append([]byte{byte(v)}, b...)
		if v < 0x80 {
			break
		}
	}
	if b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	if g.pick(8) == 0 && len(b) < 4 {
		b = append([]byte{0}, b...) // BER tolerates; the reader's smallInt does
	}
	return g.primitive(0x02, b)
}

// str is s as a UTF8String or an IA5String.
func (g *gen) str(s string) []byte {
	tag := byte(0x0c)
	if g.pick(2) == 0 {
		tag = 0x16
	}
	return g.primitive(tag, []byte(s))
}

// octetString is an OCTET STRING of b, primitive or split into segments.
func (g *gen) octetString(b []byte) []byte { return g.octets(b, 0) }

func (g *gen) octets(b []byte, depth int) []byte {
	if depth >= 3 || g.pick(4) != 0 {
		return g.primitive(0x04, b)
	}
	var segs [][]byte
	for len(b) > 0 {
		k := min(len(b), 1+g.pick(len(b)+1))
		segs = append(segs, g.octets(b[:k], depth+1))
		b = b[k:]
	}
	return g.constructed(0x24, segs...)
}

func (g *gen) primitive(id byte, body []byte) []byte {
	return append(g.header(id, len(body)), body...)
}

// constructed encodes a constructed element, definite or indefinite.
func (g *gen) constructed(id byte, parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	if g.pick(3) == 0 {
		out := append([]byte{id, 0x80}, body...)
		return append(out, 0, 0)
	}
	return append(g.header(id, len(body)), body...)
}

// header is the identifier and a definite length, minimal or not.
func (g *gen) header(id byte, n int) []byte {
	var l []byte
	for v := n; v > 0; v >>= 8 {
		l = append([]byte{byte(v)}, l...)
	}
	switch {
	case g.pick(6) == 0 && len(l) < 4: // long form, one byte longer than needed
		l = append([]byte{0}, l...)
		return append([]byte{id, 0x80 | byte(len(l))}, l...)
	case n < 0x80:
		return []byte{id, byte(n)}
	}
	return append([]byte{id, 0x80 | byte(len(l))}, l...)
}
