package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// certWarning is how long before an Apple signing certificate lapses the
// log starts to warn.
const certWarning = 30 * 24 * time.Hour

// registerCertExpiry exports the earliest NotAfter of the Apple signing
// certificates this process has seen (0 before any), so an alert can fire
// on (value - time()) < 30 days.
func (a *app) registerCertExpiry() {
	a.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "creditsd_apple_signing_cert_not_after_timestamp_seconds",
		Help: "Earliest NotAfter (Unix seconds) among the Apple signing certificates of payloads that verified; 0 if none seen.",
	}, func() float64 {
		if t, ok := a.verifier.EarliestNotAfter(time.Now()); ok {
			return float64(t.Unix())
		}
		return 0
	}))
}

// watchCertificates logs a warning every hour while a signing certificate
// seen lapses within 30 days.
func (a *app) watchCertificates(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		a.warnIfLapsing(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *app) warnIfLapsing(now time.Time) {
	notAfter, ok := a.verifier.EarliestNotAfter(now)
	if ok && notAfter.Sub(now) < certWarning {
		a.log.Warn("an Apple signing certificate lapses soon; payloads it signs later will be refused",
			"not_after", notAfter, "days_left", int(notAfter.Sub(now).Hours()/24))
	}
}
