package main

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts/serverapi/fakeappstore"
)

// serve stops the scheduler and waits for its running jobs before it
// closes the database (issue 4): a reconcile under way at SIGTERM (Apple's
// history hangs) is cancelled, waited for and recorded interrupted. With
// the wait gone, nothing failed: the run's row stayed 'running' and the
// daily reset logged "the database is closed".
func TestShutdownWaitsForRunningJobs(t *testing.T) {
	asked, release := make(chan struct{}, 64), make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case asked <- struct{}{}:
		default:
		}
		select { // answers only when the client gives up, or the test ends
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer hang.Close()
	defer close(release)
	_, p8 := fakeappstore.GenerateKey(t)
	p8File := filepath.Join(t.TempDir(), "AuthKey_KEY123.p8")
	require.NoError(t, os.WriteFile(p8File, p8, 0o600))
	w := newWorldWith(t, newCA(t), fmt.Sprintf("app_store_api:\n  key_id: KEY123\n  issuer_id: issuer-1\n"+
		"  private_key_file: %s\n  production_url: %s\n  sandbox_url: %s\n", p8File, hang.URL, hang.URL))
	select {
	case <-asked: // the catch-up reconcile at start is under way
	case <-time.After(15 * time.Second):
		t.Fatalf("reconcile never asked Apple; log:\n%s", w.proc.log())
	}
	w.proc.stop(t)

	db, err := sql.Open("sqlite", filepath.Join(w.dir, "creditsd.db"))
	require.NoError(t, err)
	defer db.Close()
	var outcome string
	require.NoError(t, db.QueryRow(`SELECT outcome FROM job_runs WHERE job = 'reconcile' ORDER BY run_id DESC LIMIT 1`).Scan(&outcome))
	require.Equal(t, "interrupted", outcome, "the run at SIGTERM was waited for and recorded; log:\n%s", w.proc.log())
}
