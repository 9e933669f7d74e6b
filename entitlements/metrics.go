package entitlements

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what the spend endpoints do. Credits granted, spent,
// expired and refunded are read from the ledger's running totals instead,
// so they are exact whichever path wrote them.
type Metrics struct {
	spends  *prometheus.CounterVec
	refused *prometheus.CounterVec
}

// NewMetrics registers the spend metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		spends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "creditsd_spends_total", Help: "Spends charged, by product.",
		}, []string{"product"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "creditsd_spends_refused_total", Help: "Spends refused, by problem code (402s are insufficient_credits and debt_outstanding).",
		}, []string{"code"}),
	}
	reg.MustRegister(m.spends, m.refused)
	return m
}

func (m *Metrics) spent(sp Spend) {
	if m != nil {
		m.spends.WithLabelValues(sp.Product).Inc()
	}
}

func (m *Metrics) refusedSpend(err error) {
	var e *Error
	if m != nil && errors.As(err, &e) && e.Kind == KindPaymentRequired {
		m.refused.WithLabelValues(e.Code).Inc()
	}
}
