package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
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
