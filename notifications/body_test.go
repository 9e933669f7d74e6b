package notifications

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
)

func TestReadSignedPayload(t *testing.T) {
	for _, c := range []struct {
		name, body, signed, code string
	}{
		{"Apple's compact body", `{"signedPayload":"eyJh.eyJi.c2ln"}`, "eyJh.eyJi.c2ln", ""},
		{"with a newline after it", "{\"signedPayload\":\"a.b.c\"}\n", "a.b.c", ""},
		{"spaces", `{ "signedPayload" : "a.b.c" }`, "a.b.c", ""},
		{"another field too", `{"signedPayload":"a.b.c","other":1}`, "a.b.c", ""},
		{"an escape", `{"signedPayload":"a.b\u002ec"}`, "a.b.c", ""},
		{"empty", `{"signedPayload":""}`, "", "invalid_body"},
		{"missing", `{}`, "", "invalid_body"},
		{"no body", ``, "", "invalid_body"},
		{"not JSON", `signedPayload=a.b.c`, "", "invalid_body"},
		{"not a string", `{"signedPayload":1}`, "", "invalid_body"},
		{"trailing data", `{"signedPayload":"a.b.c"} {}`, "", "invalid_body"},
		{"the quote and brace only", `{"signedPayload":"}`, "", "invalid_body"},
		// Names are exact, and one is given once, as in every other body.
		{"another case", `{"SignedPayload":"a.b.c"}`, "", "invalid_body"},
		{"named twice", `{"signedPayload":"x","signedPayload":"a.b.c"}`, "", "invalid_body"},
		{"named twice, the first good", `{"signedPayload":"a.b.c","signedPayload":"x"}`, "", "invalid_body"},
		{"another case beside it", `{"SIGNEDPAYLOAD":"x","signedPayload":"a.b.c"}`, "a.b.c", ""},
		{"null", `{"signedPayload":null}`, "", "invalid_body"},
		{"not an object", `["a.b.c"]`, "", "invalid_body"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, size := range []int64{-1, int64(len(c.body))} {
				signed, err := readSignedPayload(strings.NewReader(c.body), size)
				if c.code == "" {
					require.NoError(t, err)
					require.Equal(t, c.signed, signed)
					continue
				}
				var e *entitlements.Error
				require.True(t, errors.As(err, &e), "%v", err)
				require.Equal(t, c.code, e.Code)
			}
		})
	}
}

// The declared size only sizes the buffer, and never past MaxBodyBytes:
// a caller that passes a client's Content-Length unchecked cannot make it
// allocate what the client declared, nor panic at a length no slice holds.
func TestReadSignedPayloadCapsItsBuffer(t *testing.T) {
	body := `{"signedPayload":"a.b.c"}`
	for _, size := range []int64{1 << 50, 16 * MaxBodyBytes} {
		var before, after runtime.MemStats
		var signed string
		var err error
		runtime.ReadMemStats(&before)
		require.NotPanics(t, func() { signed, err = readSignedPayload(strings.NewReader(body), size) }, "declared %d", size)
		runtime.ReadMemStats(&after)
		require.NoError(t, err)
		require.Equal(t, "a.b.c", signed)
		// The bound leaves room for what the runtime allocates meanwhile;
		// the declared 16 × MaxBodyBytes would pass it four times over.
		require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4*MaxBodyBytes), "declared %d", size)
	}
}

// The compact reading must never disagree with encoding/json: whenever it
// takes a body, json reads the same string from it.
func FuzzSignedPayload(f *testing.F) {
	for _, s := range []string{`{"signedPayload":"a.b.c"}`, `{"signedPayload":""}`, ` {"signedPayload":"x"} `,
		`{"signedPayload":"a\"}`, `{"signedPayload":"}`, `{"signedPayload":"a"}"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		signed, ok := compactSignedPayload(b)
		if !ok {
			return
		}
		full, err := decodeSignedPayload(b)
		if err != nil {
			t.Fatalf("compact read %q from %q, which the full decoding refuses: %v", signed, b, err)
		}
		if full != signed {
			t.Fatalf("compact read %q, the full decoding %q, from %q", signed, full, b)
		}
	})
}

func BenchmarkReadSignedPayload(b *testing.B) {
	body := `{"signedPayload":"` + strings.Repeat("eyJhbGciOiJFUzI1NiJ9.", 500) + `"}`
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := readSignedPayload(strings.NewReader(body), int64(len(body))); err != nil {
			b.Fatal(err)
		}
	}
}
