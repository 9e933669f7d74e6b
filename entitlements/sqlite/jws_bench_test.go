package sqlite

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkCutInner is the work RecordNotification does on a handler's
// goroutine before the writer sees it: a real ONE_TIME_CHARGE notification
// split, and its transaction's certificate chain found in the payload.
func BenchmarkCutInner(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join(appleVectors, "one-time-charge-consumable.jws"))
	if err != nil {
		b.Fatal(err)
	}
	jws := strings.TrimSpace(string(raw))
	inner := innerOf(b, jws).Transaction
	if splitJWS(jws).cutInner(inner).inner.hash == nil {
		b.Fatal("the chain was not found in the payload")
	}
	b.SetBytes(int64(len(jws)))
	for b.Loop() {
		splitJWS(jws).cutInner(inner)
	}
}
