package fakeappstore

import (
	"crypto/ecdsa"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/creditsd/creditsd/receipts/serverapi"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func newTestServer(t *testing.T) (*Server, *ecdsa.PrivateKey) {
	ca, err := devca.New(devca.Options{})
	require.NoError(t, err)
	key, _ := GenerateKey(t)
	s := New(t, Options{CA: ca, BundleID: "com.example.credits", KeyID: "KEY123", IssuerID: "issuer", PublicKey: &key.PublicKey})
	s.AddTransaction(devca.Consumable("com.example.credits", receipts.Production, "p", "1", "", time.Now()))
	s.AddTransaction(devca.Consumable("com.example.other", receipts.Production, "p", "2", "", time.Now()))
	sub := devca.Consumable("com.example.credits", receipts.Production, "pro", "3", "", time.Now())
	sub.Type, sub.ExpiresDate = "Auto-Renewable Subscription", devca.Millis(time.Now().AddDate(0, 1, 0))
	s.AddTransaction(sub)
	return s, key
}

// goodToken is what serverapi would send; tests break one part at a time.
func goodToken() (jwt.MapClaims, map[string]any) {
	now := time.Now()
	return jwt.MapClaims{
			"iss": "issuer", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
			"aud": "appstoreconnect-v1", "bid": "com.example.credits",
		}, map[string]any{
			"alg": "ES256", "kid": "KEY123", "typ": "JWT",
		}
}

