package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/receipts/devca"
)

// scenarioResult is one scenario's runs and what came with them.
type scenarioResult struct {
	Name        string       `json:"name"`
	Concurrency int          `json:"concurrency"`
	Rate        float64      `json:"rate,omitempty"` // requests/s offered in an open loop; 0: closed loop
	Runs        []Summary    `json:"runs"`
	PeakRSSMB   float64      `json:"peak_rss_mb"` // highest VmRSS sampled during the scenario
	Sweep       *sweepResult `json:"sweep,omitempty"`
	Peer        *peerResult  `json:"peer,omitempty"`
	Note        string       `json:"note,omitempty"`
}

// timedRuns runs the scenario's phase opts.runs times; build makes run r's
// request function.
func (e *env) timedRuns(ctx context.Context, name string, build func(r, count int) request) scenarioResult {
	conc, count, dur := e.opts.phase(name)
	res := scenarioResult{Concurrency: conc, Rate: e.opts.rate}
	for r := range e.opts.runs {
		l := load{name: fmt.Sprintf("%s %d/%d", name, r+1, e.opts.runs), concurrency: conc, count: count,
			duration: dur, progress: e.stderr, rss: e.rss, rate: e.opts.rate}
		do := build(r, count)
		e.settle(l.name)
		counters := readServerCounters(ctx, e.pid(), e.base)
		before := readCPU(e.pid())
		prof := e.startProfile(ctx, fmt.Sprintf("%s-%d", name, r+1), dur)
		samples, elapsed := l.run(ctx, do)
		s := summarize(samples, elapsed)
		s.Profile = e.waitProfile(l.name, prof)
		server, load, other := before.cores(readCPU(e.pid()), elapsed)
		s.setCores(server, load, other)
		s.chargeAnswers(server, load)
		s.Cost = counters.cost(readServerCounters(ctx, e.pid(), e.base), s.OK, elapsed)
		fmt.Fprintf(e.stderr, "[%s] %d requests, %.0f/s ok, p99 %.2f ms, errors %v, cores: server %.2f, load %.2f, other %.2f\n",
			l.name, s.Requests, s.PerSecond, s.P99ms, s.Errors, s.ServerCores, s.LoadCores, s.OtherCores)
		if l.rate > 0 { // requests still due when the run ended were never sent, and are not in the percentiles
			fmt.Fprintf(e.stderr, "[%s] open loop: %.0f due, %d sent\n", l.name, l.rate*elapsed.Seconds(), s.Requests)
		}
		res.Runs = append(res.Runs, s)
	}
	return res
}

// startProfile starts a CPU profile of the server for a timed run, with
// --profile; nil without.
func (e *env) startProfile(ctx context.Context, name string, duration time.Duration) *profile {
	if e.pprofAddr == "" {
		return nil
	}
	return startProfile(ctx, e.pprofAddr, e.opts.profileDir, name, profileSeconds(duration))
}

// waitProfile waits for a run's profile and says where it is ("" for none).
// A profile that failed is reported, not fatal: the run's numbers stand.
func (e *env) waitProfile(run string, p *profile) string {
	if p == nil {
		return ""
	}
	if err := p.wait(); err != nil {
		fmt.Fprintf(e.stderr, "[%s] profile: %v\n", run, err)
		return ""
	}
	fmt.Fprintf(e.stderr, "[%s] profile: %s\n", run, p.path)
	return p.path
}

// settle waits for a quiet machine before a timed phase, when asked to.
func (e *env) settle(name string) {
	if e.opts.settle <= 0 {
		return
	}
	settle(e.opts.settle, func(format string, args ...any) {
		fmt.Fprintf(e.stderr, "[%s] "+format+"\n", append([]any{name}, args...)...)
	})
}

// webhook posts pre-signed ONE_TIME_CHARGE notifications, each with its own
// signed transaction bought by a seeded user: verified twice (outer and
// inner JWS), recorded and granted per request. Signing happens before the
// clock starts, so only the server is measured.
func (e *env) webhook(ctx context.Context) (scenarioResult, error) {
	_, count, _ := e.opts.phase("webhook")
	fmt.Fprintf(e.stderr, "[webhook] signing %d notifications\n", count*e.opts.runs)
	payloads, err := e.signNotifications(count * e.opts.runs)
	if err != nil {
		return scenarioResult{}, err
	}
	bodies := make([][]byte, len(payloads))
	for i, p := range payloads {
		bodies[i] = []byte(`{"signedPayload":"` + p + `"}`) // a JWS is base64url and dots: nothing to escape
	}
	before, err := grantedNotifications(ctx, e.base)
	if err != nil {
		return scenarioResult{}, err
	}
	res := e.timedRuns(ctx, "webhook", func(r, count int) request {
		return func(ctx context.Context, i int) (int, error) {
			return send(ctx, e.client, "POST", "/v1/appstore/notifications", "", bodies[r*count+i])
		}
	})
	if err := e.checkGranted(ctx, res, before); err != nil {
		return res, err
	}
	if e.opts.peer {
		peer, err := e.runPeer(ctx, payloads[:min(e.opts.peerCount, len(payloads))], medianRate(res.Runs))
		if err != nil {
			return res, err
		}
		res.Peer = &peer
	}
	return res, nil
}

// checkGranted fails the webhook's runs unless every notification the
// server answered 2xx granted a lot: it answers 2xx for one it only records
// (a product its catalog does not sell, say), which costs it less, and the
// run would have measured that. It may have granted more: a run that ends
// at its duration cuts the requests in flight, which the server finishes.
func (e *env) checkGranted(ctx context.Context, res scenarioResult, before float64) error {
	after, err := grantedNotifications(ctx, e.base)
	if err != nil {
		return err
	}
	return grantedAll(res.Runs, int(after-before))
}

