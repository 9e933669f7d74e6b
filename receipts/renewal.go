package receipts

import (
	"encoding/json"
	"time"
)

// RenewalInfo is Apple's JWSRenewalInfoDecodedPayload for an auto-renewable
// subscription. It carries no bundle id, so only its environment can be
// checked against ours. Fields Apple adds later are kept in Raw.
type RenewalInfo struct {
	OriginalTransactionID       string    `json:"originalTransactionId,omitempty"`
	AutoRenewProductID          string    `json:"autoRenewProductId,omitempty"`
	ProductID                   string    `json:"productId,omitempty"`
	AutoRenewStatus             int       `json:"autoRenewStatus"` // 0 off, 1 on: 0 is meaningful, so always written
	ExpirationIntent            int       `json:"expirationIntent,omitempty"`
	GracePeriodExpiresDate      time.Time `json:"-"`
	RecentSubscriptionStartDate time.Time `json:"-"`
	RenewalDate                 time.Time `json:"-"`
	SignedDate                  time.Time `json:"-"`
	IsInBillingRetryPeriod      *bool     `json:"isInBillingRetryPeriod,omitempty"` // nil when absent
	Environment                 string    `json:"environment,omitempty"`
	AppAccountToken             string    `json:"appAccountToken,omitempty"`
	AppTransactionID            string    `json:"appTransactionId,omitempty"`

	Raw json.RawMessage `json:"-"` // the verified payload JSON, every field Apple sent
	JWS string          `json:"-"` // the JWS it came from
}

func (r *RenewalInfo) signedAt() time.Time { return r.SignedDate }

type renewalDates struct {
	GracePeriodExpiresDate      millis `json:"gracePeriodExpiresDate,omitempty"`
	RecentSubscriptionStartDate millis `json:"recentSubscriptionStartDate,omitempty"`
	RenewalDate                 millis `json:"renewalDate,omitempty"`
	SignedDate                  millis `json:"signedDate,omitempty"`
}

// UnmarshalJSON reads Apple's JSON (dates in milliseconds), so that Raw, or
// the payload of a stored JWS, decodes again.
func (r *RenewalInfo) UnmarshalJSON(b []byte) error {
	type plain RenewalInfo
	var aux struct {
		*plain
		renewalDates
	}
	aux.plain = (*plain)(r)
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	d := aux.renewalDates
	r.GracePeriodExpiresDate, r.RecentSubscriptionStartDate = d.GracePeriodExpiresDate.time(), d.RecentSubscriptionStartDate.time()
	r.RenewalDate, r.SignedDate = d.RenewalDate.time(), d.SignedDate.time()
	return nil
}

// MarshalJSON writes Apple's JSON (dates in milliseconds).
func (r RenewalInfo) MarshalJSON() ([]byte, error) {
	type plain RenewalInfo
	return json.Marshal(struct {
		plain
		renewalDates
	}{plain(r), renewalDates{
		GracePeriodExpiresDate:      toMillis(r.GracePeriodExpiresDate),
		RecentSubscriptionStartDate: toMillis(r.RecentSubscriptionStartDate),
		RenewalDate:                 toMillis(r.RenewalDate),
		SignedDate:                  toMillis(r.SignedDate),
	}})
}
