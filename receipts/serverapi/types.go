package serverapi

import (
	"errors"
	"fmt"
	"time"

	"github.com/creditsd/creditsd/receipts"
)

// How far back Apple keeps notification history, by environment (Get
// Notification History: "the past 180 days in the production environment,
// and the past 30 days in the sandbox environment"). A request whose
// startDate is older is refused with CodeStartDateTooFarInPast; Apple
// checks when the request arrives, so leave a margin.
const (
	ProductionHistoryRetention = 180 * 24 * time.Hour
	SandboxHistoryRetention    = 30 * 24 * time.Hour
)

// HistoryRetention is how far back Apple keeps environment's notification
// history; 0 for an environment the API does not serve.
func HistoryRetention(environment string) time.Duration {
	switch environment {
	case receipts.Production:
		return ProductionHistoryRetention
	case receipts.Sandbox:
		return SandboxHistoryRetention
	}
	return 0
}

// NotificationHistoryRequest is Apple's NotificationHistoryRequest. Dates
// are milliseconds since the epoch; StartDate and EndDate are required.
// Give TransactionID or NotificationType, not both (Apple refuses both).
type NotificationHistoryRequest struct {
	StartDate           int64  `json:"startDate"`
	EndDate             int64  `json:"endDate"`
	NotificationType    string `json:"notificationType,omitempty"`
	NotificationSubtype string `json:"notificationSubtype,omitempty"`
	TransactionID       string `json:"transactionId,omitempty"`
	// OnlyFailures asks only for notifications that never reached us.
	OnlyFailures bool `json:"onlyFailures,omitempty"`
}

func (r NotificationHistoryRequest) validate() error {
	switch {
	case r.StartDate <= 0 || r.EndDate <= 0:
		return errors.New("serverapi: notification history needs StartDate and EndDate")
	case r.StartDate >= r.EndDate:
		return errors.New("serverapi: notification history StartDate must precede EndDate")
	case r.NotificationSubtype != "" && r.NotificationType == "":
		return errors.New("serverapi: notification history NotificationSubtype needs NotificationType")
	case r.TransactionID != "" && r.NotificationType != "":
		return errors.New("serverapi: notification history takes TransactionID or NotificationType, not both")
	}
	return nil
}

// NotificationHistoryResponse is one page of Apple's answer. While HasMore,
// ask again with PaginationToken and the same request.
type NotificationHistoryResponse struct {
	NotificationHistory []NotificationHistoryItem `json:"notificationHistory"`
	HasMore             bool                      `json:"hasMore"`
	PaginationToken     string                    `json:"paginationToken"`
}

// NotificationHistoryItem is Apple's notificationHistoryResponseItem.
// SignedPayload is the same JWS the webhook receives: verify it with
// receipts.Verifier like any other.
type NotificationHistoryItem struct {
	SignedPayload string        `json:"signedPayload"`
	SendAttempts  []SendAttempt `json:"sendAttempts"`
}

// SendAttempt is Apple's sendAttemptItem: one delivery attempt to our
// webhook, at AttemptDate (ms), with a result such as "SUCCESS",
// "TIMED_OUT" or "UNSUCCESSFUL_HTTP_RESPONSE_CODE".
type SendAttempt struct {
	AttemptDate       int64  `json:"attemptDate"`
	SendAttemptResult string `json:"sendAttemptResult"`
}

// ConsumptionInfo is the body of Send Consumption Information (Apple's
// ConsumptionRequest, the v2 endpoint's). ConsumptionPercentage is in
// milliunits, 0 to 100000; nil leaves it out, as Apple requires for an
// auto-renewable subscription (it computes the share from the time
// elapsed, and answers 400 errorCode 4000209 to one that has it). For
// other products send it, 0 included.
type ConsumptionInfo struct {
	CustomerConsented     bool   `json:"customerConsented"`
	DeliveryStatus        string `json:"deliveryStatus"`
	ConsumptionPercentage *int   `json:"consumptionPercentage,omitempty"`
	RefundPreference      string `json:"refundPreference,omitempty"`
	SampleContentProvided bool   `json:"sampleContentProvided"`
}