// grantedAll says whether granted lots cover every 2xx of runs.
func grantedAll(runs []Summary, granted int) error {
	ok := 0
	for _, run := range runs {
		ok += run.OK
	}
	if granted < ok {
		return fmt.Errorf("the server answered %d notifications 2xx but granted %d lots "+
			"(creditsd_notifications_total{outcome=\"granted\"}): does its catalog sell %s?", ok, granted, packProduct)
	}
	return nil
}

// signNotifications signs n distinct notifications on every core.
// Notification i was bought a millisecond after notification i-1, the last
// a minute ago: real purchases each have their moment, and a lot expires a
// year after its own, so a run's lots must not share one expiry. Bought
// at one moment, they landed among each other in lots_expiry, ~9 of its
// pages a commit, instead of at its end (BENCHMARKS.md, session 16; the
// server has kept no such index since migration 0013, session 20).
func (e *env) signNotifications(n int) ([]string, error) {
	tokens, err := entitlements.NewTokenDeriver(entitlements.DefaultTokenNamespace)
	if err != nil {
		return nil, err
	}
	out := make([]string, n)
	workers := runtime.GOMAXPROCS(0)
	errs := make([]error, workers)
	now := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n && errs[w] == nil; i += workers {
				bought := now.Add(-time.Minute - time.Duration(n-1-i)*time.Millisecond)
				out[i], errs[w] = e.signNotification(tokens, i, bought, now)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (e *env) signNotification(tokens entitlements.TokenDeriver, i int, bought, now time.Time) (string, error) {
	user := seedUserID(spread(i, e.opts.users))
	txID := fmt.Sprintf("%d%s%09d", 2, e.runHex(), i) // digits, as Apple's are; unique per run
	tx, err := e.ca.Sign(devca.Consumable(bundleID, e.environment, packProduct, txID, tokens.Token(user), bought))
	if err != nil {
		return "", err
	}
	return e.ca.Sign(devca.NotificationPayload{NotificationType: "ONE_TIME_CHARGE", NotificationUUID: newUUID(),
		Version: "2.0", SignedDate: devca.Millis(now),
		Data: &devca.NotificationData{AppAppleID: 1234567890, BundleID: bundleID, BundleVersion: "1",
			Environment: e.environment, SignedTransactionInfo: tx, Status: 1}})
}

// runHex is the run id as decimal digits, for transaction ids.
func (e *env) runHex() string {
	var n uint64
	fmt.Sscanf(e.runID, "%x", &n)
	return fmt.Sprintf("%010d", n)
}

// spend charges 1 credit per request to spread-out seeded users, each under
// a fresh idempotency key: every request is a new spend and a durable
// write (group commit).
func (e *env) spend(ctx context.Context) (scenarioResult, error) {
	token, err := mint(e.secret, "creditsd-load", "credits:spend", 24*time.Hour)
	if err != nil {
		return scenarioResult{}, err
	}
	return e.timedRuns(ctx, "spend", func(r, _ int) request {
		return e.spendRequest(token, fmt.Sprintf("%s-%d", e.runID, r))
	}), nil
}

func (e *env) spendRequest(token, prefix string) request {
	return func(ctx context.Context, i int) (int, error) {
		user := seedUserID(spread(i, e.opts.users))
		body := fmt.Appendf(nil, `{"idempotency_key":"%s-%d","product":"sora","credits":1}`, prefix, i)
		return send(ctx, e.client, "POST", "/v1/users/"+user+"/spends", token, body)
	}
}

// readTokens bounds how many user tokens are minted up front; requests
// cycle through them, spread over the whole user range.
const readTokens = 50_000

// read asks for random seeded users' entitlements with their own tokens.
func (e *env) read(ctx context.Context) (scenarioResult, error) {
	tokens, err := e.mintReadTokens()
	if err != nil {
		return scenarioResult{}, err
	}
	return e.timedRuns(ctx, "read", func(r, _ int) request { return e.readRequest(tokens, r) }), nil
}

// mintReadTokens mints the tokens of up to readTokens users, spread over
// the seeded ones.
func (e *env) mintReadTokens() ([]string, error) {
	tokens := make([]string, min(e.opts.users, readTokens))
	for i := range tokens {
		var err error
		if tokens[i], err = mint(e.secret, seedUserID(spread(i, e.opts.users)), "", 24*time.Hour); err != nil {
			return nil, err
		}
	}
	return tokens, nil
}

// readRequest reads the entitlement of one of tokens' users, in an order
// that run r shifts.
func (e *env) readRequest(tokens []string, r int) request {
	return func(ctx context.Context, i int) (int, error) {
		return send(ctx, e.client, "GET", "/v1/me/entitlement", tokens[spread(i+r*7, len(tokens))], nil)
	}
}

// healthz asks GET /healthz with the reads' clients: no token, no database,
// a 16-byte answer. The issue sets no target for it; it is the floor under
// the others, what one request through the server's HTTP stack and this
// tool costs on the machine, so a read's rate can be set beside it.
func (e *env) healthz(ctx context.Context) (scenarioResult, error) {
	return e.timedRuns(ctx, "healthz", func(int, int) request {
		return func(ctx context.Context, _ int) (int, error) {
			return send(ctx, e.client, "GET", "/healthz", "", nil)
		}
	}), nil
}

// spread maps request i to one of n users in a scattered order (a
// multiplicative hash), so consecutive requests hit unrelated users and
// pages of the database, as real traffic does.
func spread(i, n int) int {
	return int((uint64(i) * 11400714819323198485 >> 20) % uint64(n))
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
