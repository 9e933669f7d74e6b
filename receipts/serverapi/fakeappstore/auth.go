package fakeappstore

import (
	"errors"
	"strings"
	"time"

	"github.com/creditsd/creditsd/receipts/serverapi"
	"github.com/golang-jwt/jwt/v5"
)

// unauthenticatedCode is the errorCode the fake sends with 401. Apple
// documents none: its 401 body is plain text.
const unauthenticatedCode int64 = 4010000

// maxTokenLifetime is Apple's ceiling on exp - iat.
const maxTokenLifetime = time.Hour

// checkToken verifies the bearer JWT the way Apple documents it and
// returns why it is refused, or "" when it is good.
func (s *Server) checkToken(header string) string {
	raw, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || raw == "" {
		return "missing bearer token"
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != s.opts.KeyID {
			return nil, errors.New("kid is not the key id")
		}
		return s.opts.PublicKey, nil
	}, jwt.WithValidMethods([]string{"ES256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		return err.Error()
	}
	if typ, _ := tok.Header["typ"].(string); typ != "JWT" {
		return "typ must be JWT"
	}
	return s.checkClaims(claims)
}

func (s *Server) checkClaims(c jwt.MapClaims) string {
	for _, want := range []struct{ name, value string }{
		{"iss", s.opts.IssuerID},
		{"aud", serverapi.Audience}, // a string: an array is refused
		{"bid", s.opts.BundleID},
	} {
		if got, _ := c[want.name].(string); got != want.value {
			return want.name + " is not " + want.value
		}
	}
	iat, err := c.GetIssuedAt()
	if err != nil || iat == nil {
		return "iat is required"
	}
	exp, _ := c.GetExpirationTime() // required and checked by the parser
	if exp.Sub(iat.Time) > maxTokenLifetime {
		return "exp is more than 60 minutes after iat"
	}
	return ""
}
