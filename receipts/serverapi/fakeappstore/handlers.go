package fakeappstore

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/creditsd/creditsd/receipts/serverapi"
)

func (s *Server) routes(mux *http.ServeMux, prefix, env string) {
	mux.HandleFunc("GET "+prefix+"/inApps/v1/transactions/{transactionId}", func(w http.ResponseWriter, r *http.Request) {
		s.getTransactionInfo(w, r, env)
	})
	mux.HandleFunc("POST "+prefix+"/inApps/v1/notifications/history", func(w http.ResponseWriter, r *http.Request) {
		s.getNotificationHistory(w, r, env)
	})
	mux.HandleFunc("PUT "+prefix+"/inApps/v2/transactions/consumption/{transactionId}", func(w http.ResponseWriter, r *http.Request) {
		s.sendConsumption(w, r, env)
	})
}

// getTransactionInfo answers {"signedTransactionInfo"}, 400 for an id
// that is not a number, or 404 for a transaction of another environment or
// bundle, as Apple does.
func (s *Server) getTransactionInfo(w http.ResponseWriter, r *http.Request, env string) {
	id := r.PathValue("transactionId")
	if strings.Trim(id, "0123456789") != "" || id == "" {
		writeError(w, http.StatusBadRequest, serverapi.CodeInvalidTransactionID, "Invalid transaction id.")
		return
	}
	s.mu.Lock()
	s.asked = append(s.asked, id)
	s.mu.Unlock()
	p, ok := s.transaction(id, env)
	if !ok {
		writeError(w, http.StatusNotFound, serverapi.CodeTransactionIDNotFound, "Transaction id not found.")
		return
	}
	if p.SignedDate == 0 {
		p.SignedDate = time.Now().UnixMilli()
	}
	jws, err := s.opts.CA.Sign(p)
	if err != nil {
		s.t.Errorf("fakeappstore: signing transaction: %v", err)
		writeError(w, http.StatusInternalServerError, serverapi.CodeGeneralInternal, "An unknown error occurred.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"signedTransactionInfo": jws})
}

func (s *Server) getNotificationHistory(w http.ResponseWriter, r *http.Request, env string) {
	var req serverapi.NotificationHistoryRequest
	if !decodeStrict(w, r, &req) {
		return
	}
	if code, msg := checkHistoryRequest(req, env, time.Now()); code != 0 {
		writeError(w, http.StatusBadRequest, code, msg)
		return
	}
	offset := 0
	if tok := r.URL.Query().Get("paginationToken"); tok != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(tok, "page-"))
		if err != nil || !strings.HasPrefix(tok, "page-") || n < 0 {
			writeError(w, http.StatusBadRequest, serverapi.CodeInvalidPaginationToken, "Invalid pagination token.")
			return
		}
		offset = n
	}
	writeJSON(w, http.StatusOK, s.historyPage(req, offset))
}

// historyRetention is how far back Apple keeps each environment's
// notification history, as its documentation of Get Notification History
// says; written out here rather than taken from serverapi, so that the fake
// holds the client to Apple's rule, not to the client's own idea of it.
var historyRetention = map[string]time.Duration{
	receipts.Production: 180 * 24 * time.Hour,
	receipts.Sandbox:    30 * 24 * time.Hour,
}

// checkHistoryRequest refuses what Apple refuses. now is when the request
// arrived: like Apple, the fake measures a startDate's age then.
func checkHistoryRequest(req serverapi.NotificationHistoryRequest, env string, now time.Time) (int64, string) {
	switch {
	case req.StartDate <= 0:
		return serverapi.CodeInvalidStartDate, "Invalid start date."
	case req.EndDate <= 0:
		return serverapi.CodeInvalidEndDate, "Invalid end date."
	case req.StartDate > req.EndDate:
		return serverapi.CodeStartDateAfterEndDate, "Start date after end date."
	case req.TransactionID != "" && req.NotificationType != "":
		return serverapi.CodeMultipleFiltersSupplied, "Invalid request. Supply either a transaction id or a notification type, but not both."
	case req.StartDate < now.Add(-historyRetention[env]).UnixMilli():
		return serverapi.CodeStartDateTooFarInPast, "Invalid request. The start date is earlier than the allowed start date."
	}
	return 0, ""
}

// historyPage filters the notifications, oldest first, and cuts the page
// at offset; the pagination token is the next offset.
func (s *Server) historyPage(req serverapi.NotificationHistoryRequest, offset int) serverapi.NotificationHistoryResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	var match []notification
	for _, n := range s.notifications {
		if n.matches(req) {
			match = append(match, n)
		}
	}
	resp := serverapi.NotificationHistoryResponse{NotificationHistory: []serverapi.NotificationHistoryItem{}}
	end := min(offset+s.opts.PageSize, len(match))
	for _, n := range match[min(offset, end):end] {
		resp.NotificationHistory = append(resp.NotificationHistory, n.item())
	}
	if end < len(match) {
		resp.HasMore, resp.PaginationToken = true, "page-"+strconv.Itoa(end)
	}
	return resp
}

// consumptionFields are Apple's ConsumptionRequest fields (true: required).
// Checking raw names catches a client whose JSON tags drift from Apple's.
var consumptionFields = map[string]bool{
	"customerConsented": true, "deliveryStatus": true, "sampleContentProvided": true,
	"consumptionPercentage": false, "refundPreference": false,
}