func signToken(t *testing.T, key any, method jwt.SigningMethod, claims jwt.MapClaims, header map[string]any) string {
	tok := jwt.NewWithClaims(method, claims)
	tok.Header = header // exactly the test's header, with the method's alg
	tok.Header["alg"] = method.Alg()
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func do(t *testing.T, method, url, token, body string) (*http.Response, map[string]any) {
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func TestTokenChecks(t *testing.T) {
	s, key := newTestServer(t)
	otherKey, _ := GenerateKey(t)
	es256 := jwt.SigningMethodES256
	for name, tc := range map[string]struct {
		mutate func(c jwt.MapClaims, h map[string]any)
		key    any
		method jwt.SigningMethod
		reason string
	}{
		"ErrWrongAud":      {func(c jwt.MapClaims, _ map[string]any) { c["aud"] = "appstoreconnect-v2" }, key, es256, "aud"},
		"ErrAudArray":      {func(c jwt.MapClaims, _ map[string]any) { c["aud"] = []string{"appstoreconnect-v1"} }, key, es256, "aud"},
		"ErrWrongBid":      {func(c jwt.MapClaims, _ map[string]any) { c["bid"] = "com.example.other" }, key, es256, "bid"},
		"ErrNoBid":         {func(c jwt.MapClaims, _ map[string]any) { delete(c, "bid") }, key, es256, "bid"},
		"ErrWrongIss":      {func(c jwt.MapClaims, _ map[string]any) { c["iss"] = "x" }, key, es256, "iss"},
		"ErrWrongKid":      {func(_ jwt.MapClaims, h map[string]any) { h["kid"] = "OTHER" }, key, es256, "kid"},
		"ErrNoTyp":         {func(_ jwt.MapClaims, h map[string]any) { delete(h, "typ") }, key, es256, "typ"},
		"ErrExpired":       {func(c jwt.MapClaims, _ map[string]any) { c["exp"] = time.Now().Add(-time.Second).Unix() }, key, es256, "expired"},
		"ErrNoExp":         {func(c jwt.MapClaims, _ map[string]any) { delete(c, "exp") }, key, es256, "exp"},
		"ErrNoIat":         {func(c jwt.MapClaims, _ map[string]any) { delete(c, "iat") }, key, es256, "iat"},
		"ErrLifetime61Min": {func(c jwt.MapClaims, _ map[string]any) { c["exp"] = time.Now().Add(61 * time.Minute).Unix() }, key, es256, "60 minutes"},
		"ErrOtherKey":      {func(jwt.MapClaims, map[string]any) {}, otherKey, es256, "signature"},
		"ErrHS256":         {func(jwt.MapClaims, map[string]any) {}, []byte("secret"), jwt.SigningMethodHS256, "signing method"},
	} {
		t.Run(name, func(t *testing.T) {
			claims, header := goodToken()
			tc.mutate(claims, header)
			resp, body := do(t, "GET", s.URL+"/inApps/v1/transactions/1", signToken(t, tc.key, tc.method, claims, header), "")
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			require.EqualValues(t, unauthenticatedCode, body["errorCode"])
			require.Contains(t, body["errorMessage"], tc.reason)
		})
	}
	t.Run("ErrNoToken", func(t *testing.T) {
		resp, _ := do(t, "GET", s.URL+"/inApps/v1/transactions/1", "", "")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	})
	t.Run("OK", func(t *testing.T) {
		claims, header := goodToken()
		claims["exp"] = time.Now().Add(60 * time.Minute).Unix() // Apple's ceiling is allowed
		resp, body := do(t, "GET", s.URL+"/inApps/v1/transactions/1", signToken(t, key, jwt.SigningMethodES256, claims, header), "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.NotEmpty(t, body["signedTransactionInfo"])
	})
}

// Apple's 400s and 404s for requests the client should never send.
func TestRequestChecks(t *testing.T) {
	s, key := newTestServer(t)
	claims, header := goodToken()
	token := signToken(t, key, jwt.SigningMethodES256, claims, header)
	history, consumption := s.URL+"/inApps/v1/notifications/history", s.URL+"/inApps/v2/transactions/consumption/1"
	recent := `"startDate":` + jsonNumber(time.Now().Add(-time.Hour).UnixMilli()) + `,"endDate":` + jsonNumber(time.Now().UnixMilli())
	for name, tc := range map[string]struct {
		method, url, body string
		status            int
		code              int64
	}{
		"ErrOtherBundle":      {"GET", s.URL + "/inApps/v1/transactions/2", "", 404, serverapi.CodeTransactionIDNotFound},
		"ErrWrongEnvironment": {"GET", s.SandboxURL + "/inApps/v1/transactions/1", "", 404, serverapi.CodeTransactionIDNotFound},
		"ErrNoStartDate":      {"POST", history, `{"endDate":2}`, 400, serverapi.CodeInvalidStartDate},
		"ErrNoEndDate":        {"POST", history, `{"startDate":2}`, 400, serverapi.CodeInvalidEndDate},
		"ErrStartAfterEnd":    {"POST", history, `{"startDate":3,"endDate":2}`, 400, serverapi.CodeStartDateAfterEndDate},
		"ErrTwoFilters":       {"POST", history, `{"startDate":1,"endDate":2,"transactionId":"1","notificationType":"REFUND"}`, 400, serverapi.CodeMultipleFiltersSupplied},
		"ErrHistoryUnknown":   {"POST", history, `{"startDate":1,"endDate":2,"start_date":1}`, 400, serverapi.CodeGeneralBadRequest},
		"ErrBadToken":         {"POST", history + "?paginationToken=x", `{` + recent + `}`, 400, serverapi.CodeInvalidPaginationToken},
		"ErrTooFarInPast":     {"POST", history, `{"startDate":1,"endDate":2}`, 400, serverapi.CodeStartDateTooFarInPast},
		"ErrConsumptionV1":    {"PUT", consumption, `{"customerConsented":true,"deliveryStatus":0,"sampleContentProvided":false}`, 400, serverapi.CodeGeneralBadRequest},
		"ErrUnknownField":     {"PUT", consumption, `{"customerConsented":true,"deliveryStatus":"DELIVERED","sampleContentProvided":false,"playTime":1}`, 400, serverapi.CodeGeneralBadRequest},
		"ErrNoSample":         {"PUT", consumption, `{"customerConsented":true,"deliveryStatus":"DELIVERED"}`, 400, serverapi.CodeInvalidSampleContent},
		"ErrNoConsent":        {"PUT", consumption, `{"customerConsented":false,"deliveryStatus":"DELIVERED","sampleContentProvided":false}`, 400, serverapi.CodeInvalidCustomerConsented},
		"ErrUnknownTx":        {"PUT", s.URL + "/inApps/v2/transactions/consumption/9", `{}`, 404, serverapi.CodeTransactionIDNotFound},
		"ErrProratedAtZero": {"PUT", consumption,
			`{"customerConsented":true,"deliveryStatus":"DELIVERED","consumptionPercentage":0,"refundPreference":"GRANT_PRORATED","sampleContentProvided":false}`,
			400, serverapi.CodeGeneralBadRequest},
		"ErrProratedAtAll": {"PUT", consumption,
			`{"customerConsented":true,"deliveryStatus":"DELIVERED","consumptionPercentage":100000,"refundPreference":"GRANT_PRORATED","sampleContentProvided":false}`,
			400, serverapi.CodeGeneralBadRequest},
		"ErrPercentAbove100": {"PUT", consumption,
			`{"customerConsented":true,"deliveryStatus":"DELIVERED","consumptionPercentage":100001,"sampleContentProvided":false}`,
			400, serverapi.CodeGeneralBadRequest},
		"ErrPercentUndelivered": {"PUT", consumption,
			`{"customerConsented":true,"deliveryStatus":"UNDELIVERED_OTHER","consumptionPercentage":5,"sampleContentProvided":false}`,
			400, serverapi.CodeGeneralBadRequest},
		"ErrDeliveryStatus": {"PUT", consumption,
			`{"customerConsented":true,"deliveryStatus":"LOST","sampleContentProvided":false}`, 400, serverapi.CodeInvalidDeliveryStatus},
		"ErrRefundPreference": {"PUT", consumption,
			`{"customerConsented":true,"deliveryStatus":"DELIVERED","refundPreference":"GRANT_HALF","sampleContentProvided":false}`,
			400, serverapi.CodeGeneralBadRequest},
		"ErrPercentOfSubscription": {"PUT", s.URL + "/inApps/v2/transactions/consumption/3",
			`{"customerConsented":true,"deliveryStatus":"DELIVERED","consumptionPercentage":0,"sampleContentProvided":false}`, 400,
			serverapi.CodeConsumptionPercentageAutoRenewable},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := do(t, tc.method, tc.url, token, tc.body)
			require.Equal(t, tc.status, resp.StatusCode)
			require.EqualValues(t, tc.code, body["errorCode"], "%v", body)
		})
	}
	require.Empty(t, s.Consumption(), "nothing refused was recorded")
}

// Notifications are filtered by type and by the inner transaction's ids.
func TestHistoryFilters(t *testing.T) {
	s, key := newTestServer(t)
	claims, header := goodToken()
	token := signToken(t, key, jwt.SigningMethodES256, claims, header)
	sent := time.Now()
	for _, n := range []struct{ typ, tx string }{{"REFUND", "10"}, {"CONSUMPTION_REQUEST", "11"}, {"REFUND", "12"}} {
		inner, err := s.opts.CA.Sign(devca.Consumable("com.example.credits", receipts.Production, "p", n.tx, "", sent))
		require.NoError(t, err)
		jws, err := s.opts.CA.Sign(devca.NotificationPayload{NotificationType: n.typ, NotificationUUID: n.tx,
			Version: "2.0", SignedDate: sent.UnixMilli(), Data: &devca.NotificationData{SignedTransactionInfo: inner}})
		require.NoError(t, err)
		s.AddNotification(jws, sent, false)
	}
	count := func(body string) int {
		resp, out := do(t, "POST", s.URL+"/inApps/v1/notifications/history", token, body)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return len(out["notificationHistory"].([]any))
	}
	window := `"startDate":` + jsonNumber(sent.Add(-time.Hour).UnixMilli()) + `,"endDate":` + jsonNumber(sent.Add(time.Minute).UnixMilli())
	require.Equal(t, 2, count(`{`+window+`}`), "page size 2")
	require.Equal(t, 1, count(`{`+window+`,"notificationType":"CONSUMPTION_REQUEST"}`))
	require.Equal(t, 1, count(`{`+window+`,"transactionId":"12"}`))
	require.Equal(t, 0, count(`{"startDate":`+jsonNumber(sent.Add(-time.Hour).UnixMilli())+`,"endDate":`+jsonNumber(sent.Add(-time.Minute).UnixMilli())+`}`))
}

// Apple keeps notification history 180 days in Production and 30 in
// Sandbox, and refuses an older startDate with StartDateTooFarInPast.
func TestHistoryRetention(t *testing.T) {
	s, key := newTestServer(t)
	claims, header := goodToken()
	token := signToken(t, key, jwt.SigningMethodES256, claims, header)
	const day = 24 * time.Hour
	for _, tc := range []struct {
		base  string
		start time.Duration // back from now
		code  int64         // 0: answered
	}{
		{s.URL, 179 * day, 0},
		{s.URL, 180*day + time.Minute, serverapi.CodeStartDateTooFarInPast},
		{s.SandboxURL, 29 * day, 0},
		{s.SandboxURL, 30*day + time.Minute, serverapi.CodeStartDateTooFarInPast},
		{s.SandboxURL, 179 * day, serverapi.CodeStartDateTooFarInPast},
	} {
		now := time.Now()
		body := `{"startDate":` + jsonNumber(now.Add(-tc.start).UnixMilli()) + `,"endDate":` + jsonNumber(now.UnixMilli()) + `}`
		resp, out := do(t, "POST", tc.base+"/inApps/v1/notifications/history", token, body)
		if tc.code == 0 {
			require.Equal(t, http.StatusOK, resp.StatusCode, "%s %s: %v", tc.base, tc.start, out)
			continue
		}
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s %s", tc.base, tc.start)
		require.EqualValues(t, tc.code, out["errorCode"], "%v", out)
		require.NotEmpty(t, out["errorMessage"])
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

// An auto-renewable subscription's answer is taken without a percentage.
func TestConsumptionOfSubscription(t *testing.T) {
	s, key := newTestServer(t)
	claims, header := goodToken()
	resp, _ := do(t, "PUT", s.URL+"/inApps/v2/transactions/consumption/3", signToken(t, key, jwt.SigningMethodES256, claims, header),
		`{"customerConsented":true,"deliveryStatus":"DELIVERED","refundPreference":"GRANT_PRORATED","sampleContentProvided":true}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Equal(t, []serverapi.ConsumptionInfo{{CustomerConsented: true, DeliveryStatus: serverapi.DeliveryDelivered,
		RefundPreference: serverapi.RefundGrantProrated, SampleContentProvided: true}}, s.Consumption()["3"])
}
