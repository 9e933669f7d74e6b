package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
)

// signedNote is one webhook call, signed ahead of time, for user's purchase.
type signedNote struct {
	user, txID string
	body       []byte
}

// signNotes signs n ONE_TIME_CHARGE notifications of distinct
// transactions, spread over users.
func (w *world) signNotes(n int, users []string) []signedNote {
	notes := make([]signedNote, n)
	bought := time.Now().Add(-time.Minute)
	for i := range notes {
		user := users[i%len(users)]
		txID := fmt.Sprintf("%d", 4_000_000+i)
		jws, err := w.ca.Sign(devca.NotificationPayload{NotificationType: "ONE_TIME_CHARGE", Version: "2.0",
			NotificationUUID: fmt.Sprintf("c7a5e0de-0000-4000-8000-%012d", i), SignedDate: devca.Millis(time.Now()),
			Data: &devca.NotificationData{BundleID: e2eBundle, Environment: receipts.Sandbox,
				SignedTransactionInfo: w.transaction(txID, w.tokens.Token(user), bought)}})
		require.NoError(w.t, err)
		body, err := json.Marshal(map[string]string{"signedPayload": jws})
		require.NoError(w.t, err)
		notes[i] = signedNote{user: user, txID: txID, body: body}
	}
	return notes
}

// sendAll posts notes from four goroutines and reports which were answered
// 2xx. after, if set, is called once with the count of answers so far,
// after every answer, from the sending goroutine.
func (w *world) sendAll(notes []signedNote, after func(answered int32)) []bool {
	client := &http.Client{Timeout: 10 * time.Second}
	acked := make([]bool, len(notes)) // each index written by one goroutine
	var answered atomic.Int32
	var wg sync.WaitGroup
	const senders = 4
	for g := range senders {
		wg.Go(func() {
			for i := g; i < len(notes); i += senders {
				resp, err := client.Post("http://"+w.proc.addr+"/v1/appstore/notifications", "application/json",
					bytes.NewReader(notes[i].body))
				if err == nil {
					resp.Body.Close()
					acked[i] = resp.StatusCode/100 == 2
				}
				if n := answered.Add(1); after != nil {
					after(n)
				}
			}
		})
	}
	wg.Wait()
	return acked
}

// TestCrashLosesNoAcknowledgedNotification kills creditsd (SIGKILL) while
// notifications stream in, restarts it on the same database, and checks
// that every notification answered 2xx was kept, then that Apple's retries
// of all of them grant each transaction exactly once.
func TestCrashLosesNoAcknowledgedNotification(t *testing.T) {
	w := newWorld(t)
	users := []string{"ann", "ben", "cat", "dan", "eve"}
	for _, u := range users {
		w.entitlement(u) // they exist before their purchases arrive
	}
	notes := w.signNotes(300, users)
	var kill sync.Once
	var killErr error
	acked := w.sendAll(notes, func(answered int32) {
		if answered >= 100 {
			kill.Do(func() { killErr = w.proc.cmd.Process.Kill() })
		}
	})
	require.NoError(t, killErr)
	_ = w.proc.cmd.Wait() // "signal: killed"
	ackedBy := map[string]int{}
	for i, ok := range acked {
		if ok {
			ackedBy[notes[i].user]++
		}
	}
	total := 0
	for _, n := range ackedBy {
		total += n
	}
	require.GreaterOrEqual(t, total, 90, "most of the first 100 were answered")
	require.Less(t, total, len(notes), "the kill came midway")
	t.Logf("%d of %d notifications answered 2xx before SIGKILL", total, len(notes))

	w.proc = start(t, "serve", "--config", w.config)
	sent := len(notes) / len(users)
	for _, u := range users {
		e := w.entitlement(u)
		have := map[string]bool{}
		for _, l := range e.Credits.Lots {
			have[l.TransactionID] = true
		}
		for i, ok := range acked {
			if ok && notes[i].user == u {
				require.True(t, have[notes[i].txID], "transaction %s was acknowledged, then lost", notes[i].txID)
			}
		}
		require.GreaterOrEqual(t, e.Credits.Balance, int64(10*ackedBy[u]), u)
		require.LessOrEqual(t, e.Credits.Balance, int64(10*sent), u)
	}

	// Apple retries everything: each transaction is granted exactly once.
	for i, ok := range w.sendAll(notes, nil) {
		require.True(t, ok, "retry of notification %d", i)
	}
	for _, u := range users {
		e := w.entitlement(u)
		require.Equal(t, int64(10*sent), e.Credits.Balance, u)
		require.Len(t, e.Credits.Lots, sent, u)
	}
}
