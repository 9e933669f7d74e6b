package receipts

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/stretchr/testify/require"
)

func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// compact builds a JWS from a raw header JSON, keeping a real payload and
// signature so that only the header is at fault.
func compact(header string, rest string) string {
	parts := strings.SplitN(rest, ".", 3)
	return b64url(header) + "." + parts[1] + "." + parts[2]
}

func TestParseJWS(t *testing.T) {
	ca := newCA(t, devca.Options{})
	good := sign(t, ca, txPayload(time.Now()))
	parts := strings.Split(good, ".")
	x5c := `["` + base64.StdEncoding.EncodeToString(ca.Leaf.Raw) + `"]`

	_, err := parseJWS(good)
	require.NoError(t, err)

	for name, in := range map[string]string{
		"empty":                     "",
		"two parts":                 parts[0] + "." + parts[1],
		"four parts":                good + ".x",
		"empty signature":           parts[0] + "." + parts[1] + ".",
		"empty payload":             parts[0] + ".." + parts[2],
		"padding":                   parts[0] + "." + parts[1] + "." + parts[2] + "==",
		"std base64 plus":           parts[0] + "." + parts[1] + "+." + parts[2],
		"std base64 slash":          parts[0] + "." + "/" + parts[1] + "." + parts[2],
		"newline inside":            parts[0] + "." + parts[1][:10] + "\n" + parts[1][10:] + "." + parts[2],
		"carriage return inside":    parts[0] + "\r." + parts[1] + "." + parts[2],
		"space":                     " " + good,
		"nonzero padding bits":      parts[0] + "." + parts[1] + "." + noncanonical(parts[2]),
		"too long":                  good + strings.Repeat("A", maxJWSBytes),
		"header not json":           compact(`{"alg":`, good),
		"header array":              compact(`["ES256"]`, good),
		"header null":               compact(`null`, good),
		"header trailing data":      compact(`{"alg":"ES256","x5c":[]}{}`, good),
		"no alg":                    compact(`{"x5c":`+x5c+`}`, good),
		"alg null":                  compact(`{"alg":null,"x5c":`+x5c+`}`, good),
		"alg number":                compact(`{"alg":256,"x5c":`+x5c+`}`, good),
		"alg in other case":         compact(`{"ALG":"ES256","x5c":`+x5c+`}`, good),
		"no x5c":                    compact(`{"alg":"ES256"}`, good),
		"x5c string":                compact(`{"alg":"ES256","x5c":"abc"}`, good),
		"x5c entry not base64":      compact(`{"alg":"ES256","x5c":["***"]}`, good),
		"x5c entry empty":           compact(`{"alg":"ES256","x5c":[""]}`, good),
		"x5c entry base64url":       compact(`{"alg":"ES256","x5c":["_-_-"]}`, good),
		"x5c entry with newline":    compact(`{"alg":"ES256","x5c":["QUJD\nREVG"]}`, good),
		"x5c entry without padding": compact(`{"alg":"ES256","x5c":["QUI"]}`, good),
		"crit":                      compact(`{"alg":"ES256","x5c":`+x5c+`,"crit":["b64"]}`, good),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseJWS(in)
			requireCode(t, err, CodeMalformed)
		})
	}
}

// noncanonical changes the unused low bits of a base64url segment's last
// character: a lenient decoder returns the same bytes, a strict one refuses.
func noncanonical(seg string) string {
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[last^1])
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// TestParseJWSNoncanonicalIsSameBytes shows why strictness matters: the
// lenient decoder would have accepted the altered signature as identical.
func TestParseJWSNoncanonicalIsSameBytes(t *testing.T) {
	ca := newCA(t, devca.Options{})
	sig := strings.Split(sign(t, ca, txPayload(time.Now())), ".")[2]
	a, err := base64.RawURLEncoding.DecodeString(sig)
	require.NoError(t, err)
	b, err := base64.RawURLEncoding.DecodeString(noncanonical(sig))
	require.NoError(t, err)
	require.Equal(t, a, b)
}
