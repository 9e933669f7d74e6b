package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeBinary writes an executable shell script into a temp dir.
func fakeBinary(t *testing.T, script string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "creditsd")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\n"+script+"\n"), 0o755))
	return bin
}

func TestServerVersionAsksTheBinary(t *testing.T) {
	ctx := context.Background()
	require.Equal(t, "dev+7088b69c3f1a", serverVersion(ctx, fakeBinary(t, `[ "$1" = version ] && echo "creditsd dev+7088b69c3f1a"`)),
		"the binary's own answer, not the checkout's HEAD")
	require.Equal(t, "unknown", serverVersion(ctx, fakeBinary(t, "exit 1")), "a binary that fails")
	require.Equal(t, "unknown", serverVersion(ctx, fakeBinary(t, "echo something else")), "an answer that is not creditsd's")
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
