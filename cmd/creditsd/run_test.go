package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func runCLI(args ...string) (string, string, error) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestCommandLine(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"version", "--config", "f.yaml"}, {"--config=f.yaml", "version"}} {
		out, _, err := runCLI(args...)
		require.NoError(t, err, "%v: every command takes --config", args)
		require.Contains(t, out, "creditsd")
	}

	for _, help := range [][]string{{"help"}, {"--help"}, {"-h"}, {"serve", "--help"}, {"jobs", "-h"}} {
		_, _, err := runCLI(help...)
		require.NoError(t, err, "%v: help asked for is not a mistake", help)
	}
	for _, bad := range [][]string{{}, {"nope"}, {"version", "extra"}, {"version", "--bogus"}, {"serve", "--bogus"}, {"jobs", "run"},
		{"serve", "--config", ""}, {"jobs", "run", "daily-reset", "--config="}, {"version", "--config", ""}, {"serve", "--listen", ""},
		{"token", "--user", "u", "--ttl", "0s"}, {"token", "--user", "u", "--ttl", "-1m"}, {"backup"}} {
		_, _, err := runCLI(bad...)
		var u usageError
		require.True(t, errors.As(err, &u), "%v: want a usage error (exit 2), got %v", bad, err)
		require.Equal(t, 2, exitCode(err))
	}
}

func TestFlagsBeforeOrAfterTheCommand(t *testing.T) {
	for _, args := range [][]string{
		{"--config", "f.yaml", "jobs", "run", "expiry-sweep"},
		{"jobs", "--config", "f.yaml", "run", "expiry-sweep"},
		{"jobs", "run", "expiry-sweep", "--config=f.yaml"},
	} {
		name, rest := splitCommand(args)
		require.Equal(t, "jobs", name, args)
		fs, config := newFlagSet("jobs", &bytes.Buffer{})
		positional, err := parseFlags(fs, rest)
		require.NoError(t, err)
		require.Equal(t, []string{"run", "expiry-sweep"}, positional, args)
		require.Equal(t, "f.yaml", *config, args)
	}
}

// --config wins over CREDITSD_CONFIG.
func TestConfigFlagBeatsEnvironment(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte("database: "+filepath.Join(dir, "x.db")+
		"\napple: {bundle_id: com.example.sora, environments: [Sandbox]}\nauth: {hs256_secret: a-secret-of-at-least-thirty-two-bytes!!}\n"), 0o600))
	env := func(k string) string {
		if k == "CREDITSD_CONFIG" {
			return filepath.Join(dir, "missing.yaml")
		}
		return ""
	}
	s, _, err := loadSettings(good, env)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "x.db"), s.Config.Database)
	_, _, err = loadSettings("", env)
	require.ErrorContains(t, err, "missing.yaml", "without the flag, the environment names the file")
}

// A --listen that could never bind is a usage error, found before the
// database is created or migrated.
func TestServeListenFlagCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "x.db")
	config := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(config, []byte("database: "+db+
		"\napple: {bundle_id: com.example.sora, environments: [Sandbox]}\nauth: {hs256_secret: a-secret-of-at-least-thirty-two-bytes!!}\n"), 0o600))
	for _, addr := range []string{":abc", "127.0.0.1", "127.0.0.1:70000", "a b:80"} {
		_, _, err := runCLI("serve", "--config", config, "--listen", addr)
		var u usageError
		require.True(t, errors.As(err, &u), "--listen %q: want a usage error (exit 2), got %v", addr, err)
		require.ErrorContains(t, err, "flag -listen")
		require.NoFileExists(t, db, "--listen %q: the database was opened first", addr)
	}
}

func TestTuneGCLeavesAnOperatorsGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	tuneGC(func(string) string { return "" })
	require.Equal(t, serveGCPercent, debug.SetGCPercent(100), "no GOGC: the server's own")
	tuneGC(func(k string) string { return map[string]string{"GOGC": "50"}[k] })
	require.Equal(t, 100, debug.SetGCPercent(100), "GOGC set: left as the runtime read it")
}

func TestTuneProcsLeavesAnOperatorsGOMAXPROCS(t *testing.T) {
	for _, c := range []struct {
		env         string
		start, cpus int
		want        int
		ok          bool
	}{
		{"", 2, 2, 4, true},
		{"", 8, 8, 16, true},
		{"3", 2, 2, 0, false}, // the operator's
		{"", 2, 64, 0, false}, // a CPU quota: the runtime's own, which follows it
		{"", 1, 1, 2, true},   // one CPU: two Ps
	} {
		n, ok := procsFor(c.env, c.start, c.cpus)
		require.Equal(t, c.ok, ok, c)
		require.Equal(t, c.want, n, c)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for range 2 { // once a start, however often serve runs in one process
		tuneProcs(func(string) string { return "" })
		want, ok := procsFor("", startProcs, runtime.NumCPU())
		if !ok {
			want = startProcs
		}
		require.Equal(t, want, runtime.GOMAXPROCS(0))
	}
}

func TestBuildVersion(t *testing.T) {
	stamped := func(settings ...debug.BuildSetting) *debug.BuildInfo { return &debug.BuildInfo{Settings: settings} }
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "7088b69c3f1a2b3c4d5e6f708192a3b4c5d6e7f8"}
	for _, c := range []struct {
		name, set string
		info      *debug.BuildInfo
		ok        bool
		want      string
	}{
		{"set at build time", "1.4.0", stamped(rev), true, "1.4.0"},
		{"no build info", "dev", nil, false, "dev"},
		{"not stamped", "dev", stamped(debug.BuildSetting{Key: "-buildvcs", Value: "false"}), true, "dev"},
		{"a clean tree", "dev", stamped(rev, debug.BuildSetting{Key: "vcs.modified", Value: "false"}), true, "dev+7088b69c3f1a"},
		{"a tree with changes", "dev", stamped(rev, debug.BuildSetting{Key: "vcs.modified", Value: "true"}), true, "dev+7088b69c3f1a.dirty"},
		{"a short revision", "dev", stamped(debug.BuildSetting{Key: "vcs.revision", Value: "abc"}), true, "dev+abc"},
	} {
		require.Equal(t, c.want, buildVersion(c.set, c.info, c.ok), c.name)
	}
}

// A bad flag is said once, by the flag package with the command's flags,
// not again by main.
func TestBadFlagSaidOnce(t *testing.T) {
	_, stderr, code := cli(t, t.TempDir(), nil, "jobs", "run", "--bogus")
	require.Equal(t, 2, code)
	require.Equal(t, 1, strings.Count(stderr, "flag provided but not defined: -bogus"), stderr)
	require.Contains(t, stderr, "-config FILE")
}
