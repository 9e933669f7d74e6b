package main

import (
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
)

// TestHealthzScenarioIsTheFloor runs the floor scenario against a server
// that records what it is asked: GET /healthz, with no token, every time.
func TestHealthzScenarioIsTheFloor(t *testing.T) {
	var asked sync.Map // "METHOD path bearer" -> *atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := asked.LoadOrStore(r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"), new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	t.Cleanup(srv.Close)
	c, err := newWireClient(srv.URL, 2)
	require.NoError(t, err)
	rss := newRSSSampler(os.Getpid())
	t.Cleanup(rss.close)
	e := &env{opts: options{runs: 2, count: 25, concurrency: 2}, stderr: io.Discard, base: srv.URL, client: c, rss: rss}

	res, err := e.scenario(context.Background(), floor)
	require.NoError(t, err)
	require.Equal(t, "healthz", res.Name)
	require.Len(t, res.Runs, 2)
	for _, run := range res.Runs {
		require.Equal(t, 25, run.OK)
	}
	var keys []string
	asked.Range(func(k, v any) bool {
		keys = append(keys, k.(string))
		require.EqualValues(t, 50, v.(*atomic.Int64).Load())
		return true
	})
	require.Equal(t, []string{"GET /healthz "}, keys, "the floor sends no token and asks nothing else")
}

// The webhook's notifications are bought one after another, each at its own
// moment and all in the past, as real purchases are: lots bought at one
// moment would share one expiry, which no real run of purchases does.
func TestNotificationsAreBoughtInTurn(t *testing.T) {
	ca, err := devca.New(devca.Options{})
	require.NoError(t, err)
	e := &env{opts: options{users: 100}, ca: ca, environment: receipts.Sandbox, runID: newRunID()}
	payloads, err := e.signNotifications(50)
	require.NoError(t, err)
	v := &receipts.Verifier{Roots: []*x509.Certificate{ca.Root}, BundleID: bundleID, Environments: []string{receipts.Sandbox}}
	var last time.Time
	for i, p := range payloads {
		n, err := v.VerifyNotification(p)
		require.NoError(t, err)
		bought := n.Transaction.PurchaseDate
		require.True(t, bought.Before(time.Now()), "notification %d bought in the future", i)
		if i > 0 {
			require.Equal(t, time.Millisecond, bought.Sub(last), "notification %d", i)
		}
		last = bought
	}
}
