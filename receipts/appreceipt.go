package receipts

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"time"
)

// CodeAppReceipt means an app receipt (StoreKit 1) could not be read: not
// base64, not a PKCS#7 signedData, malformed receipt attributes, or no
// in-app purchase with a transaction id.
const CodeAppReceipt Code = "invalid_app_receipt"

const (
	// maxAppReceiptBytes bounds the decoded receipt. Real receipts are a
	// few KiB (a long subscription history a few hundred); 1 MiB leaves
	// room while keeping the work per request small.
	maxAppReceiptBytes = 1 << 20
	// maxBERDepth bounds nesting, so hostile input cannot exhaust the stack
	// through indefinite lengths or constructed strings.
	maxBERDepth = 24
	// maxIDLen bounds a transaction id; Apple's are 15-16 digits.
	maxIDLen = 64

	attrInAppPurchase         = 17
	attrTransactionID         = 1703
	attrPurchaseDate          = 1704
	attrOriginalTransactionID = 1705
	attrSubscriptionExpiry    = 1708
)

// MaxReceiptClaims bounds the in-app purchases of one app receipt that are
// claimed. Each is fetched from the App Store Server API, a few at a time
// within the request's budget (cmd/creditsd's receiptTimeout) and against
// Apple's rate limit for the app; and as the receipt is unsigned, anyone
// could otherwise post one naming thousands of ids and have each fetched.
// A receipt holds few purchases to claim: the app finishes each once
// creditsd has answered, which removes it from the receipt.
const MaxReceiptClaims = 10

// oidSignedData is 1.2.840.113549.1.7.2 (PKCS#7 signedData), DER contents.
var oidSignedData = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02}

// TransactionIDsFromAppReceipt returns the transaction ids of the in-app
// purchases to claim in a base64 app receipt, newest purchase_date (1704)
// first, at most MaxReceiptClaims of them, each once. Each id is field 1703
// (transaction_identifier), or 1705 (original_transaction_identifier) when
// 1703 is absent, as Apple's ReceiptUtility reads them.
//
// Those to claim are every purchase that is not a subscription's period
// (no 1708), and the newest period. A receipt keeps a consumable until the
// app finishes it, and the app finishes it only once creditsd has
// answered; so a pack that can never be claimed (refunded, another
// account's, bought without an appAccountToken) stays in it, and claiming
// only one purchase would hide every purchase made after such a pack. A
// subscription's periods stay in the receipt for good: the newest is the
// one that may set the tier now. Undated purchases come last, and ties
// keep the receipt's order.
//
// The receipt's signature is NOT checked, like Apple's: the ids only tell
// the caller which transactions to fetch from the App Store Server API,
// whose signed answers are what must be verified. Never grant anything on
// an id alone. Every failure is a *Error with CodeAppReceipt.
func TransactionIDsFromAppReceipt(appReceiptBase64 string) ([]string, error) {
	der, err := decodeAppReceipt(appReceiptBase64)
	if err != nil {
		return nil, err
	}
	payload, err := receiptPayload(der)
	if err != nil {
		return nil, err
	}
	purchases, err := inAppPurchases(payload)
	if err != nil {
		return nil, err
	}
	return claimIDs(purchases), nil
}

// claimIDs orders purchases newest first, keeps the purchases that are not
// periods and the newest period, and returns their ids, each once, at most
// MaxReceiptClaims.
func claimIDs(purchases []inAppPurchase) []string {
	slices.SortStableFunc(purchases, func(p, q inAppPurchase) int { return q.purchased.Compare(p.purchased) })
	var ids []string
	sawPeriod := false
	for _, p := range purchases {
		skip := p.period && sawPeriod || slices.Contains(ids, p.id)
		sawPeriod = sawPeriod || p.period
		if skip {
			continue
		}
		if ids = append(ids, p.id); len(ids) == MaxReceiptClaims {
			break
		}
	}
	return ids
}

func appReceiptError(format string, args ...any) *Error {
	return newError(CodeAppReceipt, nil, format, args...)
}

