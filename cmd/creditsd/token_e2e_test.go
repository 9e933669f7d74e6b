package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// `creditsd token` mints what the server accepts: with the local
// profile's secret by default, with the configured one under
// CREDITSD_CONFIG or --config.
func TestToken(t *testing.T) {
	l := newLocalWorld(t)
	require.Equal(t, http.StatusOK, l.do("GET", "/v1/me/entitlement", l.bearer("alice", ""), nil).status)
	service := l.bearer("sora-backend", "credits:spend")
	require.Equal(t, http.StatusOK, l.do("GET", "/v1/users/alice/entitlement", service, nil).status)
	require.Equal(t, http.StatusForbidden, l.do("GET", "/v1/users/alice/entitlement", l.bearer("alice", ""), nil).status,
		"a user token is no service token")

	w := newWorld(t)
	out, errOut, code := cli(t, t.TempDir(), []string{"CREDITSD_CONFIG=" + w.config}, "token", "--user", "alice", "--ttl", "5m")
	require.Zero(t, code, errOut)
	require.Equal(t, http.StatusOK, w.do("GET", "/v1/me/entitlement", strings.TrimSpace(out), nil).status)
	a := w.do("GET", "/v1/me/entitlement", l.bearer("alice", ""), nil)
	require.Equal(t, http.StatusUnauthorized, a.status, "the local profile's secret is not this server's")

	out, _, code = cli(t, t.TempDir(), nil, "token", "--config", w.config, "--user", "bob")
	require.Zero(t, code)
	require.Equal(t, http.StatusOK, w.do("GET", "/v1/me/entitlement", strings.TrimSpace(out), nil).status)
}

func TestTokenUsage(t *testing.T) {
	for name, args := range map[string][]string{
		"no user":     {"token"},
		"an argument": {"token", "--user", "alice", "extra"},
		"bad ttl":     {"token", "--user", "alice", "--ttl", "soon"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, code := cli(t, t.TempDir(), nil, args...)
			require.Equal(t, 2, code)
		})
	}
	_, errOut, code := cli(t, t.TempDir(), nil, "token", "--user", "bad user", "--ttl", "1m")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "token:")
}
