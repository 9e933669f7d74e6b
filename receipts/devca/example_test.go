package devca_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
)

// The local profile: keep one development CA on disk, trust its root, and
// sign Apple-shaped payloads with it.
func Example() {
	dir, _ := os.MkdirTemp("", "devca")
	defer os.RemoveAll(dir)

	ca, created, err := devca.LoadOrCreate(filepath.Join(dir, "ca"), time.Now())
	if err != nil {
		panic(err)
	}
	fmt.Println("created:", created)

	jws, _ := ca.Sign(receipts.RenewalInfo{
		OriginalTransactionID: "1000000000000001",
		ProductID:             "pro.monthly",
		AutoRenewStatus:       1,
		SignedDate:            time.Now(),
		Environment:           receipts.LocalTesting,
	})

	roots, _ := receipts.ParseCertificates(ca.RootPEM())
	v := &receipts.Verifier{Roots: roots, BundleID: "com.example.credits", Environments: []string{receipts.LocalTesting}}
	r, err := v.VerifyRenewalInfo(jws)
	fmt.Println(r.ProductID, err)
	// Output:
	// created: true
	// pro.monthly <nil>
}
