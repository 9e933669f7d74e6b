package entitlements

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeJSON(t *testing.T) {
	type inner struct {
		Seconds int64 `json:"seconds"`
	}
	type body struct {
		Key     string  `json:"key"`
		Credits int64   `json:"credits"`
		Tags    []inner `json:"tags"`
		Inner   *inner  `json:"inner"`
	}
	for name, tc := range map[string]struct {
		body string
		code string // "" means it decodes
	}{
		"object":                            {`{"key":"a","credits":3}`, ""},
		"spaces around":                     {" \n{\"key\":\"a\"} \n", ""},
		"empty":                             {``, "invalid_body"},
		"null":                              {`null`, "invalid_body"},
		"spaced null":                       {` null`, "invalid_body"},
		"array":                             {`[]`, "invalid_body"},
		"number":                            {`7`, "invalid_body"},
		"unknown field":                     {`{"key":"a","extra":1}`, "invalid_body"},
		"wrong type":                        {`{"credits":"3"}`, "invalid_body"},
		"trailing data":                     {`{"key":"a"} {}`, "invalid_body"},
		"unfinished":                        {`{"key":`, "invalid_body"},
		"too large":                         {`{"key":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, "body_too_large"},
		"nested, exact":                     {`{"key":"a","inner":{"seconds":2},"tags":[{"seconds":1},{"seconds":1}],"credits":1}`, ""},
		"strings that look like names":      {`{"key":"a","tags":[],"inner":null}`, ""},
		"another case":                      {`{"Key":"a"}`, "invalid_body"},
		"another case, nested":              {`{"key":"a","inner":{"SECONDS":2}}`, "invalid_body"},
		"twice":                             {`{"key":"a","credits":1,"credits":100}`, "invalid_body"},
		"twice, in another case":            {`{"key":"a","credits":1,"Credits":100}`, "invalid_body"},
		"twice, nested":                     {`{"key":"a","tags":[{"seconds":1,"seconds":2}]}`, "invalid_body"},
		"twice in separate objects is fine": {`{"key":"a","inner":{"seconds":1},"tags":[{"seconds":1}]}`, ""},
	} {
		t.Run(name, func(t *testing.T) {
			var b body
			err := DecodeJSON(httptest.NewRequest("POST", "/", strings.NewReader(tc.body)), &b)
			if tc.code == "" {
				require.NoError(t, err)
				require.Equal(t, "a", b.Key)
				return
			}
			var e *Error
			require.True(t, errors.As(err, &e), "want an *Error, got %v", err)
			require.Equal(t, tc.code, e.Code, e.Detail)
		})
	}
}