// Percent is a ConsumptionPercentage of n milliunits.
func Percent(n int) *int { return &n }

// Apple's deliveryStatus values.
const (
	DeliveryDelivered               = "DELIVERED"
	DeliveryUndeliveredQualityIssue = "UNDELIVERED_QUALITY_ISSUE"
	DeliveryUndeliveredWrongItem    = "UNDELIVERED_WRONG_ITEM"
	DeliveryUndeliveredServerOutage = "UNDELIVERED_SERVER_OUTAGE"
	DeliveryUndeliveredOther        = "UNDELIVERED_OTHER"
)

// maxConsumptionPercentage is 100 % in Apple's milliunits.
const maxConsumptionPercentage = 100000

// Apple's refundPreference values; empty states no preference.
const (
	RefundDecline       = "DECLINE"
	RefundGrantFull     = "GRANT_FULL"
	RefundGrantProrated = "GRANT_PRORATED"
)

// ErrInvalidRequest is what a request the client refuses to send, before
// any request, wraps: Apple would refuse it with a 400, now and later.
var ErrInvalidRequest = errors.New("serverapi: invalid request")

// validate refuses, before any request, what Apple documents it would
// answer 400 to, so the mistake is named here rather than by an errorCode.
// Apple's rules (ConsumptionRequest, consumptionPercentage,
// refundPreference): consent must be true; a percentage is 0 to 100000,
// and 0 unless the purchase was DELIVERED; GRANT_PRORATED with a percentage
// needs one above 0 and below 100000 (an auto-renewable subscription sends
// none, and Apple prorates by the time elapsed). Whether the transaction is
// an auto-renewable subscription only Apple knows here.
func (c ConsumptionInfo) validate() error {
	err := c.check()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return nil
}

func (c ConsumptionInfo) check() error {
	if !c.CustomerConsented {
		return errors.New("consumption info may only be sent with the customer's consent (Apple refuses customerConsented=false)")
	}
	switch c.DeliveryStatus {
	case DeliveryDelivered, DeliveryUndeliveredQualityIssue, DeliveryUndeliveredWrongItem, DeliveryUndeliveredServerOutage, DeliveryUndeliveredOther:
	case "":
		return errors.New("consumption info needs a DeliveryStatus")
	default:
		return fmt.Errorf("DeliveryStatus %q is not one of Apple's", c.DeliveryStatus)
	}
	switch c.RefundPreference {
	case "", RefundDecline, RefundGrantFull, RefundGrantProrated:
	default:
		return fmt.Errorf("RefundPreference %q is not DECLINE, GRANT_FULL or GRANT_PRORATED", c.RefundPreference)
	}
	if c.ConsumptionPercentage == nil {
		return nil
	}
	switch pct := *c.ConsumptionPercentage; {
	case pct < 0 || pct > maxConsumptionPercentage:
		return fmt.Errorf("ConsumptionPercentage %d is outside 0-%d milliunits", pct, maxConsumptionPercentage)
	case c.DeliveryStatus != DeliveryDelivered && pct != 0:
		return errors.New("ConsumptionPercentage must be 0 unless DeliveryStatus is DELIVERED")
	case c.RefundPreference == RefundGrantProrated && (pct == 0 || pct == maxConsumptionPercentage):
		return fmt.Errorf("GRANT_PRORATED needs a ConsumptionPercentage above 0 and below %d, not %d", maxConsumptionPercentage, pct)
	}
	return nil
}

// checkTransactionID keeps ids to Apple's alphabet: they go into a URL
// path, and "../" or "?" there would address another endpoint.
func checkTransactionID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("%w: transaction id must be 1-64 characters, got %d", ErrInvalidRequest, len(id))
	}
	for _, c := range []byte(id) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_') {
			return fmt.Errorf("%w: transaction id holds a character outside [0-9A-Za-z_-]", ErrInvalidRequest)
		}
	}
	return nil
}
