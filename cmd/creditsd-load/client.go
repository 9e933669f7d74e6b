package main

import (
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// mint signs a bearer token the way the app's or a service's issuer would.
func mint(secret, sub, scope string, ttl time.Duration) (string, error) {
	now := time.Now()
	claims := jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	if scope != "" {
		claims["scope"] = scope
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("minting a token: %w", err)
	}
	return s, nil
}
