package main

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/receipts/serverapi"
)

// AppStoreAPIConfig holds the App Store Server API credentials: an App
// Store Connect In-App Purchase key. It stays off until key_id, issuer_id
// and private_key_file are all set; the jobs that need it skip until then.
type AppStoreAPIConfig struct {
	KeyID          string `yaml:"key_id"`
	IssuerID       string `yaml:"issuer_id"`
	PrivateKeyFile string `yaml:"private_key_file"` // the .p8 file
	ProductionURL  string `yaml:"production_url"`   // default Apple's
	SandboxURL     string `yaml:"sandbox_url"`      // default Apple's
}

func (c AppStoreAPIConfig) configured() bool {
	return c.KeyID != "" || c.IssuerID != "" || c.PrivateKeyFile != ""
}

// resolve builds the client, or nil when the section is empty.
func (c AppStoreAPIConfig) resolve(bundleID string) (*serverapi.Client, error) {
	if !c.configured() {
		return nil, nil
	}
	switch {
	case c.KeyID == "":
		return nil, keyErrorf("app_store_api.key_id", "required with the other app_store_api keys")
	case c.IssuerID == "":
		return nil, keyErrorf("app_store_api.issuer_id", "required with the other app_store_api keys")
	case c.PrivateKeyFile == "":
		return nil, keyErrorf("app_store_api.private_key_file", "required with the other app_store_api keys")
	}
	for _, u := range []struct{ key, value string }{
		{"app_store_api.production_url", c.ProductionURL}, {"app_store_api.sandbox_url", c.SandboxURL},
	} {
		if u.value == "" {
			continue
		}
		if err := serverapi.CheckBaseURL(u.value); err != nil {
			return nil, keyErrorf(u.key, "%v", err)
		}
	}
	pem, err := readSecretFile("app_store_api.private_key_file", c.PrivateKeyFile)
	if err != nil {
		return nil, err
	}
	key, err := serverapi.LoadPrivateKey(pem)
	if err != nil {
		return nil, keyErrorf("app_store_api.private_key_file", "%v", err)
	}
	client, err := serverapi.New(serverapi.Config{KeyID: c.KeyID, IssuerID: c.IssuerID, BundleID: bundleID,
		PrivateKey: key, ProductionURL: c.ProductionURL, SandboxURL: c.SandboxURL, Now: time.Now})
	if err != nil {
		return nil, keyErrorf("app_store_api", "%v", err)
	}
	return client, nil
}

// receiptLookup asks the App Store Server API for the transactions an app
// receipt names, in the environments this service accepts.
type receiptLookup struct {
	client       *serverapi.Client
	environments []string
}

// SignedTransaction answers ErrUnknownTransaction (422) when Apple knows no
// such transaction, or refuses the id the receipt names as not one of its
// own (400): the receipt is unsigned, so the id is the client's, and no
// retry mends it. Other failures are Apple's or this service's (401, 429,
// 5xx, a 404 that names the app or no API): the app may try again, and
// after a 429 no sooner than Apple asked.
func (l receiptLookup) SignedTransaction(ctx context.Context, transactionID string) (string, error) {
	signed, err := l.client.FindTransactionInfo(ctx, l.environments, transactionID)
	var apiErr *serverapi.APIError
	errors.As(err, &apiErr)
	switch {
	case errors.Is(err, serverapi.ErrNotFound) || apiErr != nil && apiErr.Status == http.StatusBadRequest:
		return "", entitlements.ErrUnknownTransaction
	case apiErr != nil && apiErr.Status == http.StatusTooManyRequests && apiErr.RetryAfter > 0:
		return "", &entitlements.Error{Kind: entitlements.KindUnavailable, Code: "app_store_unavailable",
			Detail: err.Error(), RetryAfter: apiErr.RetryAfter}
	}
	return signed, err
}