func decodeAppReceipt(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, appReceiptError("app receipt is empty")
	}
	// Refuse before decoding so a huge body costs nothing; base64 is 4/3
	// of the bytes, plus the line breaks some clients insert.
	if len(s) > maxAppReceiptBytes/3*4+maxAppReceiptBytes/32 {
		return nil, appReceiptError("app receipt is larger than %d bytes", maxAppReceiptBytes)
	}
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, appReceiptError("app receipt is not standard base64")
	}
	if len(der) > maxAppReceiptBytes {
		return nil, appReceiptError("app receipt is larger than %d bytes", maxAppReceiptBytes)
	}
	return der, nil
}

// pathToEContent leads from inside ContentInfo to eContent: contentType
// (checked separately), content [0] → SignedData { version,
// digestAlgorithms, encapContentInfo { eContentType, eContent } }.
var pathToEContent = []struct {
	class byte
	tag   int
	enter bool
	what  string
}{
	{classUniversal, tagOID, false, "contentType"},
	{classContext, 0, true, "content [0]"},
	{classUniversal, tagSequence, true, "SignedData"},
	{classUniversal, tagInteger, false, "SignedData version"},
	{classUniversal, tagSet, false, "digestAlgorithms"},
	{classUniversal, tagSequence, true, "encapContentInfo"},
	{classUniversal, tagOID, false, "eContentType"},
}

// receiptPayload walks the PKCS#7 wrapper and returns eContent, the
// receipt's attribute SET.
func receiptPayload(der []byte) ([]byte, error) {
	ci, err := single(der, tagSequence, "ContentInfo")
	if err != nil {
		return nil, err
	}
	r := berReader{ci.body}
	for i, step := range pathToEContent {
		e, err := r.expect(step.class, step.tag, step.what)
		if err != nil {
			return nil, err
		}
		if i == 0 && !bytes.Equal(e.body, oidSignedData) {
			return nil, appReceiptError("app receipt is not a PKCS#7 signedData")
		}
		if step.enter {
			r = berReader{e.body}
		}
	}
	e, err := r.next()
	if err != nil {
		return nil, prefixed("eContent", err)
	}
	// The standard wraps eContent in an explicit [0]; accept it bare too.
	if e.class == classContext && e.tag == 0 && e.constructed {
		inner := berReader{e.body}
		if e, err = inner.next(); err != nil {
			return nil, prefixed("eContent [0]", err)
		}
	}
	return octets(e, 0)
}

// inAppPurchases scans the receipt's attributes for in-app purchase
// receipts (type 17) and returns those with a transaction id. An in-app
// purchase that cannot be read is passed over while another can be: the id
// is only which transaction to fetch.
func inAppPurchases(payload []byte) ([]inAppPurchase, error) {
	sawInApp := false
	var purchases []inAppPurchase
	var unread error
	err := eachAttribute(payload, "receipt", func(a attribute) (bool, error) {
		if a.typ != attrInAppPurchase {
			return false, nil
		}
		sawInApp = true
		p, err := readInAppPurchase(a.value)
		switch {
		case err != nil:
			unread = cmp.Or(unread, err)
		case p.id != "":
			purchases = append(purchases, p)
		}
		return false, nil
	})
	switch {
	case err != nil:
		return nil, err
	case len(purchases) > 0:
		return purchases, nil
	case unread != nil:
		return nil, unread
	case !sawInApp:
		return nil, appReceiptError("app receipt holds no in-app purchase (field 17)")
	}
	return nil, appReceiptError("in-app purchase has no transaction id (field 1703 or 1705)")
}

// inAppPurchase is what is read of one in-app purchase receipt.
type inAppPurchase struct {
	id        string    // 1703, else 1705, else ""
	purchased time.Time // 1704; zero when absent or unreadable
	period    bool      // it has 1708, which only auto-renewable periods have
}

