package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
)

// testSecret is what ${CREDITSD_TEST_SECRET} expands to in fixtures.
const testSecret = "env-secret-env-secret-env-secret-0123"

func testGetenv(name string) string {
	return map[string]string{"CREDITSD_TEST_SECRET": testSecret}[name]
}

// loadFixture loads path as the program does: decoded, then resolved.
func loadFixture(t *testing.T, path string) (*Settings, error) {
	t.Helper()
	s, _, err := loadSettings(path, testGetenv)
	return s, err
}

// TestConfigInvalid runs every testdata/config/invalid fixture: each must
// fail with an error holding the substring its "# want:" line gives, which
// names the key at fault, after the file's name, whether decoding or
// resolving found the mistake.
func TestConfigInvalid(t *testing.T) {
	paths, err := filepath.Glob("testdata/config/invalid/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			require.True(t, ok, "the fixture's first line must be # want: <error substring>")

			_, err = loadFixture(t, path)
			require.ErrorContains(t, err, want)
			require.True(t, strings.HasPrefix(err.Error(), "config: "+path+": "), err.Error())
		})
	}
}

// TestConfigValid resolves every valid fixture and checks what each one is
// there to show.
func TestConfigValid(t *testing.T) {
	checks := map[string]func(t *testing.T, s *Settings){
		"full":          checkFull,
		"minimal":       checkDefaults,
		"local-testing": checkLocalTesting,
		"public-keys": func(t *testing.T, s *Settings) {
			require.Nil(t, s.Auth.secret)
			require.Len(t, s.Auth.keys.ec, 2)  // ec.pem and the JWKS's EC key
			require.Len(t, s.Auth.keys.rsa, 2) // rsa.pem and the JWKS's RSA signing key; its enc key is skipped
		},
		"env-secret": func(t *testing.T, s *Settings) {
			require.Equal(t, testSecret, s.Config.Auth.HS256Secret)
			require.Equal(t, []byte(testSecret), s.Auth.secret)
		},
	}
	paths, err := filepath.Glob("testdata/config/valid/*.yaml")
	require.NoError(t, err)
	require.Len(t, paths, len(checks), "every valid fixture needs a check")
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			s, err := loadFixture(t, path)
			require.NoError(t, err)
			require.NotNil(t, checks[name], "no check for %s", name)
			checks[name](t, s)
		})
	}
}

func checkFull(t *testing.T, s *Settings) {
	require.Equal(t, entitlements.Catalog{
		"com.example.sora.credits10":  {ID: "com.example.sora.credits10", Credits: 10, ExpiresAfter: entitlements.Expiry{Months: 12}},
		"com.example.sora.credits100": {ID: "com.example.sora.credits100", Credits: 100, ExpiresAfter: entitlements.Expiry{Never: true}},
		"com.example.pro.monthly":     {ID: "com.example.pro.monthly", Tier: entitlements.TierPro},
	}, s.Catalog)
	require.Len(t, s.Allowance.Changes, 2)
	require.Equal(t, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), s.Allowance.Changes[0].Effective)
	require.Equal(t, time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC), s.Allowance.Changes[1].Effective.UTC())
	require.Equal(t, "https://id.example.com", s.Auth.issuer)
	require.Equal(t, "debug", s.Config.Log.Level)
	other, err := entitlements.NewTokenDeriver(entitlements.DefaultTokenNamespace)
	require.NoError(t, err)
	require.NotEqual(t, other.Token("alice"), s.Tokens.Token("alice"), "users.token_namespace is used")
}

func checkDefaults(t *testing.T, s *Settings) {
	c := s.Config
	require.Equal(t, "127.0.0.1:8080", c.Listen)
	require.Equal(t, 1024, c.MaxConnections)
	require.Equal(t, "./creditsd.db", c.Database)
	require.Equal(t, []string{"Production", "Sandbox"}, c.Apple.Environments)
	require.Nil(t, s.Roots, "no root files: the verifier's built-in Apple root")
	require.Empty(t, s.Catalog)
	require.Equal(t, time.UTC, s.Allowance.Location)
	require.Equal(t, map[string]int64{"free": 30, "pro": 100}, s.Allowance.Tiers)
	require.Equal(t, "30s", c.Auth.Leeway)
	require.Equal(t, LogConfig{Level: "info", Format: "json"}, c.Log)
	def, err := entitlements.NewTokenDeriver(entitlements.DefaultTokenNamespace)
	require.NoError(t, err)
	require.Equal(t, def.Token("alice"), s.Tokens.Token("alice"))
}

