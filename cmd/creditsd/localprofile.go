package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
)

// DefaultLocalDir is where the local profile keeps its state when the
// program runs with no configuration at all.
const DefaultLocalDir = "./creditsd-local"

// The files of the local profile's state directory. devca.Save writes the
// CA's root as root.pem in its own directory.
const (
	localCADir      = "ca"
	localRootFile   = "root.pem"
	localSecretFile = "hs256.secret"
)

// LocalConfig is the configuration of the local profile kept in dir: only
// LocalTesting data, signed by dir's development CA, is accepted, so it can
// never grant credits for a real purchase. PrepareLocal creates the files
// it names.
func LocalConfig(dir string) Config {
	c := DefaultConfig()
	c.Database = filepath.Join(dir, "creditsd.db")
	c.Apple = AppleConfig{
		BundleID:         "com.example.sora",
		Environments:     []string{receipts.LocalTesting},
		RootCertificates: []string{filepath.Join(dir, localCADir, localRootFile)},
	}
	c.Products = []ProductConfig{
		{ProductID: "com.example.sora.credits10", Credits: 10, ExpiresAfter: "12mo"},
		{ProductID: "com.example.pro.monthly", Tier: "pro"},
	}
	c.Auth.HS256SecretFile = filepath.Join(dir, localSecretFile)
	c.Log.Format = "text" // a person is reading
	c.Local, c.StateDir = true, dir
	return c
}

// PrepareLocal creates the local profile's state in dir on first start (a
// development CA and an HS256 secret) and reuses it afterwards. The notes
// are for the log: they say what the profile accepts.
func PrepareLocal(dir string, now time.Time) (Config, []string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Config{}, nil, fmt.Errorf("local profile: %w", err)
	}
	ca, caCreated, err := devca.LoadOrCreate(filepath.Join(dir, localCADir), now)
	if err != nil {
		return Config{}, nil, fmt.Errorf("local profile: %w", err)
	}
	secretCreated, err := ensureSecret(filepath.Join(dir, localSecretFile))
	if err != nil {
		return Config{}, nil, fmt.Errorf("local profile: %w", err)
	}
	notes := []string{
		fmt.Sprintf("no configuration (--config or CREDITSD_CONFIG): using the local profile in %s", dir),
		fmt.Sprintf("accepting only LocalTesting data signed by the development CA %q (%s), never Production",
			ca.Root.Subject.CommonName, filepath.Join(dir, localCADir, localRootFile)),
		fmt.Sprintf("bearer tokens are HS256 with the secret in %s (mint one with `creditsd token`)", filepath.Join(dir, localSecretFile)),
	}
	if caCreated || secretCreated {
		notes = append(notes, "created the development CA and HS256 secret on this first start")
	}
	return LocalConfig(dir), notes, nil
}

// ensureSecret writes a new random secret to path unless one is there.
// O_EXCL keeps two processes starting at once from each writing their own.
func ensureSecret(path string) (created bool, err error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, err = f.WriteString(base64.RawURLEncoding.EncodeToString(key) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err == nil, err
}
