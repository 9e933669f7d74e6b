package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// peerResult is Apple's library on the same payloads, and the ratio of
// creditsd's full path (HTTP, both JWS, durable write, grant) to it.
type peerResult struct {
	Count     int     `json:"count"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	Pinned    bool    `json:"pinned_to_one_core"`
	Ratio     float64 `json:"ratio"` // creditsd ok/s (median run) ÷ Apple's library per second
}

// runPeer has bench/peer/verify.js verify payloads (outer and inner JWS
// each), on one core when taskset is there to pin it.
func (e *env) runPeer(ctx context.Context, payloads []string, creditsdRate float64) (peerResult, error) {
	if err := ensurePeerInstalled(ctx, e.opts.peerDir, e.stderr); err != nil {
		return peerResult{}, err
	}
	dir, err := os.MkdirTemp(e.dir, "peer-")
	if err != nil {
		return peerResult{}, err
	}
	file := filepath.Join(dir, "payloads.txt")
	if err := os.WriteFile(file, []byte(strings.Join(payloads, "\n")+"\n"), 0o600); err != nil {
		return peerResult{}, err
	}
	args := []string{"node", filepath.Join(e.opts.peerDir, "verify.js"), "--payloads", file, "--root", e.rootFile,
		"--bundle-id", bundleID, "--environment", e.environment}
	pinned := false
	if _, err := exec.LookPath("taskset"); err == nil {
		args, pinned = append([]string{"taskset", "-c", "0"}, args...), true
	}
	fmt.Fprintf(e.stderr, "[peer] %s\n", strings.Join(args, " "))
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).Output()
	if err != nil {
		return peerResult{}, fmt.Errorf("peer: %w: %s", err, stderrOf(err))
	}
	var p peerResult
	if err := json.Unmarshal(out, &p); err != nil {
		return p, fmt.Errorf("peer: reading %q: %w", out, err)
	}
	p.Pinned = pinned
	if p.PerSecond > 0 {
		p.Ratio = creditsdRate / p.PerSecond
	}
	fmt.Fprintf(e.stderr, "[peer] Apple's library: %.0f pairs/s; creditsd/apple = %.1f\n", p.PerSecond, p.Ratio)
	return p, nil
}

// ensurePeerInstalled runs npm ci once, from the committed lock file.
func ensurePeerInstalled(ctx context.Context, dir string, stderr io.Writer) error {
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@apple", "app-store-server-library")); err == nil {
		return nil
	}
	fmt.Fprintln(stderr, "[peer] npm ci --prefix", dir)
	cmd := exec.CommandContext(ctx, "npm", "ci", "--prefix", dir, "--no-audit", "--no-fund")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	return cmd.Run()
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// medianRate is the median of the runs' 2xx rates.
func medianRate(runs []Summary) float64 {
	rates := make([]float64, len(runs))
	for i, r := range runs {
		rates[i] = r.PerSecond
	}
	return median(rates)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
