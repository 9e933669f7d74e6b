// Package serverapi is a client for the three App Store Server API
// endpoints creditsd needs: Get Transaction Info (a StoreKit 1 app
// receipt's transaction, or a missed purchase), Get Notification History
// (notifications our webhook never got) and Send Consumption Information
// (answering a refund's CONSUMPTION_REQUEST).
//
// Every request carries a short-lived ES256 JWT signed with the App Store
// Connect In-App Purchase key. Rate limits (429, with Retry-After) and
// server errors are retried within bounds. Answers that Apple signs are
// returned as JWS strings: verify them with receipts.Verifier like anything
// else Apple signs — the API's TLS is not a substitute.
//
// Package receipts/serverapi/fakeappstore serves the same endpoints for
// tests.
package serverapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/creditsd/creditsd/receipts"
)

// Client calls the App Store Server API for one app. It is safe for
// concurrent use.
type Client struct {
	cfg    Config
	tokens *tokenSource
}

// New validates c, fills its defaults and returns a Client.
func New(c Config) (*Client, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Client{cfg: c, tokens: newTokenSource(c)}, nil
}

// GetTransactionInfo returns the signedTransactionInfo JWS for a
// transaction (GET /inApps/v1/transactions/{transactionId}). An unknown
// transaction is an *APIError that errors.Is ErrNotFound.
func (c *Client) GetTransactionInfo(ctx context.Context, environment, transactionID string) (signedTransactionInfo string, err error) {
	if err := checkTransactionID(transactionID); err != nil {
		return "", err
	}
	u, err := c.url(environment, "/inApps/v1/transactions/"+transactionID)
	if err != nil {
		return "", err
	}
	var out struct {
		SignedTransactionInfo string `json:"signedTransactionInfo"`
	}
	if err := c.call(ctx, http.MethodGet, u, nil, &out); err != nil {
		return "", err
	}
	if out.SignedTransactionInfo == "" {
		return "", errNoSignedTransaction
	}
	return out.SignedTransactionInfo, nil
}

// GetNotificationHistory returns one page of the notifications Apple sent,
// or tried to send, to our webhook (POST /inApps/v1/notifications/history).
// Pass "" as paginationToken for the first page, then the previous page's
// PaginationToken while HasMore, with the same req.
func (c *Client) GetNotificationHistory(ctx context.Context, environment string, req NotificationHistoryRequest, paginationToken string) (*NotificationHistoryResponse, error) {
	if err := req.validate(); err != nil {
		return nil, err
	}
	u, err := c.url(environment, "/inApps/v1/notifications/history")
	if err != nil {
		return nil, err
	}
	if paginationToken != "" {
		u += "?" + url.Values{"paginationToken": {paginationToken}}.Encode()
	}
	out := &NotificationHistoryResponse{}
	if err := c.call(ctx, http.MethodPost, u, req, out); err != nil {
		return nil, err
	}
	return out, nil
}

// SendConsumptionInfo tells Apple how much of a refunded purchase was
// consumed (PUT /inApps/v2/transactions/consumption/{transactionId}); Apple
// answers 202 and weighs it in its refund decision. It may only be sent
// with the customer's consent, and only after a CONSUMPTION_REQUEST.
func (c *Client) SendConsumptionInfo(ctx context.Context, environment, transactionID string, info ConsumptionInfo) error {
	if err := checkTransactionID(transactionID); err != nil {
		return err
	}
	if err := info.validate(); err != nil {
		return err
	}
	u, err := c.url(environment, "/inApps/v2/transactions/consumption/"+transactionID)
	if err != nil {
		return err
	}
	return c.call(ctx, http.MethodPut, u, info, nil)
}

var errNoSignedTransaction = errors.New("serverapi: Get Transaction Info answered without signedTransactionInfo")

// url picks the base URL by environment; the API has no Xcode or
// LocalTesting counterpart.
func (c *Client) url(environment, path string) (string, error) {
	switch environment {
	case receipts.Production:
		return c.cfg.ProductionURL + path, nil
	case receipts.Sandbox:
		return c.cfg.SandboxURL + path, nil
	}
	return "", fmt.Errorf("%w, not %q", ErrEnvironment, environment)
}