func checkLocalTesting(t *testing.T, s *Settings) {
	require.Len(t, s.Roots, 1)
	require.Equal(t, "creditsd test root", s.Roots[0].Subject.CommonName)
	require.Equal(t, map[string]int64{"free": 20, "pro": 100}, s.Allowance.Tiers, "a partial map keeps pro's default")
	require.Equal(t, "Europe/Paris", s.Allowance.Location.String())
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	require.True(t, s.Allowance.Changes[0].Effective.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, paris)), "a date is midnight in the allowance's zone")
	require.Equal(t, []byte("this-is-a-test-secret-of-40-bytes-length"), s.Auth.secret, "the file's newline is trimmed")
}

func TestParseConfig(t *testing.T) {
	t.Run("ExpansionIsNotYAML", func(t *testing.T) {
		// A value with YAML syntax in it stays one string: expansion
		// happens after decoding, so a secret cannot inject keys.
		secret := "x: y\nlisten: 0.0.0.0:1 # ${HOME} 0123456789abcdef"
		c, err := parseConfig([]byte("auth:\n  hs256_secret: ${S}\n"), func(string) string { return secret })
		require.NoError(t, err)
		require.Equal(t, secret, c.Auth.HS256Secret)
		require.Equal(t, "127.0.0.1:8080", c.Listen)
		require.Equal(t, 1024, c.MaxConnections)
	})
	t.Run("OnlyBracedReferences", func(t *testing.T) {
		c, err := parseConfig([]byte("auth:\n  hs256_secret: a$b$$c${S}\n"), func(string) string { return "!" })
		require.NoError(t, err)
		require.Equal(t, "a$b$$c!", c.Auth.HS256Secret)
	})
	t.Run("InlinedSectionKey", func(t *testing.T) {
		// A job's section inlines its schedule and enabled keys: the key
		// named was jobs.reconcile..schedule.
		_, err := parseConfig([]byte("jobs:\n  reconcile:\n    schedule: ${NOPE}\n"), nil)
		require.ErrorContains(t, err, "config: jobs.reconcile.schedule: ${NOPE} is not set")
	})
	t.Run("NilGetenv", func(t *testing.T) {
		_, err := parseConfig([]byte("database: ${DB}\n"), nil)
		require.ErrorContains(t, err, "config: database: ${DB} is not set")
	})
	t.Run("ValueNotEchoed", func(t *testing.T) {
		_, err := parseConfig([]byte("apple:\n  app_apple_id: hunter2\n"), nil)
		require.Error(t, err)
		require.NotContains(t, err.Error(), "hunter2")
	})
	t.Run("ErrorsAreConfigErrors", func(t *testing.T) {
		_, err := parseConfig([]byte("listne: x\nlog: {levl: debug}\n"), nil)
		var ce *ConfigError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, "listne", ce.Key)
		require.ErrorContains(t, err, "config: line 2: log.levl: unknown key levl")
	})
}

// TestConfigDatabaseUnusable: a database path SQLite cannot open stops
// serve and jobs run at start with a config error naming the key and the
// file, as every other bad value does; so does the program's message.
func TestConfigDatabaseUnusable(t *testing.T) {
	dir := t.TempDir()
	for name, path := range map[string]string{
		"MissingDirectory": filepath.Join(dir, "missing", "x.db"),
		"Directory":        dir,
	} {
		t.Run(name, func(t *testing.T) {
			config := filepath.Join(t.TempDir(), "creditsd.yaml")
			require.NoError(t, os.WriteFile(config, []byte("listen: 127.0.0.1:0\ndatabase: "+path+
				"\napple: {bundle_id: com.example.sora, environments: [Sandbox]}\nauth: {hs256_secret: "+testSecret+"}\n"), 0o600))
			want := "config: " + config + ": database: "
			for _, args := range [][]string{{"serve"}, {"jobs", "run", "expiry-sweep"}} {
				var stdout, stderr bytes.Buffer
				err := run(context.Background(), append(args, "--config", config), testGetenv, &stdout, &stderr)
				require.Error(t, err, args)
				require.True(t, strings.HasPrefix(err.Error(), want), "%v: %s", args, err)
				require.Equal(t, 1, exitCode(err))
			}
			_, errOut, code := cli(t, dir, nil, "serve", "--config", config)
			require.Equal(t, 1, code)
			require.Contains(t, errOut, "creditsd: "+want)
		})
	}
}

