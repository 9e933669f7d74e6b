package notifications

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/entitlements/sqlite"
	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
)

// BenchmarkWebhookHandler is the webhook without the network: ServeHTTP on
// distinct ONE_TIME_CHARGE notifications (outer and inner JWS verified,
// recorded and granted in a real file database with synchronous=FULL and
// group commit), from 16 concurrent callers per CPU. Payloads are signed
// before the clock starts. cmd/creditsd-load measures the same path over
// HTTP; this one is for profiles (-cpuprofile).
func BenchmarkWebhookHandler(b *testing.B) {
	ca, err := devca.New(devca.Options{Now: time.Now().Add(-time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	tokens, err := entitlements.NewTokenDeriver(entitlements.DefaultTokenNamespace)
	if err != nil {
		b.Fatal(err)
	}
	const users = 256
	for u := range users {
		if _, err := db.UserState(context.Background(), benchUser(u), tokens.Token(benchUser(u)), "service:test"); err != nil {
			b.Fatal(err)
		}
	}
	p := &Processor{
		Verifier: &receipts.Verifier{Roots: []*x509.Certificate{ca.Root}, BundleID: bundleID, Environments: []string{receipts.Sandbox}},
		Store:    db,
		Catalog:  entitlements.Catalog{"credits10": {ID: "credits10", Credits: 10, ExpiresAfter: entitlements.DefaultExpiry}},
		Now:      time.Now,
		Log:      slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Metrics:  NewMetrics(prometheus.NewRegistry()),
	}
	bodies := signBenchNotifications(b, ca, tokens, b.N, users)
	var next atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := bodies[next.Add(1)-1]
			w := httptest.NewRecorder()
			p.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/appstore/notifications", strings.NewReader(body)))
			if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"granted"`) {
				b.Errorf("status %d: %s", w.Code, w.Body)
				return
			}
		}
	})
}

func benchUser(u int) string { return fmt.Sprintf("bench-u%d", u) }

// signBenchNotifications signs n distinct webhook bodies on every core.
func signBenchNotifications(b *testing.B, ca *devca.CA, tokens entitlements.TokenDeriver, n, users int) []string {
	b.Helper()
	out := make([]string, n)
	now := time.Now()
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	var failed atomic.Bool
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n && !failed.Load(); i += workers {
				tx, err := ca.Sign(devca.Consumable(bundleID, receipts.Sandbox, "credits10", fmt.Sprintf("bench-tx-%d", i),
					tokens.Token(benchUser(i%users)), now.Add(-time.Minute)))
				if err == nil {
					var jws string
					jws, err = ca.Sign(devca.NotificationPayload{NotificationType: "ONE_TIME_CHARGE",
						NotificationUUID: fmt.Sprintf("bench-n-%d", i), Version: "2.0", SignedDate: devca.Millis(now),
						Data: &devca.NotificationData{AppAppleID: 1, BundleID: bundleID, Environment: receipts.Sandbox, SignedTransactionInfo: tx}})
					out[i] = `{"signedPayload":"` + jws + `"}`
				}
				if err != nil {
					failed.Store(true)
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		b.FailNow()
	}
	return out
}
