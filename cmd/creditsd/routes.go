package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/creditsd/creditsd/entitlements"
)

// routes is every endpoint in one place. Apple's webhook and the health and
// metrics endpoints take no token; everything else does.
func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	auth := a.settings.Auth.Middleware
	mux.Handle("POST /v1/appstore/notifications", a.inbox)
	mux.Handle("POST /v1/me/transactions", auth(http.HandlerFunc(a.ledger.PostTransaction)))
	mux.Handle("GET /v1/me/entitlement", auth(http.HandlerFunc(a.ledger.GetMyEntitlement)))
	mux.Handle("GET /v1/users/{user_id}/entitlement", auth(http.HandlerFunc(a.ledger.GetUserEntitlement)))
	mux.Handle("POST /v1/users/{user_id}/spends", auth(http.HandlerFunc(a.ledger.PostSpend)))
	mux.Handle("POST /v1/users/{user_id}/spends/{spend_id}/reverse", auth(http.HandlerFunc(a.ledger.PostReverse)))
	mux.Handle("POST /v1/users/{user_id}/grants", auth(http.HandlerFunc(a.ledger.PostGrant)))
	mux.Handle("GET /v1/users/{user_id}/ledger", auth(http.HandlerFunc(a.ledger.GetLedger)))
	mux.Handle("PUT /v1/users/{user_id}/tier", auth(http.HandlerFunc(a.ledger.PutTier)))
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", notFound)
	return a.instrument(recoverPanics(a.log, mux))
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	entitlements.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz is ready when the database answers. Nothing a job does delays it.
func (a *app) readyz(w http.ResponseWriter, r *http.Request) {
	if err := a.db.Ping(r.Context()); err != nil {
		a.log.Warn("not ready", "err", err)
		entitlements.WriteProblem(w, entitlements.Problem{Type: "urn:creditsd:problem:not_ready", Title: "Service Unavailable",
			Status: http.StatusServiceUnavailable, Detail: "the database does not answer", Code: "not_ready"})
		return
	}
	entitlements.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func notFound(w http.ResponseWriter, r *http.Request) {
	entitlements.WriteError(w, r, nil, entitlements.Errorf(entitlements.KindNotFound, "not_found", "no endpoint %s %s", r.Method, r.URL.Path))
}
