package notifications

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/creditsd/creditsd/entitlements"
)

// MaxBodyBytes caps the webhook body. Real notifications are under 20 KB.
const MaxBodyBytes = 64 << 10

// ServeHTTP is Apple's webhook, POST /v1/appstore/notifications. It answers
// 2xx only once the notification is durable, 4xx for anything that does not
// verify, and 5xx only when recording failed, so that Apple retries.
func (p *Processor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > MaxBodyBytes {
		entitlements.WriteError(w, r, p.Log, entitlements.Errorf(entitlements.KindTooLarge, "body_too_large", "the body exceeds %d bytes", MaxBodyBytes))
		return
	}
	signed, err := readSignedPayload(http.MaxBytesReader(w, r.Body, MaxBodyBytes), r.ContentLength)
	if err != nil {
		entitlements.WriteError(w, r, p.Log, err)
		return
	}
	res, err := p.Process(r.Context(), signed, SourceWebhook)
	if err != nil {
		entitlements.WriteError(w, r, p.Log, err)
		return
	}
	entitlements.WriteJSON(w, r, p.Log, http.StatusOK, res)
}

// readSignedPayload reads Apple's body, {"signedPayload": "<JWS>"}, of
// size bytes if the request said (-1 if not). size is the client's word:
// it only sizes the buffer, and never past MaxBodyBytes, whoever calls;
// the cap itself is r's to enforce (http.MaxBytesReader).
func readSignedPayload(r io.Reader, size int64) (string, error) {
	buf := bytes.NewBuffer(make([]byte, 0, min(max(size, 0), MaxBodyBytes)+bytes.MinRead))
	_, err := buf.ReadFrom(r)
	b := buf.Bytes()
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return "", entitlements.Errorf(entitlements.KindTooLarge, "body_too_large", "the body exceeds %d bytes", MaxBodyBytes)
	}
	if err != nil {
		return "", entitlements.Errorf(entitlements.KindInvalid, "invalid_body", "the body could not be read")
	}
	signed, ok := compactSignedPayload(b)
	if !ok {
		if signed, err = decodeSignedPayload(b); err != nil {
			return "", entitlements.Errorf(entitlements.KindInvalid, "invalid_body", "the body must be {\"signedPayload\": \"<JWS>\"}: %v", err)
		}
	}
	if signed == "" {
		return "", entitlements.Errorf(entitlements.KindInvalid, "invalid_body", "signedPayload is required")
	}
	return signed, nil
}

// decodeSignedPayload reads a body the compact path did not: a JSON object
// whose member named exactly signedPayload, once, is a string (or null);
// other members are passed over, since Apple may add some. encoding/json
// into a struct took "SignedPayload" for it and let the last of two win,
// where every other body of the API is exact.
func decodeSignedPayload(b []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", errors.New("not a JSON object")
	}
	var signed *string
	for dec.More() {
		name, err := dec.Token()
		if err != nil {
			return "", err
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return "", err
		}
		if name != "signedPayload" {
			continue
		}
		if signed != nil {
			return "", errors.New("signedPayload is named twice")
		}
		signed = new(string)
		if err := json.Unmarshal(value, signed); err != nil {
			return "", errors.New("signedPayload is not a string")
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return "", err
	}
	if len(bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n")) > 0 {
		return "", errors.New("trailing data after the JSON object")
	}
	if signed == nil {
		return "", nil
	}
	return *signed, nil
}

// compactSignedPayload reads the body Apple sends, {"signedPayload":"…"}
// with nothing else, without encoding/json, which scanned its ~10 KiB four
// times and was 8 % of the webhook's CPU. A JWS needs no JSON escapes, so
// for such a body the string between the quotes is exactly what
// encoding/json would decode; any other body (spaces, more fields,
// escapes) returns ok false and is decoded in full. FuzzSignedPayload
// holds the two to the same answer.
func compactSignedPayload(b []byte) (signed string, ok bool) {
	const prefix, suffix = `{"signedPayload":"`, `"}`
	b = bytes.Trim(b, " \t\r\n") // JSON's whitespace, not Unicode's
	if !bytes.HasPrefix(b, []byte(prefix)) || !bytes.HasSuffix(b, []byte(suffix)) || len(b) < len(prefix)+len(suffix) {
		return "", false
	}
	v := b[len(prefix) : len(b)-len(suffix)]
	for _, c := range v {
		if !jwsByte[c] {
			return "", false
		}
	}
	return string(v), true
}

// jwsByte holds the bytes of a compact JWS: base64url and the dots; one
// lookup a byte instead of up to seven comparisons, over ~10 KiB a body.
var jwsByte = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") {
		t[c] = true
	}
	return t
}()