func (s *Server) sendConsumption(w http.ResponseWriter, r *http.Request, env string) {
	id := r.PathValue("transactionId")
	tx, ok := s.transaction(id, env)
	if !ok {
		writeError(w, http.StatusNotFound, serverapi.CodeTransactionIDNotFound, "Transaction id not found.")
		return
	}
	var raw map[string]json.RawMessage
	var info serverapi.ConsumptionInfo
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err == nil {
		if err = json.Unmarshal(body, &raw); err == nil {
			err = json.Unmarshal(body, &info) // e.g. v1's integer deliveryStatus fails here
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, serverapi.CodeGeneralBadRequest, "Invalid request: "+err.Error())
		return
	}
	if code, msg := checkConsumptionFields(raw); code != 0 {
		writeError(w, http.StatusBadRequest, code, msg)
		return
	}
	if code, msg := checkConsumption(info, tx); code != 0 {
		writeError(w, http.StatusBadRequest, code, msg)
		return
	}
	s.mu.Lock()
	s.consumption[id] = append(s.consumption[id], info)
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// checkConsumption refuses what Apple documents it refuses in a
// ConsumptionRequest for the transaction tx (ConsumptionRequest,
// consumptionPercentage and refundPreference in Apple's documentation).
// Apple names an errorCode for each; the pages give the values of
// 4000035, 4000036 and 4000209 only, so the rest answer Apple's general
// 4000000 with the message of the error Apple names.
func checkConsumption(info serverapi.ConsumptionInfo, tx devca.TransactionPayload) (int64, string) {
	switch info.DeliveryStatus {
	case serverapi.DeliveryDelivered, serverapi.DeliveryUndeliveredQualityIssue, serverapi.DeliveryUndeliveredWrongItem,
		serverapi.DeliveryUndeliveredServerOutage, serverapi.DeliveryUndeliveredOther:
	default:
		return serverapi.CodeInvalidDeliveryStatus, "Invalid request. The delivery status field is invalid."
	}
	switch info.RefundPreference {
	case "", serverapi.RefundDecline, serverapi.RefundGrantFull, serverapi.RefundGrantProrated:
	default:
		return serverapi.CodeGeneralBadRequest, "Invalid request. The refund preference field is invalid. (InvalidRefundPreferenceError)"
	}
	pct := info.ConsumptionPercentage
	switch {
	case !info.CustomerConsented:
		return serverapi.CodeInvalidCustomerConsented, "Invalid request. The customer consented field is invalid."
	case pct != nil && tx.Type == "Auto-Renewable Subscription":
		return serverapi.CodeConsumptionPercentageAutoRenewable,
			"Invalid request. The consumption percentage field is not supported for auto-renewable subscription transactions."
	case pct != nil && (*pct < 0 || *pct > 100000),
		pct != nil && info.RefundPreference == serverapi.RefundGrantProrated && (*pct == 0 || *pct == 100000):
		return serverapi.CodeGeneralBadRequest, "Invalid request. The consumption percentage is outside the valid range. (ConsumptionPercentageOutOfRangeError)"
	case pct != nil && *pct != 0 && info.DeliveryStatus != serverapi.DeliveryDelivered:
		return serverapi.CodeGeneralBadRequest,
			"Invalid request. The consumption percentage must be zero for the provided delivery status. (UndeliveredConsumptionPercentageNonZeroError)"
	}
	return 0, ""
}

func checkConsumptionFields(raw map[string]json.RawMessage) (int64, string) {
	for name := range raw {
		if _, ok := consumptionFields[name]; !ok {
			return serverapi.CodeGeneralBadRequest, "Invalid request: unknown field " + name
		}
	}
	for name, required := range consumptionFields {
		if _, ok := raw[name]; required && !ok {
			code := serverapi.CodeGeneralBadRequest
			switch name {
			case "customerConsented":
				code = serverapi.CodeInvalidCustomerConsented
			case "deliveryStatus":
				code = serverapi.CodeInvalidDeliveryStatus
			case "sampleContentProvided":
				code = serverapi.CodeInvalidSampleContent
			}
			return code, "Invalid request: " + name + " is required"
		}
	}
	return 0, ""
}

func (s *Server) transaction(id, env string) (devca.TransactionPayload, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.transactions[id]
	return p, ok && p.Environment == env && p.BundleID == s.opts.BundleID
}

// decodeStrict decodes a small JSON body, refusing unknown fields, and
// answers 400 itself when it cannot.
func decodeStrict(w http.ResponseWriter, r *http.Request, dst any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		writeError(w, http.StatusBadRequest, serverapi.CodeGeneralBadRequest, "Invalid request: "+err.Error())
		return false
	}
	return true
}

// writeFailure answers a FailNext with the errorCode Apple uses for it.
func writeFailure(w http.ResponseWriter, f failure) {
	if f.retryAfter != "" {
		w.Header().Set("Retry-After", f.retryAfter)
	}
	code, msg := int64(f.status)*10000, http.StatusText(f.status)
	switch {
	case f.status == http.StatusTooManyRequests:
		code, msg = serverapi.CodeRateLimitExceeded, "Rate limit exceeded."
	case f.status == http.StatusNotFound:
		code, msg = serverapi.CodeTransactionIDNotFound, "Transaction id not found."
	case f.status == http.StatusServiceUnavailable:
		code, msg = serverapi.CodeGeneralInternalRetryable, "An unknown retryable error occurred. Please try again."
	case f.status >= 500:
		code, msg = serverapi.CodeGeneralInternal, "An unknown error occurred."
	}
	writeError(w, f.status, code, msg)
}

func writeError(w http.ResponseWriter, status int, code int64, msg string) {
	writeJSON(w, status, map[string]any{"errorCode": code, "errorMessage": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