// readInAppPurchase reads one in-app purchase receipt. Attribute order is
// not significant in a SET. The date only orders purchases: one that does
// not parse leaves the purchase undated rather than refusing the receipt,
// whose signature nobody checks anyway (Apple's signed answer decides).
func readInAppPurchase(value []byte) (inAppPurchase, error) {
	var p inAppPurchase
	var originalID string
	err := eachAttribute(value, "in-app purchase", func(a attribute) (bool, error) {
		var err error
		switch {
		case a.typ == attrTransactionID && p.id == "":
			p.id, err = idString(a.value)
		case a.typ == attrOriginalTransactionID && originalID == "":
			originalID, err = idString(a.value)
		case a.typ == attrPurchaseDate && p.purchased.IsZero():
			p.purchased = dateString(a.value)
		case a.typ == attrSubscriptionExpiry:
			p.period = true
		}
		return false, err
	})
	if p.id == "" {
		p.id = originalID
	}
	return p, err
}

type attribute struct {
	typ   int // -1 when too large to be one we know
	value []byte
}

// eachAttribute calls fn on each SEQUENCE { type INTEGER, version INTEGER,
// value OCTET STRING } of the SET OF that b must be, until fn says done.
func eachAttribute(b []byte, what string, fn func(attribute) (done bool, err error)) error {
	set, err := single(b, tagSet, what+" attribute SET")
	if err != nil {
		return err
	}
	for r := (berReader{set.body}); !r.empty(); {
		seq, err := r.expect(classUniversal, tagSequence, what+" attribute")
		if err != nil {
			return err
		}
		f := berReader{seq.body}
		typ, err := f.expect(classUniversal, tagInteger, "attribute type")
		if err != nil {
			return err
		}
		if _, err := f.expect(classUniversal, tagInteger, "attribute version"); err != nil {
			return err
		}
		v, err := f.expect(classUniversal, tagOctetString, "attribute value")
		if err != nil {
			return err
		}
		value, err := octets(v, 0)
		if err != nil {
			return err
		}
		if done, err := fn(attribute{smallInt(typ.body), value}); done || err != nil {
			return err
		}
	}
	return nil
}

// smallInt decodes a non-negative INTEGER of at most 4 bytes, else -1.
func smallInt(b []byte) int {
	if len(b) == 0 || len(b) > 4 || b[0]&0x80 != 0 {
		return -1
	}
	n := 0
	for _, c := range b {
		n = n<<8 | int(c)
	}
	return n
}

// idString reads the UTF8String or IA5String inside an id attribute. The id
// will go into an API URL path, so only Apple's id alphabet is let through.
func idString(value []byte) (string, error) {
	e, err := single(value, -1, "transaction id")
	if err != nil {
		return "", err
	}
	if e.class != classUniversal || e.constructed || (e.tag != tagUTF8String && e.tag != tagIA5String) {
		return "", appReceiptError("transaction id is not a UTF8String or IA5String")
	}
	if len(e.body) > maxIDLen {
		return "", appReceiptError("transaction id is longer than %d bytes", maxIDLen)
	}
	for _, c := range e.body {
		if !isIDByte(c) {
			return "", appReceiptError("transaction id holds a byte outside [0-9A-Za-z_-]")
		}
	}
	return string(e.body), nil
}

// dateString reads the RFC 3339 IA5String (or UTF8String) of a date
// attribute, or the zero time.
func dateString(value []byte) time.Time {
	e, err := single(value, -1, "date")
	if err != nil || e.class != classUniversal || e.constructed || (e.tag != tagUTF8String && e.tag != tagIA5String) {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, string(e.body))
	if err != nil {
		return time.Time{}
	}
	return t
}

func isIDByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_'
}

