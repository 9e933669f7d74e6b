package sqlite

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// storedJWS is a compact JWS as the tables keep it: its header once, in
// jws_headers (see migration 0008), and the rest in the row. Splitting is
// pure (hashing, encoding, searching), so a caller can do it before it
// queues for the one writer; keep then writes only the shared parts.
type storedJWS struct {
	header shared // the first segment; none when the JWS is kept whole
	rest   string // "payload.signature", or the whole JWS when header is none

	// A notification's: a run of its payload kept in jws_headers (see
	// migration 0009) and where in rest it goes back; none when rest is
	// all of it.
	inner   shared
	innerAt int
}

// shared is a run of signed text that many rows hold, kept once in
// jws_headers by its SHA-256.
type shared struct {
	hash []byte // nil: none
	text string
}

func share(text string) shared {
	sum := sha256.Sum256([]byte(text))
	return shared{hash: sum[:], text: text}
}

// arg is the hash as a query argument: NULL for none.
func (s shared) arg() any {
	if s.hash == nil {
		return nil
	}
	return s.hash
}

// headerArg is the header's hash as a query argument: NULL when the JWS
// is kept whole.
func (j storedJWS) headerArg() any { return j.header.arg() }

// innerArgs are the run cut out of rest and its offset as query
// arguments: NULLs when nothing was cut.
func (j storedJWS) innerArgs() (hash, at any) {
	if j.inner.hash == nil {
		return nil, nil
	}
	return j.inner.hash, j.innerAt
}

// splitJWS splits jws for storage: its header apart, the rest in the row.
func splitJWS(jws string) storedJWS {
	header, rest, ok := strings.Cut(jws, ".")
	if !ok || header == "" {
		return storedJWS{rest: jws} // not compact: kept whole (verified input always is)
	}
	return storedJWS{header: share(header), rest: rest}
}

// minInnerRun is the shortest run worth keeping apart: a certificate
// chain is ~5.9 KiB here; a short run would cost more than it saves.
const minInnerRun = 512

// cutInner takes out of a notification's rest the base64url run that
// encodes inner's header (the certificate chain of the transaction or
// renewal info it carries) and notes where it was. The notification's
// payload is base64url of JSON that holds inner verbatim, so the run is
// there at one of three alignments; each is tried in turn. What is cut is
// a substring of rest found by comparison, never assumed, so the view puts
// back exactly what was there.
func (j storedJWS) cutInner(inner string) storedJWS {
	header, _, ok := strings.Cut(inner, ".")
	if j.header.hash == nil || !ok || len(header) < minInnerRun || !isCompactText(j.rest) {
		return j // kept whole, or nothing to cut (see isCompactText)
	}
	for skip := range 3 {
		if run, at, ok := findRun(j.rest, header[skip:]); ok {
			j.rest, j.inner, j.innerAt = j.rest[:at]+j.rest[at+len(run):], share(run), at
			return j
		}
	}
	return j
}

// probeBytes is how much of a run is encoded to look for it: 64 base64
// characters, the longest needle strings.Index finds with vector
// instructions. Only where the probe matches is the whole run encoded and
// compared; encoding all three alignments whole was a third of a
// notification's split.
const probeBytes = 48

// findRun finds in rest the first occurrence of the base64url encoding of
// text's whole 3-byte groups.
func findRun(rest, text string) (run string, at int, ok bool) {
	b := []byte(text[:len(text)/3*3])
	probe := base64.RawURLEncoding.EncodeToString(b[:min(probeBytes, len(b))])
	for from := 0; ; {
		i := strings.Index(rest[from:], probe)
		if i < 0 {
			return "", 0, false
		}
		if run == "" {
			run = base64.RawURLEncoding.EncodeToString(b)
		}
		if at = from + i; strings.HasPrefix(rest[at:], run) {
			return run, at, true
		}
		from = at + 1
	}
}

// compactText marks the bytes a compact JWS may hold: base64url and dots.
var compactText = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") {
		t[c] = true
	}
	return t
}()

// isCompactText reports whether s holds only what a compact JWS may:
// base64url and dots. Only such a rest is cut, because the view puts the
// run back with substr, which counts characters (not bytes) and stops at a
// NUL; verified input is always such.
func isCompactText(s string) bool {
	for i := 0; i < len(s); i++ {
		if !compactText[s[i]] {
			return false
		}
	}
	return true
}

// keep writes j's shared runs to jws_headers, each once for every row
// that names it. Re-inserting a known one writes nothing.
func (tx *Tx) keep(ctx context.Context, j storedJWS) error {
	for _, s := range []shared{j.header, j.inner} {
		if s.hash == nil {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO jws_headers (hash, header) VALUES (?, ?) ON CONFLICT (hash) DO NOTHING`,
			s.hash, s.text); err != nil {
			return err
		}
	}
	return nil
}

// storeJWS splits jws and keeps its header: what the row keeps.
func (tx *Tx) storeJWS(ctx context.Context, jws string) (storedJWS, error) {
	j := splitJWS(jws)
	return j, tx.keep(ctx, j)
}
