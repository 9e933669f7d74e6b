package receipts

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParse feeds arbitrary strings to the JWS parser and to the whole
// verifier. Nothing may panic, every failure must be a *Error, and whatever
// the parser accepts must re-encode to exactly the input (there is one
// encoding per token). Seeds: testdata/fuzz/FuzzParse (real Apple vectors
// and junk) plus those below. Run it with a short minimize time, since
// minimizing an 18 KiB notification is slow:
//
//	go test -run x -fuzz FuzzParse -fuzztime 60s -fuzzminimizetime 5s ./receipts/
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", ".", "..", "a.b.c", "e30.e30.e30", "eyJhbGciOiJFUzI1NiJ9.e30.AA"} {
		f.Add(s)
	}
	ver := &Verifier{BundleID: "com.loki-project.loki-messenger", Environments: []string{Sandbox}}
	f.Fuzz(func(t *testing.T, s string) {
		for _, verify := range []func(string) error{
			func(s string) error { _, err := ver.VerifyNotification(s); return err },
			func(s string) error { _, err := ver.VerifyTransaction(s); return err },
			func(s string) error { _, err := ver.VerifyRenewalInfo(s); return err },
		} {
			if err := verify(s); err != nil {
				var e *Error
				require.True(t, errors.As(err, &e), "not a *Error: %v", err)
			}
		}
		j, err := parseJWS(s)
		if err != nil {
			requireCode(t, err, CodeMalformed)
			return
		}
		requireParseRoundTrip(t, s, j)
	})
}

func requireParseRoundTrip(t *testing.T, s string, j *jws) {
	enc := base64.RawURLEncoding.EncodeToString
	require.Equal(t, s, j.signingStr+"."+enc(j.signature))
	head, payload, ok := strings.Cut(j.signingStr, ".")
	require.True(t, ok)
	require.Equal(t, payload, enc(j.payload))
	raw, err := base64.RawURLEncoding.DecodeString(head)
	require.NoError(t, err)
	h, err := parseHeader(raw)
	require.NoError(t, err)
	require.Equal(t, h.alg, j.alg)
	require.Len(t, j.x5c, len(h.x5c))
	for i, der := range j.x5c {
		require.Equal(t, h.x5c[i], base64.StdEncoding.EncodeToString(der))
	}
}
