package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
	"github.com/creditsd/creditsd/receipts/devca/simulator"
)

const simulateUsage = `usage: creditsd simulate ACTION [flags]

A local App Store: signs Apple-shaped transactions and notifications with the
development CA and sends them to a running server's webhook, as Apple would.

actions:
  purchase --user U [--product P] [--quantity N] [--environment E] [--purchased-at T]
  subscribe --user U [--product P] [--environment E] [--purchased-at T]
  refund --transaction T [--percent P]
  refund-reversed --transaction T
  renew --transaction T
  expire --transaction T
  consumption-request --transaction T
  test [--environment E]

flags of every action:
  --server URL     the server (default http://<the config's listen>)
  --ca-dir DIR     the development CA (default ./creditsd-local/ca)
  --bundle-id ID   (default the config's apple.bundle_id)
  --print          print the signed notifications instead of sending them
  --config FILE

--purchased-at takes an RFC 3339 time, a date (2025-01-31) or an age such as
-13mo, -30d or -36h.`

// simulateActions are the flags each action takes besides simulateCommon.
var simulateActions = map[string][]string{
	"purchase":            {"user", "product", "quantity", "environment", "purchased-at"},
	"subscribe":           {"user", "product", "environment", "purchased-at"},
	"refund":              {"transaction", "percent"},
	"refund-reversed":     {"transaction"},
	"renew":               {"transaction"},
	"expire":              {"transaction"},
	"consumption-request": {"transaction"},
	"test":                {"environment"},
}

var simulateCommon = []string{"config", "ca-dir", "server", "bundle-id", "print"}

// simulateOptions are simulate's flags.
type simulateOptions struct {
	config, caDir, server, bundleID, environment string
	print                                        bool
	user, product, purchasedAt, transaction      string
	quantity                                     int64
	percent                                      int
	purchased                                    time.Time // --purchased-at, read
}

// simulateCommand is `creditsd simulate ACTION`: sign what the App Store
// would send for ACTION, remember what was sold, and deliver it.
func simulateCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, action, err := parseSimulate(args, stderr)
	if err != nil {
		return err
	}
	s, _, err := loadSettings(o.config, getenv)
	if err != nil {
		return err
	}
	o.defaults(s)
	events, err := o.simulate(action, s)
	if err != nil {
		return fmt.Errorf("simulate %s: %w", action, err)
	}
	return o.deliver(ctx, events, stdout, stderr)
}

func parseSimulate(args []string, stderr io.Writer) (*simulateOptions, string, error) {
	fs, config := newFlagSet("simulate", stderr)
	o := &simulateOptions{}
	fs.StringVar(&o.caDir, "ca-dir", filepath.Join(DefaultLocalDir, localCADir), "the development CA's directory")
	fs.StringVar(&o.server, "server", "", "the server's base URL (default http://<the config's listen>)")
	fs.StringVar(&o.bundleID, "bundle-id", "", "bundle id (default the config's apple.bundle_id)")
	fs.StringVar(&o.environment, "environment", receipts.LocalTesting, "environment of a new purchase")
	fs.BoolVar(&o.print, "print", false, "print the signed notifications instead of sending them")
	fs.StringVar(&o.user, "user", "", "the buyer's user id")
	fs.StringVar(&o.product, "product", "", "product id (default the config's first pack or subscription)")
	fs.Int64Var(&o.quantity, "quantity", 1, "units bought")
	fs.StringVar(&o.purchasedAt, "purchased-at", "", "purchase date: RFC 3339, a date, or an age like -13mo")
	fs.StringVar(&o.transaction, "transaction", "", "transaction id of an earlier simulated sale")
	fs.IntVar(&o.percent, "percent", 0, "refund only this percentage (REFUND_PRORATED)")
	fs.Usage = func() { fmt.Fprintln(stderr, simulateUsage) }
	rest, err := parseFlags(fs, args)
	if err != nil {
		return nil, "", err
	}
	o.config = *config
	if len(rest) != 1 || simulateActions[rest[0]] == nil {
		return nil, "", usageError{msg: fmt.Sprintf("simulate: want one action, got %q\n%s", rest, simulateUsage)}
	}
	action := rest[0]
	return o, action, o.check(fs, action)
}

// check refuses flags the action does not take, so that a mistyped
// command fails rather than doing something else than asked.
func (o *simulateOptions) check(fs *flag.FlagSet, action string) error {
	allowed := append(slices.Clone(simulateCommon), simulateActions[action]...)
	var err error
	fs.Visit(func(f *flag.Flag) {
		if err == nil && !slices.Contains(allowed, f.Name) {
			err = usageError{msg: fmt.Sprintf("simulate %s does not take --%s", action, f.Name)}
		}
	})
	takes := simulateActions[action]
	switch {
	case err != nil:
		return err
	case slices.Contains(takes, "user") && o.user == "":
		return usageError{msg: fmt.Sprintf("simulate %s needs --user", action)}
	case o.user != "" && !entitlements.ValidUserID(o.user):
		return usageError{msg: fmt.Sprintf("simulate: --user %q: want 1-128 letters, digits, -, _, ., @ or :", o.user)}
	case slices.Contains(takes, "transaction") && o.transaction == "":
		return usageError{msg: fmt.Sprintf("simulate %s needs --transaction", action)}
	case o.quantity < 1:
		return usageError{msg: fmt.Sprintf("simulate: --quantity %d: want 1 or more", o.quantity)}
	}
	if set(fs, "percent") && (o.percent < 1 || o.percent > 100) {
		return usageError{msg: fmt.Sprintf("simulate: --percent %d: want 1 to 100", o.percent)}
	}
	if o.purchasedAt != "" {
		if o.purchased, err = parseWhen(o.purchasedAt, time.Now()); err != nil {
			return usageError{msg: fmt.Sprintf("simulate: --purchased-at %v", err)}
		}
	}
	return nil
}

