package entitlements

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A member is known only where its struct has it: checkNames knows every
// name a body's type holds at any depth, so a generation's seconds sent
// beside credits, or credits sent inside the generation, is refused by
// the decoder's own check, not silently dropped.
func TestDecodeJSONRefusesAMemberOutOfPlace(t *testing.T) {
	for _, body := range []string{
		`{"idempotency_key":"k","product":"sora","credits":5,"seconds":10}`,
		`{"idempotency_key":"k","product":"sora","credits":5,"resolution":"1080p"}`,
		`{"idempotency_key":"k","product":"sora","generation":{"seconds":10,"resolution":"480p","credits":1}}`,
		`{"idempotency_key":"k","product":"sora","generation":{"seconds":10,"resolution":"480p","product":"codex"}}`,
	} {
		var b spendBody
		err := DecodeJSON(httptest.NewRequest("POST", "/", strings.NewReader(body)), &b)
		var e *Error
		require.True(t, errors.As(err, &e), "%s: want an *Error, got %v", body, err)
		require.Equal(t, "invalid_body", e.Code, body)
		require.Contains(t, e.Detail, "unknown field", body)
	}
}

// An empty body is told as empty, in the client's words, not as Go's EOF.
func TestDecodeJSONEmptyBodyDetail(t *testing.T) {
	for _, body := range []string{"", " \n\t"} {
		var b spendBody
		err := DecodeJSON(httptest.NewRequest("POST", "/", strings.NewReader(body)), &b)
		var e *Error
		require.True(t, errors.As(err, &e), "want an *Error, got %v", err)
		require.Equal(t, "invalid_body", e.Code)
		require.Equal(t, "the body is empty; a JSON object is required", e.Detail)
	}
}
