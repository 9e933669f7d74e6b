package serverapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/creditsd/creditsd/receipts"
)

// FindTransactionInfo is GetTransactionInfo in each of environments that
// the API serves, in order (Production before Sandbox), until one knows the
// transaction: Apple's advice for an id read from a StoreKit 1 app receipt
// (receipts.TransactionIDsFromAppReceipt), which does not say its
// environment. The answer is Apple-signed; the caller verifies it like any
// other. A transaction no environment knows is ErrNotFound.
//
// Production answers 401 for every request until the app's first release
// (Apple's staff on the developer forums, thread 806452), so a 401 there,
// or a 404 other than the transaction's own (the app or account not found,
// retryable or not, once the client's retries are spent; no errorCode at
// all), moves on to Sandbox as the transaction's own 404 does: App Review
// buys in Sandbox before the release. When Sandbox does not know the
// transaction either, Production's answer is the answer, since it could
// not be asked.
func (c *Client) FindTransactionInfo(ctx context.Context, environments []string, transactionID string) (string, error) {
	var unasked error
	for _, env := range Environments(environments) {
		signed, err := c.GetTransactionInfo(ctx, env, transactionID)
		var apiErr *APIError
		switch {
		case errors.Is(err, ErrNotFound):
			continue
		case env == receipts.Production && errors.As(err, &apiErr) &&
			(apiErr.Status == http.StatusUnauthorized || apiErr.Status == http.StatusNotFound):
			unasked = err
			continue
		}
		return signed, err
	}
	if unasked != nil {
		return "", unasked
	}
	return "", fmt.Errorf("transaction %s: %w", transactionID, ErrNotFound)
}

// Environments are those of accepted that the API serves (Production and
// Sandbox; Xcode and LocalTesting have no server), Production first.
func Environments(accepted []string) []string {
	var out []string
	for _, env := range []string{receipts.Production, receipts.Sandbox} {
		for _, a := range accepted {
			if a == env {
				out = append(out, env)
			}
		}
	}
	return out
}
