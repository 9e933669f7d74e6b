package main

import (
	"net/http"
	"time"

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
	mux.Handle("GET /metrics", promhttp.HandlerFor(&sharedGatherer{g: a.registry, now: time.Now}, promhttp.HandlerOpts{}))
	return a.instrument(recoverPanics(a.log, problemsForUnrouted(mux)))
}

// problemsForUnrouted answers what the mux has no route for with
// problem+json: 404 not_found, or 405 method_not_allowed with the mux's
// Allow header, instead of the mux's plain text.
func problemsForUnrouted(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &statusProbe{header: http.Header{}}
		mux.ServeHTTP(probe, r)
		if allow := probe.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		code, kind := "not_found", entitlements.KindNotFound
		if probe.status == http.StatusMethodNotAllowed {
			code, kind = "method_not_allowed", entitlements.KindMethodNotAllowed
		}
		entitlements.WriteError(w, r, nil, entitlements.Errorf(kind, code, "no endpoint %s %s", r.Method, r.URL.Path))
	})
}

// statusProbe records what the mux would answer, writing nothing.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(code int)        { p.status = code }

func healthz(w http.ResponseWriter, r *http.Request) {
	entitlements.WriteJSON(w, r, nil, http.StatusOK, map[string]string{"status": "ok"}) // no logger: a map of strings always marshals
}

// readyz is ready when the database answers. Nothing a job does delays it.
func (a *app) readyz(w http.ResponseWriter, r *http.Request) {
	if err := a.db.Ping(r.Context()); err != nil {
		if r.Context().Err() != nil { // the client hung up: no news of the database
			entitlements.WriteError(w, r, a.log, err)
			return
		}
		a.log.Warn("not ready", "err", err)
		entitlements.WriteError(w, r, a.log, entitlements.Errorf(entitlements.KindUnavailable, "not_ready",
			"the database does not answer, or this binary may not write to it (see the log)"))
		return
	}
	entitlements.WriteJSON(w, r, a.log, http.StatusOK, map[string]string{"status": "ready"})
}
