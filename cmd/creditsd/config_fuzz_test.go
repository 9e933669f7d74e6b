package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/creditsd/creditsd/entitlements"

	"github.com/stretchr/testify/require"
)

// FuzzConfig parses arbitrary YAML as the configuration file. Nothing may
// panic, and every error is a *ConfigError or an errors.Join of them.
func FuzzConfig(f *testing.F) {
	for _, s := range []string{"listen: 127.0.0.1:1\n", "apple:\n  app_apple_id: 1.5\n", "listne: x\nlog: {levl: debug}\n",
		"a: &a {credits: 1}\nproducts: [*a]\n", "products:\n- <<: {credits: 1.5}\n  product_id: x\n", "---\n---\n", "",
		"allowance:\n  tiers: {free: 3.0}\n  changes: [{from: x, tiers: {pro: 1e3}}]\n", "auth: {hs256_secret: '${S}'}\n",
		"pricing:\n  sora: &r {}\n  codex: {<<: [*r, *r]}\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := parseConfig(data, func(string) string { return "v" })
		if err != nil {
			requireConfigErrors(t, err)
		}
	})
}

func requireConfigErrors(t *testing.T, err error) {
	t.Helper()
	var ce *ConfigError
	if errors.As(err, &ce) && err == error(ce) {
		return
	}
	joined, ok := err.(interface{ Unwrap() []error })
	require.True(t, ok, "%T: %v", err, err)
	for _, e := range joined.Unwrap() {
		requireConfigErrors(t, e)
	}
}

// FuzzConfigValueNotEchoed: a string given for a whole-number key (a
// misplaced secret, say) is not repeated in the error, as decodeError
// promises.
func FuzzConfigValueNotEchoed(f *testing.F) {
	for _, s := range []string{"hunter2", "ab`cd", "x\ny", "longer-secret-value", "`"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		secret := "Zq" + s
		q, _ := json.Marshal(secret)
		_, err := parseConfig([]byte("apple:\n  app_apple_id: "+string(q)+"\n"), nil)
		require.Error(t, err)
		require.NotContains(t, err.Error(), secret[:min(len(secret), 4)], "value %q echoed", secret)
	})
}

// FuzzAuthenticate signs arbitrary header and claims JSON with the HS256
// secret (or sends raw as the token) and holds Authenticate to RFC 7519 and
// the contract: nothing panics; every refusal is KindUnauthenticated with
// one of the three codes and never echoes the token; a token accepted has
// no crit, an exp that is a JSON number after now, nbf and iat (if any)
// JSON numbers no later than now plus the leeway, and a valid sub.
func FuzzAuthenticate(f *testing.F) {
	f.Add([]byte(`{"alg":"HS256","typ":"JWT"}`), []byte(`{"sub":"alice","exp":1767323105,"iat":1767323045}`), "", true)
	f.Add([]byte(`{"alg":"HS256"}`), []byte(`{"sub":"svc","scope":"credits:spend","exp":1767323105.5,"nbf":1767323070}`), "", true)
	f.Add([]byte(`{"alg":"HS256","crit":["x"]}`), []byte(`{"sub":"alice","exp":1767323105}`), "", true)
	f.Add([]byte(`{"alg":"HS256"}`), []byte(`{"sub":"alice","exp":"1767323105"}`), "", true)
	f.Add([]byte(`{"alg":"HS256"}`), []byte(`{"sub":"alice","exp":1767323105,"EXP":1}`), "", true)
	f.Add([]byte(`{"alg":"HS256"}`), []byte(`{"sub":"alice","exp":1,"EXP":1767323105}`), "", true)
	f.Add([]byte(`{"alg":"HS256"}`), []byte(`{"sub":"svc","scope":"profile\u00a0credits:admin","exp":1767323105}`), "", true)
	f.Add([]byte(`{"alg":"none"}`), []byte(`{"sub":"alice","exp":1e30}`), "", true)
	f.Add([]byte(nil), []byte(nil), "a.b.c", false)
	f.Add([]byte(`{"alg":"HS256"}`), []byte(`{"sub":"alice","exp":1767323105,"nbf":1767323075.9}`), "", true) // 30.9 s ahead
	a, err := NewAuthenticator(AuthConfig{HS256Secret: fuzzAuthSecret, Leeway: "30s"})
	require.NoError(f, err)
	now := time.Unix(1767323045, 0)
	a.now = func() time.Time { return now }
	f.Fuzz(func(t *testing.T, header, claims []byte, raw string, signed bool) {
		token := raw
		if signed {
			enc := base64.RawURLEncoding.EncodeToString
			input := enc(header) + "." + enc(claims)
			mac := hmac.New(sha256.New, []byte(fuzzAuthSecret))
			mac.Write([]byte(input))
			token = input + "." + enc(mac.Sum(nil))
		}
		r := httptest.NewRequest(http.MethodGet, "/v1/me/entitlement", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		if r.Header.Get("Authorization") != "Bearer "+token {
			t.Skip()
		}
		caller, err := a.Authenticate(r)
		if err != nil {
			var e *entitlements.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, entitlements.KindUnauthenticated, e.Kind)
			require.Contains(t, []string{"missing_token", "invalid_token", "token_expired"}, e.Code)
			if tok := strings.TrimSpace(token); len(tok) > 8 {
				require.NotContains(t, e.Error(), tok)
			}
			return
		}
		require.True(t, signed, "an unsigned token %q was accepted", token)
		var h map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(header, &h))
		_, crit := h["crit"]
		require.False(t, crit, "crit accepted: %s", header)
		var c map[string]json.RawMessage // claims' names are case-sensitive: "EXP" is not exp
		require.NoError(t, json.Unmarshal(claims, &c), "%s", claims)
		exp, ok := jsonSeconds(c["exp"])
		require.True(t, ok, "exp %s accepted", c["exp"])
		require.Greater(t, exp, float64(now.Unix()), "expired token accepted: %s", claims)
		for _, d := range []json.RawMessage{c["nbf"], c["iat"]} {
			if d == nil || string(d) == "null" {
				continue
			}
			v, ok := jsonSeconds(d)
			require.True(t, ok, "%s accepted in %s", d, claims)
			require.LessOrEqual(t, v, float64(now.Add(30*time.Second).Unix()), "future token accepted: %s", claims)
		}
		var sub, scope string
		require.NoError(t, json.Unmarshal(c["sub"], &sub))
		if c["scope"] != nil {
			require.NoError(t, json.Unmarshal(c["scope"], &scope))
		}
		require.Equal(t, sub, caller.Subject)
		require.NoError(t, checkSubject(caller))
		require.NoError(t, checkScope(scope))
	})
}

const fuzzAuthSecret = "fuzz-secret-of-at-least-thirty-two-bytes"

// jsonSeconds reads a JSON number.
func jsonSeconds(b json.RawMessage) (float64, bool) {
	var n json.Number
	if json.Unmarshal(b, &n) != nil || len(b) == 0 || b[0] == '"' {
		return 0, false
	}
	v, err := n.Float64()
	return v, err == nil
}
