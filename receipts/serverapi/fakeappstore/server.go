// Package fakeappstore is an in-memory App Store Server API for tests. It
// serves Apple's real paths for Get Transaction Info, Get Notification
// History and Send Consumption Information, production at URL and sandbox
// at SandboxURL; checks the bearer JWT on every request as Apple does;
// answers Apple's JSON and error codes; and signs transactions with a
// devca chain, so receipts.Verifier{Roots: {ca.Root}} verifies them.
package fakeappstore

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/creditsd/creditsd/receipts/serverapi"
)

// Options configure a Server. All but PageSize are required.
type Options struct {
	CA              *devca.CA        // signs transaction answers
	BundleID        string           // the app: tokens must carry it as bid; other bundles' transactions are not found
	KeyID, IssuerID string           // the kid and iss tokens must carry
	PublicKey       *ecdsa.PublicKey // verifies the tokens' ES256 signature
	PageSize        int              // notification history page size; default 2 (Apple's is 20) so tests page
}

// Server is a running fake. Its methods are safe to call while a client
// is using it.
type Server struct {
	URL        string // production base URL, for serverapi.Config.ProductionURL
	SandboxURL string // sandbox base URL, for serverapi.Config.SandboxURL

	t    testing.TB
	opts Options

	mu            sync.Mutex
	transactions  map[string]devca.TransactionPayload
	notifications []notification
	consumption   map[string][]serverapi.ConsumptionInfo
	failures      []failure
	requests      int
	asked         []string
}

type failure struct {
	status     int
	retryAfter string
}

// New starts a Server, closed when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.CA == nil || opts.BundleID == "" || opts.KeyID == "" || opts.IssuerID == "" || opts.PublicKey == nil {
		t.Fatalf("fakeappstore: Options need CA, BundleID, KeyID, IssuerID and PublicKey")
	}
	if opts.PageSize <= 0 {
		opts.PageSize = 2
	}
	s := &Server{
		t: t, opts: opts,
		transactions: map[string]devca.TransactionPayload{},
		consumption:  map[string][]serverapi.ConsumptionInfo{},
	}
	mux := http.NewServeMux()
	s.routes(mux, "", receipts.Production)
	s.routes(mux, "/sandbox", receipts.Sandbox)
	srv := httptest.NewServer(s.middleware(mux))
	t.Cleanup(srv.Close)
	s.URL, s.SandboxURL = srv.URL, srv.URL+"/sandbox"
	return s
}

// ClientConfig is a serverapi.Config for this server, signing with key,
// with retries backing off by a millisecond so tests stay fast.
func (s *Server) ClientConfig(key *ecdsa.PrivateKey) serverapi.Config {
	return serverapi.Config{
		KeyID: s.opts.KeyID, IssuerID: s.opts.IssuerID, BundleID: s.opts.BundleID, PrivateKey: key,
		ProductionURL: s.URL, SandboxURL: s.SandboxURL, RetryBackoff: time.Millisecond,
	}
}

// AddTransaction makes p available to Get Transaction Info in
// p.Environment (Production or Sandbox). It is signed when served, with
// signedDate = now unless p sets one.
func (s *Server) AddTransaction(p devca.TransactionPayload) {
	s.t.Helper()
	if p.TransactionID == "" || (p.Environment != receipts.Production && p.Environment != receipts.Sandbox) {
		s.t.Fatalf("fakeappstore: AddTransaction needs a transactionId and environment Production or Sandbox, got %q/%q",
			p.TransactionID, p.Environment)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.transactions[p.TransactionID] = p
}

// AddNotification records a notification Apple sent at sentAt; failed
// means our webhook never acknowledged it. History serves it in both
// environments, filtered by date, onlyFailures, type, subtype and
// transactionId (read from the unverified payload). As Apple does, history
// refuses a startDate older than the environment keeps (180 days in
// Production, 30 in Sandbox) with errorCode 4000012.
func (s *Server) AddNotification(signedPayload string, sentAt time.Time, failed bool) {
	n := notification{signedPayload: signedPayload, sentAt: sentAt.UnixMilli(), failed: failed}
	n.summary = summarize(signedPayload)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notifications = append(s.notifications, n)
	sort.SliceStable(s.notifications, func(i, j int) bool { return s.notifications[i].sentAt < s.notifications[j].sentAt })
}

// Consumption returns what Send Consumption Information received, by
// transaction id, oldest first.
func (s *Server) Consumption() map[string][]serverapi.ConsumptionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]serverapi.ConsumptionInfo, len(s.consumption))
	for id, infos := range s.consumption {
		out[id] = append([]serverapi.ConsumptionInfo(nil), infos...)
	}
	return out
}

// FailNext makes the next request, whatever it is, answer status with
// Apple's error body, and a Retry-After header when retryAfter is set.
// Calls queue: FailNext twice fails the next two requests.
func (s *Server) FailNext(status int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, failure{status, retryAfter})
}

// Requests counts every request received, refused ones included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// middleware counts the request, then answers a queued failure, then
// refuses a bad token, and only then routes.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f, ok := s.countAndTakeFailure(); ok {
			writeFailure(w, f)
			return
		}
		if reason := s.checkToken(r.Header.Get("Authorization")); reason != "" {
			// Apple answers 401 with a plain-text body; JSON here lets
			// tests read why.
			writeError(w, http.StatusUnauthorized, unauthenticatedCode, "Unauthenticated: "+reason)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Asked lists the transaction ids Get Transaction Info was asked for and
// answered (found or not), in order, in either environment. Unlike
// Requests, it counts no request of a job running beside a test.
func (s *Server) Asked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.asked)
}

func (s *Server) countAndTakeFailure() (failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if len(s.failures) == 0 {
		return failure{}, false
	}
	f := s.failures[0]
	s.failures = s.failures[1:]
	return f, true
}

// GenerateKey makes an In-App Purchase key for tests: the private key and
// its .p8 PEM, as App Store Connect hands out.
func GenerateKey(t testing.TB) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("fakeappstore: %v", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("fakeappstore: %v", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
