package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenClaims are the claims creditsd reads: sub, exp, iat, nbf, iss,
// aud and the space-separated scope.
type tokenClaims struct {
	Scope string `json:"scope,omitempty"`
	jwt.RegisteredClaims
}

// receivedClaims are a bearer token's tokenClaims, with times that must be
// JSON numbers. RegisteredClaims' own take a quoted "exp": "1700000000" as
// readily as a number; RFC 7519 makes a NumericDate a number, and a token
// that says otherwise did not come from an issuer that follows it. These
// fields shadow the embedded ones when decoding.
type receivedClaims struct {
	tokenClaims
	ExpiresAt numericDate `json:"exp"`
	NotBefore numericDate `json:"nbf"`
	IssuedAt  numericDate `json:"iat"`
}

// UnmarshalJSON reads each claim by its exact name. encoding/json matches
// a field's name in any case, the last match winning, so "SUB", "Scope" or
// "EXP" beside sub, scope and exp was read as that claim: RFC 7519's names
// are case-sensitive, and an issuer that signs a custom claim "Scope" has
// not signed a scope. Of a name written twice, the last counts.
func (c *receivedClaims) UnmarshalJSON(b []byte) error {
	var named map[string]json.RawMessage
	if err := json.Unmarshal(b, &named); err != nil {
		return err
	}
	for _, claim := range []struct {
		name string
		into any
	}{
		{"sub", &c.Subject}, {"scope", &c.Scope}, {"iss", &c.Issuer}, {"aud", &c.Audience}, {"jti", &c.ID},
		{"exp", &c.ExpiresAt}, {"nbf", &c.NotBefore}, {"iat", &c.IssuedAt},
	} {
		if raw, ok := named[claim.name]; ok {
			if err := json.Unmarshal(raw, claim.into); err != nil {
				return fmt.Errorf("claim %s: %w", claim.name, err)
			}
		}
	}
	return nil
}

func (c *receivedClaims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt.date, nil }
func (c *receivedClaims) GetNotBefore() (*jwt.NumericDate, error)      { return c.NotBefore.date, nil }
func (c *receivedClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.IssuedAt.date, nil }

// numericDate is a claim's time that must be a JSON number.
type numericDate struct{ date *jwt.NumericDate }

// The seconds of 0001-01-01 and of 9999-12-31T23:59:59Z, the times a
// NumericDate may name.
const (
	minNumericDate = -62135596800
	maxNumericDate = 253402300799
)

func (d *numericDate) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '-' && (b[0] < '0' || b[0] > '9') {
		if string(b) == "null" {
			d.date = nil
			return nil
		}
		return errors.New("a NumericDate must be a JSON number")
	}
	// Past the year 9999, or before year 1, a time overflows: an exp of
	// 1e30 read as a date long gone, and its token was told it had expired.
	t, ok := exactTime(string(b))
	if !ok {
		return errors.New("a NumericDate must be a time from the year 1 to 9999")
	}
	d.date = &jwt.NumericDate{Time: t}
	return nil
}

// exactTime reads a JSON number of seconds as the time it names, fractions
// too (RFC 7519 allows them), from the decimal text rather than a float:
// golang-jwt's own decoding truncates to its TimePrecision, a second, which
// let an nbf or iat up to a second past the leeway through, and a float64
// is off by up to a quarter of a microsecond today, which let a token
// through a few nanoseconds past its exp. A fraction of a nanosecond
// rounds up, which is exact against a nanosecond clock for every claim:
// now < exp and now ≥ nbf hold for a whole number of nanoseconds exactly
// when they hold for the rounded-up time.
func exactTime(text string) (time.Time, bool) {
	if len(text) > maxNumericDateText { // more digits than any time needs would only cost big.Rat
		return time.Time{}, false
	}
	if i := strings.IndexAny(text, "eE"); i >= 0 {
		// A huge exponent would cost big.Rat a number of that many digits.
		if e, err := strconv.Atoi(text[i+1:]); err != nil || e < -maxExponent || e > maxExponent {
			return time.Time{}, false
		}
	}
	r, ok := new(big.Rat).SetString(text)
	if !ok || r.Cmp(big.NewRat(minNumericDate, 1)) < 0 || r.Cmp(big.NewRat(maxNumericDate+1, 1)) >= 0 { // 9999's last second, fractions too
		return time.Time{}, false
	}
	sec, rem := new(big.Int).DivMod(r.Num(), r.Denom(), new(big.Int)) // Euclidean: rem ≥ 0, so sec is the floor
	nanos := new(big.Int).Mul(rem, big.NewInt(1e9))
	nanos, part := nanos.DivMod(nanos, r.Denom(), new(big.Int))
	if part.Sign() > 0 {
		nanos.Add(nanos, big.NewInt(1))
	}
	return time.Unix(sec.Int64(), nanos.Int64()), true // time.Unix carries a nanosecond count of 1e9
}

// maxNumericDateText bounds a NumericDate's text: a time to the
// nanosecond takes 22 characters; golang-jwt decodes the claims before it
// checks the signature, so anyone may send a 6,000-digit one.
const maxNumericDateText = 64

// maxExponent bounds a NumericDate's decimal exponent: far more than any
// time from the year 1 to 9999 needs, written with any digits.
const maxExponent = 1000

// checkScope applies RFC 6749 §3.3 to a scope claim: tokens of printable
// ASCII but the double quote and the backslash, split by spaces. The claim
// was split on any Unicode space, so a "profile\u00a0credits:admin" that an
// issuer signed as one scope of its own read here as credits:admin.
func checkScope(scope string) error {
	for _, r := range scope {
		if r != ' ' && (r < 0x21 || r > 0x7e || r == '"' || r == '\\') {
			return fmt.Errorf("the token's scope holds %q, which RFC 6749 does not allow in a scope", r)
		}
	}
	return nil
}