// octets returns an OCTET STRING's contents. BER lets an encoder split one
// into a constructed string of segments (Xcode's receipts do): they are
// concatenated.
func octets(e element, depth int) ([]byte, error) {
	if e.class != classUniversal || e.tag != tagOctetString {
		return nil, appReceiptError("expected an OCTET STRING")
	}
	if !e.constructed {
		return e.body, nil
	}
	if depth >= maxBERDepth {
		return nil, appReceiptError("OCTET STRING segments nest too deeply")
	}
	var out []byte
	r := berReader{e.body}
	for !r.empty() {
		seg, err := r.next()
		if err != nil {
			return nil, err
		}
		b, err := octets(seg, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}

// single reads the one element b must consist of; tag -1 takes any tag,
// else it must be a universal constructed element with that tag.
func single(b []byte, tag int, what string) (element, error) {
	r := berReader{b}
	e, err := r.next()
	if err != nil {
		return element{}, prefixed(what, err)
	}
	if tag >= 0 && (e.class != classUniversal || e.tag != tag || !e.constructed) {
		return element{}, appReceiptError("%s has the wrong ASN.1 type", what)
	}
	if !r.empty() {
		return element{}, appReceiptError("%s is followed by %d stray bytes", what, len(r.rest))
	}
	return e, nil
}

// prefixed names where a reader error happened, keeping CodeAppReceipt.
func prefixed(what string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return appReceiptError("%s: %s", what, e.Detail)
	}
	return err
}

// The ASN.1 identifiers the receipt path needs.
const (
	classUniversal byte = 0x00
	classContext   byte = 0x80

	tagInteger     = 2
	tagOctetString = 4
	tagOID         = 6
	tagUTF8String  = 12
	tagSequence    = 16
	tagSet         = 17
	tagIA5String   = 22
)

// element is one BER TLV. encoding/asn1 is not enough: it reads DER only,
// and receipts (Xcode's, and Apple's PKCS#7 wrapper) use BER indefinite
// lengths, which is why Apple's own ReceiptUtility uses an
// indefinite-form decoder.
type element struct {
	class       byte // the identifier's top two bits
	constructed bool
	tag         int
	body        []byte // contents, without an indefinite form's end-of-contents
}

// berReader reads consecutive elements from rest.
type berReader struct{ rest []byte }

func (r *berReader) empty() bool { return len(r.rest) == 0 }

func (r *berReader) next() (element, error) {
	e, rest, err := readElement(r.rest, 0)
	if err != nil {
		return element{}, err
	}
	r.rest = rest
	return e, nil
}

// expect reads the next element and requires its class and tag; tags the
// receipt path expects are primitive or constructed by their nature, so
// only class and number are checked here.
func (r *berReader) expect(class byte, tag int, what string) (element, error) {
	e, err := r.next()
	if err != nil {
		return element{}, prefixed(what, err)
	}
	if e.class != class || e.tag != tag {
		return element{}, appReceiptError("%s has the wrong ASN.1 type", what)
	}
	return e, nil
}

// readElement reads the element at the start of b and returns it and what
// follows. Work is linear in len(b) per nesting level, and depth is capped.
func readElement(b []byte, depth int) (element, []byte, error) {
	if depth > maxBERDepth {
		return element{}, nil, appReceiptError("ASN.1 nests deeper than %d", maxBERDepth)
	}
	if len(b) < 2 {
		return element{}, nil, errTruncated()
	}
	e := element{class: b[0] & 0xc0, constructed: b[0]&0x20 != 0, tag: int(b[0] & 0x1f)}
	if e.tag == 0x1f {
		// Neither PKCS#7 nor receipts use tag numbers above 30.
		return element{}, nil, appReceiptError("ASN.1 high tag numbers are not supported")
	}
	l, i := int(b[1]), 2
	if l == 0x80 {
		if !e.constructed {
			return element{}, nil, appReceiptError("indefinite length on a primitive element")
		}
		return readIndefinite(b[i:], e, depth)
	}
	if l > 0x80 {
		k := l & 0x7f
		if k > 4 || i+k > len(b) {
			return element{}, nil, errTruncated()
		}
		l = 0
		for _, c := range b[i : i+k] {
			l = l<<8 | int(c)
		}
		i += k
	}
	if l > len(b)-i {
		return element{}, nil, errTruncated()
	}
	e.body = b[i : i+l]
	return e, b[i+l:], nil
}

// readIndefinite finds the end-of-contents octets (00 00) that close an
// indefinite-length element by reading its children.
func readIndefinite(b []byte, e element, depth int) (element, []byte, error) {
	r := b
	for {
		if len(r) >= 2 && r[0] == 0 && r[1] == 0 {
			e.body = b[:len(b)-len(r)]
			return e, r[2:], nil
		}
		if len(r) == 0 {
			return element{}, nil, errTruncated()
		}
		var err error
		if _, r, err = readElement(r, depth+1); err != nil {
			return element{}, nil, err
		}
	}
}

func errTruncated() error { return appReceiptError("ASN.1 element is truncated") }
