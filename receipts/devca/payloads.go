package devca

import "time"

// TransactionPayload is a JWSTransactionDecodedPayload with Apple's field
// names and units, ready for Sign. Dates are milliseconds since the epoch.
type TransactionPayload struct {
	TransactionID         string `json:"transactionId"`
	OriginalTransactionID string `json:"originalTransactionId"`
	WebOrderLineItemID    string `json:"webOrderLineItemId,omitempty"`
	BundleID              string `json:"bundleId"`
	ProductID             string `json:"productId"`
	SubscriptionGroupID   string `json:"subscriptionGroupIdentifier,omitempty"`
	PurchaseDate          int64  `json:"purchaseDate"`
	OriginalPurchaseDate  int64  `json:"originalPurchaseDate"`
	ExpiresDate           int64  `json:"expiresDate,omitempty"`
	Quantity              int64  `json:"quantity"`
	Type                  string `json:"type"`
	AppAccountToken       string `json:"appAccountToken,omitempty"`
	InAppOwnershipType    string `json:"inAppOwnershipType"`
	SignedDate            int64  `json:"signedDate"`
	RevocationReason      *int   `json:"revocationReason,omitempty"`
	RevocationDate        int64  `json:"revocationDate,omitempty"`
	RevocationType        string `json:"revocationType,omitempty"`
	RevocationPercentage  int64  `json:"revocationPercentage,omitempty"`
	Environment           string `json:"environment"`
	TransactionReason     string `json:"transactionReason"`
	Storefront            string `json:"storefront"`
	StorefrontID          string `json:"storefrontId"`
	Price                 int64  `json:"price"`
	Currency              string `json:"currency"`
}

// Consumable is the payload of a consumable purchase at t, as StoreKit
// would sign it: quantity 1, bought by the user whose token is given.
func Consumable(bundleID, environment, productID, transactionID, appAccountToken string, t time.Time) TransactionPayload {
	return TransactionPayload{
		TransactionID: transactionID, OriginalTransactionID: transactionID, BundleID: bundleID,
		ProductID: productID, PurchaseDate: Millis(t), OriginalPurchaseDate: Millis(t), Quantity: 1,
		Type: "Consumable", AppAccountToken: appAccountToken, InAppOwnershipType: "PURCHASED",
		SignedDate: Millis(t), Environment: environment, TransactionReason: "PURCHASE",
		Storefront: "USA", StorefrontID: "143441", Price: 3990, Currency: "USD",
	}
}

// RenewalPayload is a JWSRenewalInfoDecodedPayload.
type RenewalPayload struct {
	OriginalTransactionID  string `json:"originalTransactionId"`
	AutoRenewProductID     string `json:"autoRenewProductId"`
	ProductID              string `json:"productId"`
	AutoRenewStatus        int    `json:"autoRenewStatus"`
	ExpirationIntent       int    `json:"expirationIntent,omitempty"`
	GracePeriodExpiresDate int64  `json:"gracePeriodExpiresDate,omitempty"`
	IsInBillingRetryPeriod *bool  `json:"isInBillingRetryPeriod,omitempty"`
	SignedDate             int64  `json:"signedDate"`
	Environment            string `json:"environment"`
	RecentSubStartDate     int64  `json:"recentSubscriptionStartDate,omitempty"`
	RenewalDate            int64  `json:"renewalDate,omitempty"`
	AppAccountToken        string `json:"appAccountToken,omitempty"`
}

// NotificationPayload is a ResponseBodyV2DecodedPayload.
type NotificationPayload struct {
	NotificationType string            `json:"notificationType"`
	Subtype          string            `json:"subtype,omitempty"`
	NotificationUUID string            `json:"notificationUUID"`
	Version          string            `json:"version"`
	SignedDate       int64             `json:"signedDate"`
	Data             *NotificationData `json:"data,omitempty"`
}

// NotificationData is a notification's data object; the signed inner
// payloads are JWS strings made with Sign.
type NotificationData struct {
	AppAppleID               int64  `json:"appAppleId,omitempty"`
	BundleID                 string `json:"bundleId"`
	BundleVersion            string `json:"bundleVersion,omitempty"`
	Environment              string `json:"environment"`
	SignedTransactionInfo    string `json:"signedTransactionInfo,omitempty"`
	SignedRenewalInfo        string `json:"signedRenewalInfo,omitempty"`
	Status                   int    `json:"status,omitempty"`
	ConsumptionRequestReason string `json:"consumptionRequestReason,omitempty"`
}

// Millis is t in Apple's unit, milliseconds since the epoch.
func Millis(t time.Time) int64 { return t.UnixMilli() }
