package main

import (
	"bytes"
	"crypto/x509"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
)

func TestSigningCertificateWarning(t *testing.T) {
	now := time.Now()
	ca, err := devca.New(devca.Options{Now: now.Add(-time.Hour), LeafNotAfter: now.Add(20 * 24 * time.Hour)})
	require.NoError(t, err)
	var logs bytes.Buffer
	a := &app{log: slog.New(slog.NewTextHandler(&logs, nil)), registry: prometheus.NewRegistry(),
		verifier: &receipts.Verifier{Roots: []*x509.Certificate{ca.Root}, BundleID: e2eBundle, Environments: []string{receipts.Sandbox}}}
	a.registerCertExpiry()

	a.warnIfLapsing(now)
	require.Empty(t, logs.String(), "nothing seen, nothing to say")
	require.NoError(t, testutil.GatherAndCompare(a.registry, strings.NewReader(`
# HELP creditsd_apple_signing_cert_not_after_timestamp_seconds Earliest NotAfter (Unix seconds) among the Apple signing certificates of payloads that verified; 0 if none seen.
# TYPE creditsd_apple_signing_cert_not_after_timestamp_seconds gauge
creditsd_apple_signing_cert_not_after_timestamp_seconds 0
`)))

	jws, err := ca.Sign(devca.Consumable(e2eBundle, receipts.Sandbox, e2ePack, "1", "", now))
	require.NoError(t, err)
	_, err = a.verifier.VerifyTransaction(jws)
	require.NoError(t, err)
	a.warnIfLapsing(now)
	require.Contains(t, logs.String(), "lapses soon")
	require.Contains(t, logs.String(), "days_left=19")
	v, err := testutil.GatherAndCount(a.registry, "creditsd_apple_signing_cert_not_after_timestamp_seconds")
	require.NoError(t, err)
	require.Equal(t, 1, v)
	mfs, err := a.registry.Gather()
	require.NoError(t, err)
	require.Equal(t, float64(ca.Leaf.NotAfter.Unix()), mfs[0].GetMetric()[0].GetGauge().GetValue())

	logs.Reset()
	a.warnIfLapsing(now.Add(-20 * 24 * time.Hour))
	require.Empty(t, logs.String(), "no warning more than 30 days before")
}

// The warning starts 30 days before the leaf's notAfter (issue 4), to the
// minute: a test at 20 and 40 days left passed any threshold between.
func TestSigningCertificateWarningAt30Days(t *testing.T) {
	now := time.Now()
	notAfter := now.Add(60 * 24 * time.Hour)
	ca, err := devca.New(devca.Options{Now: now.Add(-time.Hour), LeafNotAfter: notAfter})
	require.NoError(t, err)
	var logs bytes.Buffer
	a := &app{log: slog.New(slog.NewTextHandler(&logs, nil)), registry: prometheus.NewRegistry(),
		verifier: &receipts.Verifier{Roots: []*x509.Certificate{ca.Root}, BundleID: e2eBundle, Environments: []string{receipts.Sandbox}}}
	jws, err := ca.Sign(devca.Consumable(e2eBundle, receipts.Sandbox, e2ePack, "1", "", now))
	require.NoError(t, err)
	_, err = a.verifier.VerifyTransaction(jws)
	require.NoError(t, err)
	leaf := ca.Leaf.NotAfter
	a.warnIfLapsing(leaf.Add(-30*24*time.Hour - time.Minute))
	require.Empty(t, logs.String(), "30 days and a minute before: quiet")
	a.warnIfLapsing(leaf.Add(-30*24*time.Hour + time.Minute))
	require.Contains(t, logs.String(), "lapses soon", "just inside 30 days: warns")
}
