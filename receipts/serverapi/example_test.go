package serverapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/creditsd/creditsd/receipts/serverapi"
)

// Fetch a transaction by id (say, one read from a StoreKit 1 app receipt
// with receipts.TransactionIDsFromAppReceipt) and verify Apple's answer.
// A stand-in server and a development CA play Apple here; in production
// leave the URLs and Roots empty.
func ExampleClient_GetTransactionInfo() {
	ca, _ := devca.New(devca.Options{})
	apple := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/inApps/v1/transactions/2000000123456789" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errorCode":4040010,"errorMessage":"Transaction id not found."}`))
			return
		}
		jws, _ := ca.Sign(devca.Consumable("com.example.credits", receipts.Sandbox,
			"com.example.credits.10", "2000000123456789", "", time.Now()))
		_ = json.NewEncoder(w).Encode(map[string]string{"signedTransactionInfo": jws})
	}))
	defer apple.Close()

	key, err := serverapi.LoadPrivateKey(p8ForExample()) // the AuthKey_XXXXXXXXXX.p8 file's bytes
	if err != nil {
		fmt.Println(err)
		return
	}
	client, err := serverapi.New(serverapi.Config{
		KeyID:         "2X9R4HXF34",
		IssuerID:      "57246542-96fe-1a63-e053-0824d011072a",
		BundleID:      "com.example.credits",
		PrivateKey:    key,
		ProductionURL: apple.URL,
		SandboxURL:    apple.URL,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()

	jws, err := client.GetTransactionInfo(ctx, receipts.Sandbox, "2000000123456789")
	if err != nil {
		fmt.Println(err)
		return
	}
	// TLS tells us who answered; only the signature tells us Apple signed it.
	v := &receipts.Verifier{Roots: []*x509.Certificate{ca.Root}, BundleID: "com.example.credits",
		Environments: []string{receipts.Sandbox}}
	tx, err := v.VerifyTransaction(jws)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(tx.TransactionID, tx.ProductID, tx.Environment)

	_, err = client.GetTransactionInfo(ctx, receipts.Production, "2000000000000000")
	fmt.Println(errors.Is(err, serverapi.ErrNotFound))
	// Output:
	// 2000000123456789 com.example.credits.10 Sandbox
	// true
}

// p8ForExample makes a key shaped like App Store Connect's .p8 download.
func p8ForExample() []byte {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
