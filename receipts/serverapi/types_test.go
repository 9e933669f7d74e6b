package serverapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/receipts"
)

// The body's field names are Apple's ConsumptionRequest's, exactly.
func TestConsumptionInfoJSON(t *testing.T) {
	b, err := json.Marshal(ConsumptionInfo{
		CustomerConsented: true, DeliveryStatus: DeliveryDelivered, ConsumptionPercentage: Percent(25000),
		RefundPreference: RefundGrantProrated, SampleContentProvided: true,
	})
	require.NoError(t, err)
	require.JSONEq(t, `{"customerConsented":true,"deliveryStatus":"DELIVERED","consumptionPercentage":25000,
		"refundPreference":"GRANT_PRORATED","sampleContentProvided":true}`, string(b))

	b, err = json.Marshal(ConsumptionInfo{CustomerConsented: true, DeliveryStatus: DeliveryUndeliveredOther, ConsumptionPercentage: Percent(0)})
	require.NoError(t, err)
	require.JSONEq(t, `{"customerConsented":true,"deliveryStatus":"UNDELIVERED_OTHER","consumptionPercentage":0,
		"sampleContentProvided":false}`, string(b), "refundPreference is optional and omitted; a percentage of 0 is sent")

	// An auto-renewable subscription's answer has no consumptionPercentage:
	// Apple refuses one (errorCode 4000209) and computes it from the time elapsed.
	b, err = json.Marshal(ConsumptionInfo{CustomerConsented: true, DeliveryStatus: DeliveryDelivered, RefundPreference: RefundGrantProrated})
	require.NoError(t, err)
	require.JSONEq(t, `{"customerConsented":true,"deliveryStatus":"DELIVERED","refundPreference":"GRANT_PRORATED",
		"sampleContentProvided":false}`, string(b))
}

func TestNotificationHistoryRequestJSON(t *testing.T) {
	b, err := json.Marshal(NotificationHistoryRequest{StartDate: 1, EndDate: 2, NotificationType: "REFUND",
		NotificationSubtype: "X", OnlyFailures: true})
	require.NoError(t, err)
	require.JSONEq(t, `{"startDate":1,"endDate":2,"notificationType":"REFUND","notificationSubtype":"X","onlyFailures":true}`, string(b))
	b, err = json.Marshal(NotificationHistoryRequest{StartDate: 1, EndDate: 2, TransactionID: "7"})
	require.NoError(t, err)
	require.JSONEq(t, `{"startDate":1,"endDate":2,"transactionId":"7"}`, string(b))
}

func TestConsumptionInfoValidate(t *testing.T) {
	ok := ConsumptionInfo{CustomerConsented: true, DeliveryStatus: DeliveryDelivered, ConsumptionPercentage: Percent(100000)}
	require.NoError(t, ok.validate())
	require.NoError(t, ConsumptionInfo{CustomerConsented: true, DeliveryStatus: DeliveryUndeliveredOther}.validate(), "no percentage")
	for name, mutate := range map[string]func(*ConsumptionInfo){
		"ErrNoConsent":            func(c *ConsumptionInfo) { c.CustomerConsented = false },
		"ErrNoDeliveryStatus":     func(c *ConsumptionInfo) { c.DeliveryStatus = "" },
		"ErrPercentAbove100":      func(c *ConsumptionInfo) { c.ConsumptionPercentage = Percent(100001) },
		"ErrPercentNegative":      func(c *ConsumptionInfo) { c.ConsumptionPercentage = Percent(-1) },
		"ErrPercentUndelivered":   func(c *ConsumptionInfo) { c.DeliveryStatus = DeliveryUndeliveredServerOutage },
		"ErrUnknownRefundPrefers": func(c *ConsumptionInfo) { c.RefundPreference = "GRANT_HALF" },
		"ErrUnknownDelivery":      func(c *ConsumptionInfo) { c.DeliveryStatus = "LOST" },
		// Apple: GRANT_PRORATED needs a percentage above 0 and below 100000.
		"ErrProratedAtAll": func(c *ConsumptionInfo) { c.RefundPreference = RefundGrantProrated },
		"ErrProratedAtZero": func(c *ConsumptionInfo) {
			c.RefundPreference, c.ConsumptionPercentage = RefundGrantProrated, Percent(0)
		},
		"ErrProratedUndelivered": func(c *ConsumptionInfo) {
			c.RefundPreference, c.ConsumptionPercentage, c.DeliveryStatus = RefundGrantProrated, Percent(0), DeliveryUndeliveredOther
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := ok
			mutate(&c)
			require.ErrorIs(t, c.validate(), ErrInvalidRequest)
		})
	}
	for name, c := range map[string]ConsumptionInfo{
		"prorated":              {CustomerConsented: true, DeliveryStatus: DeliveryDelivered, ConsumptionPercentage: Percent(1), RefundPreference: RefundGrantProrated},
		"prorated, at 99.999 %": {CustomerConsented: true, DeliveryStatus: DeliveryDelivered, ConsumptionPercentage: Percent(99999), RefundPreference: RefundGrantProrated},
		"subscription":          {CustomerConsented: true, DeliveryStatus: DeliveryDelivered, RefundPreference: RefundGrantProrated},
		"full, nothing used":    {CustomerConsented: true, DeliveryStatus: DeliveryDelivered, ConsumptionPercentage: Percent(0), RefundPreference: RefundGrantFull},
	} {
		require.NoError(t, c.validate(), name)
	}
}

func TestNotificationHistoryRequestValidate(t *testing.T) {
	require.NoError(t, NotificationHistoryRequest{StartDate: 1, EndDate: 2}.validate())
	for name, r := range map[string]NotificationHistoryRequest{
		"ErrNoDates":        {},
		"ErrStartAfterEnd":  {StartDate: 2, EndDate: 1},
		"ErrSubtypeAlone":   {StartDate: 1, EndDate: 2, NotificationSubtype: "SUMMARY"},
		"ErrTxAndType":      {StartDate: 1, EndDate: 2, TransactionID: "1", NotificationType: "REFUND"},
		"ErrStartEqualsEnd": {StartDate: 2, EndDate: 2},
	} {
		require.Error(t, r.validate(), name)
	}
}

func TestCheckTransactionID(t *testing.T) {
	for _, id := range []string{"2000000123456789", "0", "abc_DEF-9"} {
		require.NoError(t, checkTransactionID(id), id)
	}
	for _, id := range []string{"", "../consumption", "1?x=1", "1/2", "1%2F", "é", string(make([]byte, 65))} {
		require.Error(t, checkTransactionID(id), id)
	}
}

// Apple's documented retention of notification history.
func TestHistoryRetention(t *testing.T) {
	require.Equal(t, 180*24*time.Hour, HistoryRetention(receipts.Production))
	require.Equal(t, 30*24*time.Hour, HistoryRetention(receipts.Sandbox))
	require.Zero(t, HistoryRetention(receipts.LocalTesting), "no API, no history")
}
