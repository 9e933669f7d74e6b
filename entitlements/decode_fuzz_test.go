package entitlements

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDecodeJSON feeds arbitrary bodies to decodeJSON for every request
// body the API reads. Nothing may panic; every refusal is an *Error of
// kind Invalid or TooLarge with a code; what is accepted is one JSON object
// with nothing after it, and its decoded value encodes to a body that
// decodes again to the same value.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"signed_transaction":"a.b.c"}`, `{"app_receipt":"AAAA","signed_transaction":""}`,
		`{"idempotency_key":"k","credits":1,"expires_at":"2030-01-01T00:00:00+02:00","reason":"r"}`,
		`{"idempotency_key":"k","product":"sora","generation":{"seconds":7.5,"resolution":"720p"}}`,
		`{"idempotency_key":"k","product":"sora","credits":null,"generation":null}`,
		`{"tier":"pro","expires_at":null,"reason":"x"}`, `{"Tier":"pro"}`, `{"tier":"a","tier":"b"}`,
		`{"cr\u0065dits":1}`, "{\"reason\":\"\xff\"}", ` {"tier":"x"} `, `{"tier":"x"}]`, `null`, ``,
		`{"idempotency_key":"k","product":"sora","generation":{"seconds":1e400,"resolution":"720p"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		check[transactionRequest](t, body, MaxTransactionBodyBytes)
		check[grantBody](t, body, MaxBodyBytes)
		check[tierBody](t, body, MaxBodyBytes)
		check[spendBody](t, body, MaxBodyBytes)
	})
}

func check[T any](t *testing.T, body []byte, limit int64) {
	t.Helper()
	var v T
	err := decodeJSON(httptest.NewRequest("POST", "/", bytes.NewReader(body)), &v, limit)
	if err != nil {
		var e *Error
		require.True(t, errors.As(err, &e), "%T from %q: %v is not an *Error", v, body, err)
		require.Contains(t, []Kind{KindInvalid, KindTooLarge}, e.Kind, "%T from %q: %v", v, body, err)
		require.NotEmpty(t, e.Code)
		return
	}
	require.True(t, json.Valid(body), "%T accepted %q", v, body)
	out, err := json.Marshal(v)
	require.NoError(t, err, "%T from %q", v, body)
	var again T
	require.NoError(t, decodeJSON(httptest.NewRequest("POST", "/", bytes.NewReader(out)), &again, limit),
		"%T: %q decoded, but not its own encoding %s", v, body, out)
	out2, err := json.Marshal(again)
	require.NoError(t, err)
	require.Equal(t, string(out), string(out2), "%T from %q", v, body)
}
