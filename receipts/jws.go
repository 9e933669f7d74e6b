package receipts

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// maxJWSBytes bounds the input before any decoding. Apple's largest
// payloads (a notification carrying two nested JWS) are ~20 KiB; anything
// far larger is an attack on our memory, not a receipt.
const maxJWSBytes = 256 << 10

// rawURL is strict so that every accepted JWS has exactly one encoding:
// nonzero padding bits are refused, which keeps FuzzParse's round trip
// honest and removes a way to make distinct strings for one token.
var (
	rawURL = base64.RawURLEncoding.Strict()
	stdB64 = base64.StdEncoding.Strict()
)

// jws is a compact JWS split into its parts, nothing verified yet.
type jws struct {
	alg        string
	x5c        [][]byte // DER, in header order
	signingStr string   // "header.payload", what the signature covers
	payload    []byte
	signature  []byte
}

// header is the protected header, read by exact key: encoding/json would
// also match "ALG" or "X5C", and a header is no place for leniency.
type header struct {
	alg string
	x5c []string
}

// parseJWS splits and decodes a compact JWS. It checks shape only; the
// algorithm, chain and signature are judged by the caller.
func parseJWS(s string) (*jws, error) {
	if len(s) > maxJWSBytes {
		return nil, newError(CodeMalformed, nil, "jws longer than %d bytes", maxJWSBytes)
	}
	parts := strings.SplitN(s, ".", 4)
	if len(parts) != 3 {
		return nil, newError(CodeMalformed, nil, "jws must have 3 dot-separated parts")
	}
	raw := make([][]byte, 3)
	for i, p := range parts {
		b, err := decodeSegment(p)
		if err != nil {
			return nil, newError(CodeMalformed, err, "jws part %d is not base64url", i+1)
		}
		raw[i] = b
	}
	h, err := parseHeader(raw[0])
	if err != nil {
		return nil, err
	}
	x5c, err := decodeX5C(h.x5c)
	if err != nil {
		return nil, err
	}
	return &jws{
		alg:        h.alg,
		x5c:        x5c,
		signingStr: parts[0] + "." + parts[1],
		payload:    raw[1],
		signature:  raw[2],
	}, nil
}

// decodeSegment decodes unpadded base64url. The decoder refuses every byte
// outside the alphabet except '\r' and '\n', which it silently skips, so
// those two are looked for first (IndexByte is vectorised: a byte-by-byte
// alphabet check cost ~3 ns a byte over a notification's ~15 KiB).
func decodeSegment(p string) ([]byte, error) {
	if p == "" {
		return nil, errEmpty
	}
	if strings.IndexByte(p, '\n') >= 0 || strings.IndexByte(p, '\r') >= 0 {
		return nil, errAlphabet
	}
	return rawURL.DecodeString(p)
}

func parseHeader(b []byte) (*header, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil || fields == nil {
		return nil, newError(CodeMalformed, err, "jws header is not a JSON object")
	}
	// We understand no extensions, and RFC 7515 says a JWS whose crit
	// names one we do not understand must be refused.
	if _, ok := fields["crit"]; ok {
		return nil, newError(CodeMalformed, nil, "jws header has crit, which is not supported")
	}
	var h header
	if err := requiredField(fields, "alg", &h.alg); err != nil {
		return nil, err
	}
	if err := requiredField(fields, "x5c", &h.x5c); err != nil {
		return nil, err
	}
	return &h, nil
}

func requiredField(fields map[string]json.RawMessage, name string, v any) error {
	raw, ok := fields[name]
	if !ok || string(raw) == "null" {
		return newError(CodeMalformed, nil, "jws header has no %s", name)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return newError(CodeMalformed, err, "jws header %s has the wrong type", name)
	}
	return nil
}

// decodeX5C decodes the chain's certificates. RFC 7515 says x5c entries are
// standard (padded) base64 of DER, not base64url.
func decodeX5C(certs []string) ([][]byte, error) {
	out := make([][]byte, len(certs))
	for i, c := range certs {
		if strings.ContainsAny(c, "\r\n") {
			return nil, newError(CodeMalformed, errAlphabet, "x5c[%d] is not base64", i)
		}
		der, err := stdB64.DecodeString(c)
		if err != nil || len(der) == 0 {
			return nil, newError(CodeMalformed, err, "x5c[%d] is not base64", i)
		}
		out[i] = der
	}
	return out, nil
}

var (
	errEmpty    = errors.New("empty segment")
	errAlphabet = errors.New("character outside the alphabet")
)
