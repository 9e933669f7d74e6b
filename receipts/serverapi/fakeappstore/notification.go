package fakeappstore

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"

	"github.com/creditsd/creditsd/receipts/serverapi"
)

// notification is one entry of the history, with what its filters need.
type notification struct {
	signedPayload string
	sentAt        int64 // ms
	failed        bool
	summary
}

// summary is read from the payload without verifying it: the fake only
// needs it to filter, and tests may add deliberately broken payloads.
type summary struct {
	notificationType, subtype string
	transactionIDs            []string // the inner transaction's id and original id
}

func summarize(signedPayload string) summary {
	var p struct {
		NotificationType string `json:"notificationType"`
		Subtype          string `json:"subtype"`
		Data             struct {
			SignedTransactionInfo string `json:"signedTransactionInfo"`
		} `json:"data"`
	}
	decodePayload(signedPayload, &p)
	var tx struct {
		TransactionID         string `json:"transactionId"`
		OriginalTransactionID string `json:"originalTransactionId"`
	}
	decodePayload(p.Data.SignedTransactionInfo, &tx)
	return summary{p.NotificationType, p.Subtype, []string{tx.TransactionID, tx.OriginalTransactionID}}
}

// decodePayload reads a JWS's payload into dst, leaving dst alone when the
// JWS is not one.
func decodePayload(jws string, dst any) {
	parts := strings.Split(jws, ".")
	if len(parts) != 3 {
		return
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return
	}
	_ = json.Unmarshal(b, dst)
}

// matches applies Apple's filters: sent in [startDate, endDate], and the
// optional type, subtype, transaction and failure filters.
func (n notification) matches(req serverapi.NotificationHistoryRequest) bool {
	switch {
	case n.sentAt < req.StartDate || n.sentAt > req.EndDate:
		return false
	case req.OnlyFailures && !n.failed:
		return false
	case req.NotificationType != "" && req.NotificationType != n.notificationType:
		return false
	case req.NotificationSubtype != "" && req.NotificationSubtype != n.subtype:
		return false
	case req.TransactionID != "" && !slices.Contains(n.transactionIDs, req.TransactionID):
		return false
	}
	return true
}

// item is the history entry Apple would serve: one send attempt.
func (n notification) item() serverapi.NotificationHistoryItem {
	result := "SUCCESS"
	if n.failed {
		result = "UNSUCCESSFUL_HTTP_RESPONSE_CODE"
	}
	return serverapi.NotificationHistoryItem{
		SignedPayload: n.signedPayload,
		SendAttempts:  []serverapi.SendAttempt{{AttemptDate: n.sentAt, SendAttemptResult: result}},
	}
}
