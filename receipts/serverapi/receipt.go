package serverapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/creditsd/creditsd/receipts"
)

// SignedTransactionForReceipt answers a StoreKit 1 app receipt the way
// Apple recommends: read a transaction id from the receipt locally (no
// signature check: the id only names what to ask for), then fetch the
// transaction with Get Transaction Info, trying each environment in order
// (Production before Sandbox, as a receipt does not say). The answer is
// Apple-signed; the caller verifies it like any other. A receipt whose
// transaction no environment knows is ErrNotFound.
func (c *Client) SignedTransactionForReceipt(ctx context.Context, appReceipt string, environments []string) (string, error) {
	id, err := receipts.TransactionIDFromAppReceipt(appReceipt)
	if err != nil {
		return "", err
	}
	for _, env := range Environments(environments) {
		signed, err := c.GetTransactionInfo(ctx, env, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		return signed, err
	}
	return "", fmt.Errorf("transaction %s: %w", id, ErrNotFound)
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
