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
		Key     string       `json:"key"`
		Credits int64        `json:"credits"`
		Tags    []inner      `json:"tags"`
		Inner   *inner       `json:"inner"`
		Expires *requestTime `json:"expires_at"`
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
		"wrong type":                        {`{"key":3}`, "invalid_body"},
		"wrong type, nested":                {`{"key":"a","inner":{"seconds":"2"}}`, "invalid_body"},
		"credits as a string":               {`{"key":"a","credits":"3"}`, "invalid_credits"},
		"credits with a decimal point":      {`{"key":"a","credits":1.5}`, "invalid_credits"},
		"credits with an exponent":          {`{"key":"a","credits":1e1}`, "invalid_credits"},
		"expires_at a date alone":           {`{"key":"a","expires_at":"2030-01-01"}`, "invalid_expires_at"},
		"expires_at no such day":            {`{"key":"a","expires_at":"2030-02-30T00:00:00Z"}`, "invalid_expires_at"},
		"expires_at a number":               {`{"key":"a","expires_at":5}`, "invalid_expires_at"},
		"expires_at an object":              {`{"key":"a","expires_at":{}}`, "invalid_expires_at"},
		"expires_at null":                   {`{"key":"a","expires_at":null}`, ""},
		"expires_at in RFC 3339":            {`{"key":"a","expires_at":"2030-01-01T00:00:00+02:00"}`, ""},
		"expires_at with a lower-case t, z": {`{"key":"a","expires_at":"2030-01-01t00:00:00z"}`, ""},
		"expires_at offset +24:00":          {`{"key":"a","expires_at":"2030-01-01T00:00:00+24:00"}`, "invalid_expires_at"},
		"expires_at offset -24:00":          {`{"key":"a","expires_at":"2030-01-01T00:00:00-24:00"}`, "invalid_expires_at"},
		"expires_at offset +23:59":          {`{"key":"a","expires_at":"2030-01-01T00:00:00+23:59"}`, ""},
		"trailing data":                     {`{"key":"a"} {}`, "invalid_body"},
		"a stray bracket after":             {`{"key":"a"}]`, "invalid_body"},
		"a stray brace after":               {`{"key":"a"} }`, "invalid_body"},
		"a stray brace, then more":          {`{"key":"a"}}garbage`, "invalid_body"},
		"white space after":                 {"{\"key\":\"a\"} \r\n\t ", ""},
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
			for _, goism := range []string{"Go struct", "int64", "UnmarshalJSON", "2006-01-02"} {
				require.NotContains(t, e.Detail, goism, "the detail speaks JSON, not Go")
			}
		})
	}
}
