package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/creditsd/creditsd/entitlements"
)

// recoverPanics turns a handler's panic into a logged 500 problem instead of
// a dropped connection.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(http.ErrAbortHandler) // net/http's quiet abort, also when the store re-raised it wrapped
				}
				log.ErrorContext(r.Context(), "handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
				// No logger: the line above logged it, with the panic's value.
				entitlements.WriteError(w, r, nil, fmt.Errorf("handler panicked: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// instrument counts requests and their latency by route pattern (never by
// raw path, which would make one series per user).
func (a *app) instrument(next http.Handler) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "creditsd_http_requests_total", Help: "HTTP requests by route and status.",
	}, []string{"route", "status"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "creditsd_http_request_duration_seconds", Help: "HTTP request latency by route.",
		// Up to the longest waits a request may have: the store's 10 s for
		// a lock, a receipt's 20 s for Apple, the 30 s write timeout.
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30},
	}, []string{"route"})
	a.registry.MustRegister(requests, latency)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" || route == "/" {
			route = "unmatched"
		}
		requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
		latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}