func set(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// defaults fills what the flags left to the configuration.
func (o *simulateOptions) defaults(s *Settings) {
	if o.server == "" {
		o.server = serverURL(s.Config.Listen)
	}
	o.server = strings.TrimSuffix(o.server, "/")
	if o.bundleID == "" {
		o.bundleID = s.Config.Apple.BundleID
	}
}

// serverURL is where a client reaches a server listening on listen: a
// wildcard host (0.0.0.0, ::, none) is reached on the loopback address.
func serverURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// simulate runs action on the simulator whose state is kept beside the CA.
// The state is saved before anything is sent: the sale happened, whether
// or not the server hears of it.
func (o *simulateOptions) simulate(action string, s *Settings) ([]simulator.Event, error) {
	ca, err := devca.Load(o.caDir)
	if err != nil {
		return nil, fmt.Errorf("%w (start `creditsd serve` once with no config to create the local CA, or pass --ca-dir)", err)
	}
	path := simulatorStatePath(o.caDir)
	unlock, err := lockState(path)
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := loadState(path)
	if err != nil {
		return nil, err
	}
	sim := &simulator.Simulator{CA: ca, BundleID: o.bundleID, AppAppleID: s.Config.Apple.AppAppleID, State: st}
	events, err := o.act(sim, action, s)
	if err != nil {
		return nil, err
	}
	return events, saveState(path, st)
}

func (o *simulateOptions) act(sim *simulator.Simulator, action string, s *Settings) ([]simulator.Event, error) {
	one := func(ev simulator.Event, err error) ([]simulator.Event, error) {
		if err != nil {
			return nil, err
		}
		return []simulator.Event{ev}, nil
	}
	switch action {
	case "purchase", "subscribe":
		sale, err := o.sale(action, s)
		if err != nil {
			return nil, err
		}
		if action == "purchase" {
			return one(sim.Purchase(sale))
		}
		return one(sim.Subscribe(sale))
	case "refund":
		return one(sim.Refund(o.transaction, o.percent))
	case "refund-reversed":
		return one(sim.ReverseRefund(o.transaction))
	case "renew":
		return one(sim.Renew(o.transaction))
	case "expire":
		return sim.Expire(o.transaction)
	case "consumption-request":
		return one(sim.ConsumptionRequest(o.transaction))
	}
	return one(sim.Test(o.environment))
}

// sale is the purchase or subscription the flags describe. The buyer's
// appAccountToken is derived as the server derives it, so the server
// grants the sale to that user.
func (o *simulateOptions) sale(action string, s *Settings) (simulator.Sale, error) {
	sale := simulator.Sale{User: o.user, AppAccountToken: s.Tokens.Token(o.user), ProductID: o.product,
		Environment: o.environment, Quantity: o.quantity, PurchasedAt: o.purchased}
	if sale.ProductID == "" {
		sale.ProductID = defaultProduct(s.Config.Products, action == "subscribe")
	}
	if sale.ProductID == "" {
		return simulator.Sale{}, fmt.Errorf("the config's products hold nothing to %s: pass --product", action)
	}
	return sale, nil
}

// defaultProduct is the first credit pack (or subscription) the config
// sells, so that the simulator sells what the server knows.
func defaultProduct(products []ProductConfig, subscription bool) string {
	for _, p := range products {
		if (p.Tier != "") == subscription {
			return p.ProductID
		}
	}
	return ""
}

// parseWhen reads --purchased-at: an RFC 3339 time, a date (midnight UTC),
// or an age before now: -13mo (calendar months, clamped to the month's end
// as a lot's months are, so that -1mo on 31 March is 28 February, not 3
// March), -30d (days), or a Go duration such as -36h.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if age, ok := strings.CutPrefix(s, "-"); ok {
		var n int
		switch {
		case strings.HasSuffix(age, "mo") && scanInt(strings.TrimSuffix(age, "mo"), &n):
			back, _ := entitlements.Expiry{Months: -n}.ExpiresAt(now)
			return back, nil
		case strings.HasSuffix(age, "d") && scanInt(strings.TrimSuffix(age, "d"), &n):
			return now.AddDate(0, 0, -n), nil
		}
		d, err := time.ParseDuration(age)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q: want an age like -13mo, -30d or -36h", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time, a date (2006-01-02) or an age (-13mo)", s)
}

// scanInt reads a count of days or months: digits only.
func scanInt(s string, n *int) bool {
	v, err := strconv.Atoi(s)
	*n = v
	return err == nil && v >= 0 && !strings.HasPrefix(s, "+")
}
