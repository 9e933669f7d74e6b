package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
)

var localNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func prepareLocal(t *testing.T, dir string) (*Settings, []string) {
	t.Helper()
	c, notes, err := PrepareLocal(dir, localNow)
	require.NoError(t, err)
	s, err := c.Resolve()
	require.NoError(t, err)
	return s, notes
}

func TestPrepareLocal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "creditsd-local")
	first, notes := prepareLocal(t, dir)
	t.Run("FirstStart", func(t *testing.T) {
		log := strings.Join(notes, "\n")
		for _, want := range []string{"local profile", dir, "LocalTesting", "development CA", "never Production", "created"} {
			require.Contains(t, log, want)
		}
		require.Equal(t, "127.0.0.1:8080", first.Config.Listen)
		require.Equal(t, filepath.Join(dir, "creditsd.db"), first.Config.Database)
		require.True(t, first.Config.Local)
		require.Equal(t, dir, first.Config.StateDir)
		require.Equal(t, []string{receipts.LocalTesting}, first.Config.Apple.Environments)
		require.Len(t, first.Catalog, 2)
		require.Equal(t, int64(10), first.Catalog["com.example.sora.credits10"].Credits)
		require.Equal(t, "pro", first.Catalog["com.example.pro.monthly"].Tier)
	})
	t.Run("PrivateFiles", func(t *testing.T) {
		// The secret mints any user's tokens; the CA mints purchases.
		requireMode(t, dir, 0o700)
		requireMode(t, filepath.Join(dir, localSecretFile), 0o600)
		requireMode(t, filepath.Join(dir, localCADir), 0o700)
	})
	t.Run("SecondStartReuses", func(t *testing.T) {
		second, notes := prepareLocal(t, dir)
		require.NotContains(t, strings.Join(notes, "\n"), "created")
		require.Equal(t, first.Auth.secret, second.Auth.secret)
		require.Len(t, second.Roots, 1)
		require.Equal(t, first.Roots[0].Raw, second.Roots[0].Raw)
		token, err := first.Auth.Mint("alice", "", time.Hour, time.Now())
		require.NoError(t, err)
		require.NotEmpty(t, token)
	})
}

func requireMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, want, fi.Mode().Perm(), path)
}

// TestLocalProfileTrust verifies signed transactions with a Verifier built
// from the local settings: only LocalTesting data from the profile's own
// CA is accepted, never Production, never another CA's.
func TestLocalProfileTrust(t *testing.T) {
	dir := t.TempDir()
	s, _ := prepareLocal(t, dir)
	ca, created, err := devca.LoadOrCreate(filepath.Join(dir, localCADir), localNow)
	require.NoError(t, err)
	require.False(t, created)
	other, err := devca.New(devca.Options{Now: localNow})
	require.NoError(t, err)
	v := &receipts.Verifier{
		Roots:        s.Roots,
		BundleID:     s.Config.Apple.BundleID,
		AppAppleID:   s.Config.Apple.AppAppleID,
		Environments: s.Config.Apple.Environments,
	}
	tests := []struct {
		name     string
		ca       *devca.CA
		env      string
		wantCode receipts.Code // "" when it verifies
	}{
		{"LocalTesting", ca, receipts.LocalTesting, ""},
		{"Production", ca, receipts.Production, receipts.CodeEnvironment},
		{"Sandbox", ca, receipts.Sandbox, receipts.CodeEnvironment},
		{"AnotherCA", other, receipts.LocalTesting, receipts.CodeChain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jws, err := tt.ca.Sign(map[string]any{
				"transactionId": "2000000000000001", "originalTransactionId": "2000000000000001",
				"bundleId": "com.example.sora", "productId": "com.example.sora.credits10", "quantity": 1,
				"type": "Consumable", "environment": tt.env,
				"purchaseDate": localNow.UnixMilli(), "signedDate": localNow.UnixMilli(),
			})
			require.NoError(t, err)
			_, err = v.VerifyTransaction(jws)
			if tt.wantCode == "" {
				require.NoError(t, err)
				return
			}
			var re *receipts.Error
			require.ErrorAs(t, err, &re)
			require.Equal(t, tt.wantCode, re.Code)
		})
	}
}
