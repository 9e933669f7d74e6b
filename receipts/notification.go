package receipts

import (
	"encoding/json"
	"strings"
	"time"
)

// Notification is Apple's App Store Server Notification V2
// (ResponseBodyV2DecodedPayload). Transaction and Renewal hold the nested
// signedTransactionInfo and signedRenewalInfo, verified as strictly as the
// notification itself; they are nil when Apple sent none.
type Notification struct {
	NotificationType      string                 `json:"notificationType,omitempty"`
	Subtype               string                 `json:"subtype,omitempty"`
	NotificationUUID      string                 `json:"notificationUUID,omitempty"`
	Version               string                 `json:"version,omitempty"`
	SignedDate            time.Time              `json:"-"`
	Data                  *NotificationData      `json:"data,omitempty"`
	Summary               *NotificationSummary   `json:"summary,omitempty"`
	ExternalPurchaseToken *ExternalPurchaseToken `json:"externalPurchaseToken,omitempty"`
	AppData               *AppData               `json:"appData,omitempty"`

	Transaction *Transaction `json:"-"` // verified signedTransactionInfo, nil if absent
	Renewal     *RenewalInfo `json:"-"` // verified signedRenewalInfo, nil if absent

	Raw json.RawMessage `json:"-"` // the verified payload JSON
	JWS string          `json:"-"` // the signedPayload it came from
}

// NotificationData is the data object of most notification types.
type NotificationData struct {
	AppAppleID               int64  `json:"appAppleId,omitempty"`
	BundleID                 string `json:"bundleId,omitempty"`
	BundleVersion            string `json:"bundleVersion,omitempty"`
	Environment              string `json:"environment,omitempty"`
	SignedTransactionInfo    string `json:"signedTransactionInfo,omitempty"`
	SignedRenewalInfo        string `json:"signedRenewalInfo,omitempty"`
	Status                   int    `json:"status,omitempty"`
	ConsumptionRequestReason string `json:"consumptionRequestReason,omitempty"`
}

// NotificationSummary replaces data in RENEWAL_EXTENSION summary notifications.
type NotificationSummary struct {
	RequestIdentifier      string   `json:"requestIdentifier,omitempty"`
	Environment            string   `json:"environment,omitempty"`
	AppAppleID             int64    `json:"appAppleId,omitempty"`
	BundleID               string   `json:"bundleId,omitempty"`
	ProductID              string   `json:"productId,omitempty"`
	StorefrontCountryCodes []string `json:"storefrontCountryCodes,omitempty"`
	SucceededCount         int64    `json:"succeededCount,omitempty"`
	FailedCount            int64    `json:"failedCount,omitempty"`
}

// ExternalPurchaseToken replaces data in EXTERNAL_PURCHASE_TOKEN
// notifications. Apple's verifier reads the app identity from it, so we do
// too, rather than refusing a notification Apple's libraries accept.
type ExternalPurchaseToken struct {
	ExternalPurchaseID string    `json:"externalPurchaseId,omitempty"`
	TokenCreationDate  time.Time `json:"-"`
	AppAppleID         int64     `json:"appAppleId,omitempty"`
	BundleID           string    `json:"bundleId,omitempty"`
}

// AppData replaces data in RESCIND_CONSENT notifications (App Store Server
// Notifications 2.19). Its signedAppTransactionInfo is kept in the stored
// payload but not verified or read: nothing here acts on app transactions.
type AppData struct {
	AppAppleID               int64  `json:"appAppleId,omitempty"`
	BundleID                 string `json:"bundleId,omitempty"`
	Environment              string `json:"environment,omitempty"`
	SignedAppTransactionInfo string `json:"signedAppTransactionInfo,omitempty"`
}

// UnmarshalJSON reads Apple's JSON (tokenCreationDate in milliseconds).
func (e *ExternalPurchaseToken) UnmarshalJSON(b []byte) error {
	type plain ExternalPurchaseToken
	var aux struct {
		*plain
		TokenCreationDate millis `json:"tokenCreationDate,omitempty"`
	}
	aux.plain = (*plain)(e)
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	e.TokenCreationDate = aux.TokenCreationDate.time()
	return nil
}

// MarshalJSON writes Apple's JSON.
func (e ExternalPurchaseToken) MarshalJSON() ([]byte, error) {
	type plain ExternalPurchaseToken
	return json.Marshal(struct {
		plain
		TokenCreationDate millis `json:"tokenCreationDate,omitempty"`
	}{plain(e), toMillis(e.TokenCreationDate)})
}

// BundleID is the app the notification is for, from data, summary,
// externalPurchaseToken or appData, in Apple's order; "" when none is
// present.
func (n *Notification) BundleID() string {
	switch {
	case n.Data != nil:
		return n.Data.BundleID
	case n.Summary != nil:
		return n.Summary.BundleID
	case n.ExternalPurchaseToken != nil:
		return n.ExternalPurchaseToken.BundleID
	case n.AppData != nil:
		return n.AppData.BundleID
	}
	return ""
}

// AppAppleID is the App Store app id, read like BundleID.
func (n *Notification) AppAppleID() int64 {
	switch {
	case n.Data != nil:
		return n.Data.AppAppleID
	case n.Summary != nil:
		return n.Summary.AppAppleID
	case n.ExternalPurchaseToken != nil:
		return n.ExternalPurchaseToken.AppAppleID
	case n.AppData != nil:
		return n.AppData.AppAppleID
	}
	return 0
}

// Environment is the notification's environment, read like BundleID. An
// external purchase token carries none; Apple's rule derives it from the
// token id's SANDBOX prefix.
func (n *Notification) Environment() string {
	switch {
	case n.Data != nil:
		return n.Data.Environment
	case n.Summary != nil:
		return n.Summary.Environment
	case n.ExternalPurchaseToken != nil:
		if strings.HasPrefix(n.ExternalPurchaseToken.ExternalPurchaseID, "SANDBOX") {
			return Sandbox
		}
		return Production
	case n.AppData != nil:
		return n.AppData.Environment
	}
	return ""
}

func (n *Notification) signedAt() time.Time { return n.SignedDate }

// UnmarshalJSON reads Apple's JSON. It does not verify the nested JWS;
// VerifyNotification does.
func (n *Notification) UnmarshalJSON(b []byte) error {
	type plain Notification
	var aux struct {
		*plain
		SignedDate millis `json:"signedDate,omitempty"`
	}
	aux.plain = (*plain)(n)
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	n.SignedDate = aux.SignedDate.time()
	return nil
}

// MarshalJSON writes Apple's JSON (signedDate in milliseconds), so a
// simulator can sign a Notification with devca.
func (n Notification) MarshalJSON() ([]byte, error) {
	type plain Notification
	return json.Marshal(struct {
		plain
		SignedDate millis `json:"signedDate,omitempty"`
	}{plain(n), toMillis(n.SignedDate)})
}
