package entitlements

import (
	"context"
	"strings"
)

// Service scopes. A token holding any "credits:" scope is a service token.
const (
	ScopeSpend = "credits:spend"
	ScopeAdmin = "credits:admin"
)

// Caller is who an authenticated request comes from.
type Caller struct {
	Subject string   // the user id for a user token; the calling service's name otherwise
	Scopes  []string // shared by the requests that present one remembered token: read it, never write it
}

// NewCaller builds a caller from a token's sub and space-separated scope
// claim. Only a space separates (RFC 6749 §3.3): a tab or a no-break
// space is part of a scope.
func NewCaller(subject, scope string) Caller {
	return Caller{Subject: subject, Scopes: strings.FieldsFunc(scope, func(r rune) bool { return r == ' ' })}
}

// Service reports whether the token is a service token.
func (c Caller) Service() bool {
	for _, s := range c.Scopes {
		if strings.HasPrefix(s, "credits:") {
			return true
		}
	}
	return false
}

// Has reports whether the caller holds scope.
func (c Caller) Has(scope string) bool {
	for _, s := range c.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// UserActor is the ledger's actor for a call a user makes with her own
// token (a service's is ServiceActor).
func UserActor(userID string) string { return "user:" + userID }

// ServiceActor is the ledger's actor for a call a service makes, by the
// sub of its token.
func ServiceActor(sub string) string { return "service:" + sub }

type callerKey struct{}

// WithCaller stores the authenticated caller in ctx.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom is the authenticated caller, if any.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}
