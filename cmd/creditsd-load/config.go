package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The app the generated config serves and the pack its notifications buy.
const (
	bundleID    = "com.example.sora"
	packProduct = "com.example.sora.credits10"
	packCredits = 10
	environment = "Sandbox"
)

// serverFiles are the files of a server the load tool starts itself.
type serverFiles struct {
	Dir      string
	Config   string // creditsd.yaml
	Database string
	Root     string // the test CA's root certificate, PEM
	Secret   string // the HS256 secret tokens are minted with
}

// writeConfig writes a config into dir that trusts rootPEM and nothing
// else: port 0 on loopback, a database in dir, Sandbox only. The scheduled
// jobs are off so that nothing but the load itself runs during a
// measurement (`creditsd jobs run` still runs them on demand); the in-server
// sweep rewrites it with rewriteConfig.
func writeConfig(dir string, rootPEM []byte, logLevel string) (serverFiles, error) {
	secret, err := newSecret()
	if err != nil {
		return serverFiles{}, err
	}
	f := serverFiles{Dir: dir, Config: filepath.Join(dir, "creditsd.yaml"),
		Database: filepath.Join(dir, "creditsd.db"), Root: filepath.Join(dir, "root.pem"), Secret: secret}
	if err := os.WriteFile(f.Root, rootPEM, 0o600); err != nil {
		return f, err
	}
	return f, rewriteConfig(f, logLevel, "")
}

// rewriteConfig writes f's config again, with the expiry sweep scheduled at
// sweepSchedule (a 5-field cron spec read in UTC), or off when it is empty.
func rewriteConfig(f serverFiles, logLevel, sweepSchedule string) error {
	return os.WriteFile(f.Config, []byte(configYAML(f, logLevel, sweepSchedule)), 0o600)
}

// configYAML quotes every path and the secret: a temp dir may hold
// characters YAML would otherwise read as syntax.
func configYAML(f serverFiles, logLevel, sweepSchedule string) string {
	lines := []string{
		"listen: 127.0.0.1:0",
		"database: " + quote(f.Database),
		"apple:",
		"  bundle_id: " + bundleID,
		"  environments: [" + environment + "]",
		"  root_certificates: [" + quote(f.Root) + "]",
		"products:",
		"  - product_id: " + packProduct,
		fmt.Sprintf("    credits: %d", packCredits),
		"    expires_after: 12mo",
		"  - product_id: com.example.pro.monthly",
		"    tier: pro",
		"auth:",
		"  hs256_secret: " + quote(f.Secret),
		"log:",
		"  level: " + logLevel,
		"  format: json",
		"jobs:",
		"  timezone: UTC", // the zone sweepSchedule is written in
		"  " + sweepJob(sweepSchedule),
		"  daily_reset: {enabled: false}",
		"  reconcile: {enabled: false}",
		"  consumption_answers: {enabled: false}",
	}
	return strings.Join(lines, "\n") + "\n"
}

// sweepJob is the expiry_sweep line: off, or on at schedule.
func sweepJob(schedule string) string {
	if schedule == "" {
		return "expiry_sweep: {enabled: false}"
	}
	return "expiry_sweep: {schedule: " + quote(schedule) + ", enabled: true}"
}

// quote is a YAML double-quoted scalar; %q's escapes are a subset of YAML's.
func quote(s string) string { return fmt.Sprintf("%q", s) }

// newSecret is 48 random bytes, well past the 32 creditsd requires.
func newSecret() (string, error) {
	b := make([]byte, 48)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
