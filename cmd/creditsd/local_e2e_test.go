package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
)

// With no config at all, creditsd runs the local profile: it creates its
// CA and secret in ./creditsd-local/ and accepts only LocalTesting data
// signed by that CA.
func TestEndToEndLocalProfile(t *testing.T) {
	cwd := t.TempDir()
	p := startIn(t, cwd, "serve", "--listen", "127.0.0.1:0")
	require.Contains(t, p.log(), "local profile")

	ca, err := devca.Load(filepath.Join(cwd, "creditsd-local", "ca"))
	require.NoError(t, err)
	secret, err := os.ReadFile(filepath.Join(cwd, "creditsd-local", "hs256.secret"))
	require.NoError(t, err)
	w := &world{t: t, ca: ca, proc: p}
	w.tokens = mustTokens(t)
	bearer := hs256(t, strings.TrimSpace(string(secret)), "alice")

	sign := func(env string) string {
		jws, err := ca.Sign(devca.Consumable("com.example.sora", env, "com.example.sora.credits10", "local-"+env,
			w.tokens.Token("alice"), time.Now()))
		require.NoError(t, err)
		return jws
	}
	a := w.do("POST", "/v1/me/transactions", bearer, map[string]string{"signed_transaction": sign(receipts.LocalTesting)})
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	for _, env := range []string{receipts.Production, receipts.Sandbox} {
		a = w.do("POST", "/v1/me/transactions", bearer, map[string]string{"signed_transaction": sign(env)})
		require.Equal(t, http.StatusUnprocessableEntity, a.status, "%s data is refused: %s", env, a.raw)
	}
}

// startIn is start with a working directory.
func startIn(t *testing.T, dir string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	return startCmd(t, cmd)
}
