package entitlements

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts"
)

// TestProblemForAbandonedRequest: a request that ended because its client
// went away is recorded as 499, not 5xx, and its end is not logged as a
// failure; a client's own mistake keeps its 4xx, and a failure of ours
// that is not the request's end stays a logged 5xx, so that alerts on 5xx
// see it whatever the caller's timeout.
func TestProblemForAbandonedRequest(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gone := httptest.NewRequest("GET", "/v1/me/entitlement", nil).WithContext(ctx)
	waiting := httptest.NewRequest("GET", "/v1/me/entitlement", nil)
	tests := []struct {
		name   string
		r      *http.Request
		err    error
		status int
		logged string // "" when nothing at info or above
	}{
		{"CancelledGone", gone, fmt.Errorf("read user: %w", context.Canceled), StatusClientClosedRequest, ""},
		{"UnavailableGone", gone, Errorf(KindUnavailable, "app_store_unavailable", "later"), StatusClientClosedRequest, ""},
		{"MistakeGone", gone, Errorf(KindInvalid, "invalid_json", "bad"), http.StatusBadRequest, ""},
		{"DiskGone", gone, errors.New("disk I/O error"), http.StatusInternalServerError, "client_gone=true"},
		{"DiskWaiting", waiting, errors.New("disk I/O error"), http.StatusInternalServerError, "request failed"},
		{"CancelledWaiting", waiting, context.Canceled, http.StatusInternalServerError, "request failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logged bytes.Buffer
			p := ProblemFor(tt.r, slog.New(slog.NewTextHandler(&logged, nil)), tt.err)
			require.Equal(t, tt.status, p.Status)
			if tt.status == StatusClientClosedRequest {
				require.Equal(t, "client_closed_request", p.Code)
			}
			if tt.logged == "" {
				require.Empty(t, logged.String())
				return
			}
			require.Contains(t, logged.String(), "level=ERROR")
			require.Contains(t, logged.String(), tt.logged)
		})
	}
}

// TestProblemForMisconfiguredVerifier: a Verifier that cannot verify
// anything is the service's fault, 503 with the verifier's code, wherever
// its error surfaces (the webhook, a submitted transaction); bad data is
// 400. In a receipt, it ends the claim rather than refuse one purchase.
func TestProblemForMisconfiguredVerifier(t *testing.T) {
	r := httptest.NewRequest("POST", "/v1/me/transactions", nil)
	config := &receipts.Error{Code: receipts.CodeConfig, Detail: "no bundle id"}
	p := ProblemFor(r, nil, fmt.Errorf("verify: %w", config))
	require.Equal(t, http.StatusServiceUnavailable, p.Status)
	require.Equal(t, "Service Unavailable", p.Title)
	require.Equal(t, "verifier_misconfigured", p.Code)
	require.False(t, refused(config), "the service failed: the receipt's claim ends")

	bad := &receipts.Error{Code: receipts.CodeMalformed, Detail: "not a JWS"}
	require.Equal(t, http.StatusBadRequest, ProblemFor(r, nil, bad).Status)
	require.True(t, refused(bad), "one purchase refused, the rest claimed")
}
