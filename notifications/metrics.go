package notifications

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/creditsd/creditsd/receipts"
)

// Metrics counts what the notification path does.
type Metrics struct {
	processed *prometheus.CounterVec
	refused   *prometheus.CounterVec
	failures  prometheus.Counter
}

// NewMetrics registers the notification metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "creditsd_notifications_total",
			Help: "Verified notifications recorded, by type, outcome and whether they were duplicates.",
		}, []string{"type", "outcome", "duplicate"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "creditsd_notifications_rejected_total",
			Help: "Notifications that did not verify, by reason.",
		}, []string{"code"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "creditsd_notifications_record_failures_total",
			Help: "Verified notifications that could not be recorded (answered 5xx so Apple retries).",
		}),
	}
	reg.MustRegister(m.processed, m.refused, m.failures)
	return m
}

func (m *Metrics) recorded(r Result) {
	if m == nil {
		return
	}
	dup := "false"
	if r.Duplicate {
		dup = "true"
	}
	m.processed.WithLabelValues(r.Type, r.Outcome, dup).Inc()
}

func (m *Metrics) rejected(err error) {
	if m == nil {
		return
	}
	code := "unknown"
	var ve *receipts.Error
	if errors.As(err, &ve) {
		code = string(ve.Code)
	}
	m.refused.WithLabelValues(code).Inc()
}

func (m *Metrics) failed() {
	if m != nil {
		m.failures.Inc()
	}
}
