package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeBinary writes an executable shell script named name into a temp dir.
func fakeBinary(t *testing.T, name, script string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\n"+script+"\n"), 0o755))
	return bin
}

func TestStampedCommitNamesTheToolsBuild(t *testing.T) {
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "17aebc0d2f9c4b6a8e1f3d5c7b9a0e2f4d6c8b1a"}
	clean := debug.BuildSetting{Key: "vcs.modified", Value: "false"}
	dirty := debug.BuildSetting{Key: "vcs.modified", Value: "true"}
	require.Equal(t, "17aebc0", stampedCommit([]debug.BuildSetting{rev, clean}))
	require.Equal(t, "17aebc0+dirty", stampedCommit([]debug.BuildSetting{dirty, rev}))
	require.Equal(t, "", stampedCommit([]debug.BuildSetting{{Key: "GOOS", Value: "linux"}}), "unstamped: the checkout names it")
}

func TestServerVersionAsksTheBinary(t *testing.T) {
	ctx := context.Background()
	require.Equal(t, "dev+7088b69c3f1a", serverVersion(ctx, fakeBinary(t, "creditsd", `[ "$1" = version ] && echo "creditsd dev+7088b69c3f1a"`)),
		"the binary's own answer, not the checkout's HEAD")
	require.Equal(t, "unknown", serverVersion(ctx, fakeBinary(t, "creditsd", "exit 1")), "a binary that fails")
	require.Equal(t, "unknown", serverVersion(ctx, fakeBinary(t, "creditsd", "echo something else")), "an answer that is not creditsd's")
	require.Equal(t, "unknown", serverVersion(ctx, filepath.Join(t.TempDir(), "missing")))
}

func TestReportNamesTheServerMeasured(t *testing.T) {
	var out bytes.Buffer
	report{Machine: machine{CPUs: 2, CPU: "cpu", Go: "go1.26", Commit: "29f16fd", Server: "/tmp/a",
		ServerVersion: "dev+7088b69c3f1a"}}.table(&out)
	require.Contains(t, out.String(), "creditsd dev+7088b69c3f1a on 2 × cpu, go1.26 (the load tool at 29f16fd)\nserver binary: /tmp/a\n")

	for version, want := range map[string]string{
		"":    "creditsd at --target on",
		"dev": "creditsd dev (built without -buildvcs: its commit is not known) on",
	} {
		out.Reset()
		report{Machine: machine{CPUs: 2, CPU: "cpu", Go: "go1.26", Commit: "29f16fd", ServerVersion: version}}.table(&out)
		require.Contains(t, out.String(), want)
	}
}

// fakeGo puts a go first on PATH that records its arguments in the
// returned file and "builds" the -o file, failing any build asked to stamp
// its commit when stampFails, as git does in a checkout it will not read.
func fakeGo(t *testing.T, stampFails bool) (calls string) {
	fail := ""
	if stampFails {
		fail = `for a in "$@"; do [ "$a" = -buildvcs=auto ] && { echo "error obtaining VCS status" >&2; exit 1; }; done`
	}
	fake := filepath.Dir(fakeBinary(t, "go", `echo "$@" >> "$(dirname "$0")/calls"
`+fail+`
while [ "$1" != -o ]; do shift; done
echo built > "$2"`))
	t.Setenv("PATH", fake+string(os.PathListSeparator)+os.Getenv("PATH"))
	return filepath.Join(fake, "calls")
}

func TestBuildServerStampsItsCommit(t *testing.T) {
	const pkg = " github.com/creditsd/creditsd/cmd/creditsd\n"
	calls := fakeGo(t, false)
	var log bytes.Buffer
	bin, err := buildServer(context.Background(), t.TempDir(), &log)
	require.NoError(t, err)
	require.FileExists(t, bin)
	got, err := os.ReadFile(calls)
	require.NoError(t, err)
	require.Equal(t, "build -buildvcs=auto -o "+bin+pkg, string(got), "stamped whatever GOFLAGS says")

	calls = fakeGo(t, true)
	log.Reset()
	bin, err = buildServer(context.Background(), t.TempDir(), &log)
	require.NoError(t, err, "a checkout git will not read still gets its server built")
	require.FileExists(t, bin)
	require.Contains(t, log.String(), "without its commit stamped")
	got, err = os.ReadFile(calls)
	require.NoError(t, err)
	require.Equal(t, "build -buildvcs=auto -o "+bin+pkg+"build -o "+bin+pkg, string(got), "stamped first, then plain")
}

func TestCostTableShowsCPUPerAnswer(t *testing.T) {
	read := Summary{OK: 8000, Seconds: 2, Cost: &Cost{HandlerMeanMs: 0.7, HandlerP99Ms: 5}}
	read.chargeAnswers(1.5, 0.4)
	beside := Summary{OK: 8000, Seconds: 2, Cost: &Cost{}} // the sweep's spends: not charged
	var out bytes.Buffer
	report{Scenarios: []scenarioResult{{Name: "read", Runs: []Summary{read}}, {Name: "sweep", Runs: []Summary{beside}}}}.costTable(&out)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 4, out.String())
	last := func(line string, n int) []string { f := strings.Fields(line); return f[len(f)-n:] }
	require.Equal(t, []string{"server", "CPU", "µs", "load", "CPU", "µs"}, last(lines[1], 6))
	require.Equal(t, []string{"375", "100"}, last(lines[2], 2))
	require.Equal(t, []string{"-", "-"}, last(lines[3], 2))
}
