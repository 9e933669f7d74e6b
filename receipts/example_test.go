package receipts_test

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
)

// A Verifier for one app. In production leave Roots empty (Apple Root CA -
// G3 is embedded); here a development CA stands in for Apple.
func ExampleVerifier() {
	ca, _ := devca.New(devca.Options{})
	v := &receipts.Verifier{
		Roots:        []*x509.Certificate{ca.Root},
		BundleID:     "com.example.credits",
		AppAppleID:   1234567890,
		Environments: []string{receipts.Production, receipts.Sandbox},
	}

	signed := time.Date(2025, 10, 1, 7, 8, 38, 0, time.UTC)
	jws, _ := ca.Sign(receipts.Transaction{
		TransactionID:         "2000001024998954",
		OriginalTransactionID: "2000001024998954",
		BundleID:              "com.example.credits",
		ProductID:             "credits.100",
		Type:                  "Consumable",
		Quantity:              1,
		PurchaseDate:          signed,
		SignedDate:            time.Now(),
		Environment:           receipts.Sandbox,
		Price:                 990,
		Currency:              "USD",
	})

	tx, err := v.VerifyTransaction(jws)
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	fmt.Println(tx.TransactionID, tx.ProductID, tx.Quantity, tx.PurchaseDate.Format(time.RFC3339))

	// Failures carry a stable code; none of these is worth retrying.
	_, err = v.VerifyTransaction(jws[:len(jws)-4] + "AAAA")
	var e *receipts.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code, e.Retryable())
	}
	// Output:
	// 2000001024998954 credits.100 1 2025-10-01T07:08:38Z
	// invalid_signature false
}