func TestNameFileReachesEveryConfigError(t *testing.T) {
	err := errors.Join(keyErrorf("listen", "bad"), errors.Join(keyErrorf("log.level", "loud"), keyErrorf("auth.hs256_secret", "short")))
	nameFile(err, "prod.yaml")
	require.EqualError(t, err, "config: prod.yaml: listen: bad\nconfig: prod.yaml: log.level: loud\nconfig: prod.yaml: auth.hs256_secret: short")
	nameFile(nil, "prod.yaml") // nothing to name
}

func TestLoadConfig(t *testing.T) {
	t.Run("MissingFile", func(t *testing.T) {
		_, err := LoadConfig("testdata/config/nope.yaml", nil)
		require.EqualError(t, err, "config: testdata/config/nope.yaml: no such file or directory")
		require.True(t, errors.Is(err, os.ErrNotExist))
	})
	t.Run("Directory", func(t *testing.T) {
		dir := t.TempDir()
		_, err := LoadConfig(dir, nil)
		require.EqualError(t, err, "config: "+dir+": is a directory")
	})
	t.Run("ParseErrorNamesFile", func(t *testing.T) {
		_, err := LoadConfig("testdata/config/invalid/unknown-key.yaml", nil)
		require.ErrorContains(t, err, "config: testdata/config/invalid/unknown-key.yaml: line 7: listne: unknown key listne")
	})
}

// A value set in the environment is a secret's usual home, and a config
// error never repeats it: the message names its ${NAME} instead, whether
// the value was a secret given where a path belongs (the key file's text
// itself) or one that a key's own check quotes. (The decoder sees the
// file before any expansion, so only Resolve's checks could repeat one.)
func TestConfigErrorsHideEnvValues(t *testing.T) {
	const pem = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
	const word = "SuperSecretFromEnv_0123"
	const escaped = "p\"ss\\w0rd-secret\nline2" // a quote, a backslash and a newline: %q escapes them
	const sched = "Hunter2SecretWord * * * *"   // the schedule's parser quotes its first field alone
	env := map[string]string{"CREDITSD_TEST_SECRET": testSecret, "KEY_TEXT": pem, "WORD": word, "ESCAPED": escaped,
		"SCHED": sched}
	for name, c := range map[string]struct{ yaml, want string }{
		"a key's text for its file": {"app_store_api: {key_id: K, issuer_id: I, private_key_file: \"${KEY_TEXT}\"}\n",
			"app_store_api.private_key_file: holds several lines, not a path"},
		"a secret for a secret's file": {"auth: {hs256_secret_file: \"${WORD}\"}\n",
			"auth.hs256_secret_file: cannot read it: open ${WORD}: no such file"},
		"a value auth's check quotes":      {"auth: {hs256_secret: \"${CREDITSD_TEST_SECRET}\", leeway: \"${WORD}\"}\n", "${WORD}"},
		"a value log.level's check quotes": {"log: {level: \"${WORD}\"}\n", "log.level: \"${WORD}\""},
		"a value %q escapes":               {"listen: \"${ESCAPED}\"\n", "listen: \"${ESCAPED}\""},
		"part of a value a check quotes":   {"jobs: {reconcile: {schedule: \"${SCHED}\"}}\n", "jobs.reconcile.schedule:"},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "creditsd.yaml")
			body := "database: x.db\napple: {bundle_id: com.example.sora, environments: [Sandbox]}\n" +
				"products: [{product_id: p, credits: 10}]\n" + c.yaml
			if !strings.Contains(c.yaml, "auth:") {
				body += "auth: {hs256_secret: \"${CREDITSD_TEST_SECRET}\"}\n"
			}
			require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
			_, _, err := loadSettings(path, func(n string) string { return env[n] })
			require.ErrorContains(t, err, c.want)
			for _, secret := range []string{word, "MIGHAgEA", testSecret, "w0rd", "line2", "Hunter2"} {
				require.NotContains(t, err.Error(), secret)
			}
		})
	}
}
