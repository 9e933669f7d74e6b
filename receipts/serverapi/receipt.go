package serverapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/creditsd/creditsd/receipts"
)

// FindTransactionInfo is GetTransactionInfo in each of environments that
// the API serves, in order (Production before Sandbox), until one knows the
// transaction: Apple's advice for an id read from a StoreKit 1 app receipt
// (receipts.TransactionIDsFromAppReceipt), which does not say its
// environment. The answer is Apple-signed; the caller verifies it like any
// other. A transaction no environment knows is ErrNotFound.
func (c *Client) FindTransactionInfo(ctx context.Context, environments []string, transactionID string) (string, error) {
	for _, env := range Environments(environments) {
		signed, err := c.GetTransactionInfo(ctx, env, transactionID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		return signed, err
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
