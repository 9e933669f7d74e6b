package sqlite

import (
	"context"
	"crypto/sha256"
	"strings"
)

// storedJWS is a compact JWS as the tables keep it: its header once, in
// jws_headers (see migration 0008), and the rest in the row.
type storedJWS struct {
	header []byte // the header's SHA-256; nil when the JWS is kept whole
	rest   string // "payload.signature", or the whole JWS when header is nil
}

// headerArg is the header's hash as a query argument: NULL when the JWS
// is kept whole.
func (j storedJWS) headerArg() any {
	if j.header == nil {
		return nil
	}
	return j.header
}

// storeJWS keeps jws's header in jws_headers, once for every document its
// signer signs, and returns what the row keeps. Re-inserting a known
// header writes nothing.
func (tx *Tx) storeJWS(ctx context.Context, jws string) (storedJWS, error) {
	header, rest, ok := strings.Cut(jws, ".")
	if !ok || header == "" {
		return storedJWS{rest: jws}, nil // not compact: kept whole (verified input always is)
	}
	sum := sha256.Sum256([]byte(header))
	if _, err := tx.ExecContext(ctx, `INSERT INTO jws_headers (hash, header) VALUES (?, ?) ON CONFLICT (hash) DO NOTHING`,
		sum[:], header); err != nil {
		return storedJWS{}, err
	}
	return storedJWS{header: sum[:], rest: rest}, nil
}
