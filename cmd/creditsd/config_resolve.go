package main

import (
	"crypto/x509"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/serverapi"
)

// Settings is the configuration resolved into the values the program runs
// with. Building it is where every key is checked.
type Settings struct {
	Config    Config
	Catalog   entitlements.Catalog
	Allowance entitlements.AllowancePolicy
	Roots     []*x509.Certificate // nil: the verifier's built-in Apple root
	Tokens    entitlements.TokenDeriver
	Auth      *Authenticator
	Pricing   entitlements.Pricing
	Refund    string            // entitlements.RefundDebt or RefundForgive
	AppStore  *serverapi.Client // nil until app_store_api is configured
	File      string            // the config file; "" for the local profile (set by loadSettings)
}

// Resolve checks every key and converts the configuration into Settings.
func (c Config) Resolve() (*Settings, error) {
	if err := c.checkServer(); err != nil {
		return nil, err
	}
	if err := c.Jobs.check(); err != nil {
		return nil, err
	}
	roots, err := c.Apple.resolve()
	if err != nil {
		return nil, err
	}
	allowance, err := c.Allowance.resolve()
	if err != nil {
		return nil, err
	}
	catalog, err := resolveProducts(c.Products, allowance.Tiers)
	if err != nil {
		return nil, err
	}
	if err := checkPaidTiers(c.Products, allowance); err != nil {
		return nil, err
	}
	tokens, err := entitlements.NewTokenDeriver(c.Users.TokenNamespace)
	if err != nil {
		return nil, keyErrorf("users.token_namespace", "want a UUID")
	}
	auth, err := NewAuthenticator(c.Auth)
	if err != nil {
		return nil, err
	}
	pricing, err := resolvePricing(c.Pricing)
	if err != nil {
		return nil, err
	}
	refund, err := resolveRefundPolicy(c.RefundPolicy)
	if err != nil {
		return nil, err
	}
	appStore, err := c.AppStoreAPI.resolve(c.Apple.BundleID)
	if err != nil {
		return nil, err
	}
	return &Settings{Config: c, Catalog: catalog, Allowance: allowance, Roots: roots, Tokens: tokens, Auth: auth,
		Pricing: pricing, Refund: refund, AppStore: appStore}, nil
}

func (c Config) checkServer() error {
	if err := checkListen(c.Listen); err != nil {
		return keyErrorf("listen", "%w", err)
	}
	if c.MaxConnections < 1 || c.MaxConnections > maxMaxConnections {
		return keyErrorf("max_connections", "%d: want 1 to %d", c.MaxConnections, maxMaxConnections)
	}
	if c.Database == "" {
		return keyErrorf("database", "required: the SQLite file")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		return keyErrorf("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return keyErrorf("log.format", "%q: want text or json", c.Log.Format)
	}
	return nil
}

// checkListen refuses an address net.Listen would refuse for its form: the
// config's listen and serve's --listen both pass here before the database
// is opened, so a typo costs no migration.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || strings.ContainsAny(host, " /") {
		return fmt.Errorf("%q: want host:port, e.g. 127.0.0.1:8080", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: want a port number from 0 to 65535", addr)
	}
	return nil
}

var appleEnvironments = []string{receipts.Production, receipts.Sandbox, receipts.Xcode, receipts.LocalTesting}

// resolve checks whose data is accepted and loads the root certificates.
func (a AppleConfig) resolve() ([]*x509.Certificate, error) {
	if a.BundleID == "" {
		return nil, keyErrorf("apple.bundle_id", "required")
	}
	if len(a.Environments) == 0 {
		return nil, keyErrorf("apple.environments", "want at least one of %s", strings.Join(appleEnvironments, ", "))
	}
	for i, env := range a.Environments {
		key := fmt.Sprintf("apple.environments[%d]", i)
		if !slices.Contains(appleEnvironments, env) {
			return nil, keyErrorf(key, "%q: want one of %s", env, strings.Join(appleEnvironments, ", "))
		}
		if slices.Index(a.Environments, env) < i {
			return nil, keyErrorf(key, "%s is listed twice", env)
		}
	}
	if a.AppAppleID < 0 {
		return nil, keyErrorf("apple.app_apple_id", "want the app's positive Apple ID")
	}
	if a.AppAppleID == 0 && slices.Contains(a.Environments, receipts.Production) {
		return nil, keyErrorf("apple.app_apple_id", "required when environments include Production")
	}
	var roots []*x509.Certificate
	for i, path := range a.RootCertificates {
		key := fmt.Sprintf("apple.root_certificates[%d]", i)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, keyErrorf(key, "%w", err)
		}
		certs, err := receipts.ParseCertificates(data)
		if err != nil {
			return nil, keyErrorf(key, "%s: %w", path, err)
		}
		roots = append(roots, certs...)
	}
	return roots, nil
}

// resolve builds the allowance policy. A date in changes is midnight in
// the allowance's own time zone, the boundary its days use.
func (a AllowanceConfig) resolve() (entitlements.AllowancePolicy, error) {
	var p entitlements.AllowancePolicy
	if a.Timezone == "" || a.Timezone == "Local" {
		// The host's zone would make the day boundary depend on the machine.
		return p, keyErrorf("allowance.timezone", "%q: want an IANA zone name such as UTC or Europe/Paris", a.Timezone)
	}
	loc, err := time.LoadLocation(a.Timezone)
	if err != nil {
		return p, keyErrorf("allowance.timezone", "%q: want an IANA zone name such as UTC or Europe/Paris", a.Timezone)
	}
	if _, ok := a.Tiers[entitlements.TierFree]; !ok {
		return p, keyErrorf("allowance.tiers", "want a figure for %s", entitlements.TierFree)
	}
	if err := checkTiers("allowance.tiers", a.Tiers, nil); err != nil {
		return p, err
	}
	p = entitlements.AllowancePolicy{Location: loc, Tiers: a.Tiers}
	for i, ch := range a.Changes {
		key := fmt.Sprintf("allowance.changes[%d]", i)
		from, err := parseFrom(ch.From, loc)
		if err != nil {
			return p, keyErrorf(key+".from", "%q: want a date (2027-01-01) or an RFC 3339 time", ch.From)
		}
		if len(ch.Tiers) == 0 {
			return p, keyErrorf(key+".tiers", "required: the tiers that change")
		}
		if err := checkTiers(key+".tiers", ch.Tiers, a.Tiers); err != nil {
			return p, err
		}
		for j, earlier := range p.Changes {
			if earlier.Effective.Equal(from) {
				// Which of the two would win is not something to leave to a sort.
				return p, keyErrorf(key+".from", "%q: allowance.changes[%d] takes effect then too; merge them", ch.From, j)
			}
		}
		p.Changes = append(p.Changes, entitlements.AllowanceChange{Effective: from, Tiers: ch.Tiers})
	}
	return p, nil
}

// checkTiers refuses figures outside 0..MaxCredits (an allowance beyond it
// would overflow what a user may spend, her balance added) and, given
// known, tiers it does not name: a typo in a change would otherwise be
// silently ignored.
func checkTiers(key string, tiers, known map[string]int64) error {
	for _, name := range slices.Sorted(maps.Keys(tiers)) {
		if name == "" || strings.ContainsFunc(name, unicode.IsControl) {
			return keyErrorf(key, "%q: a tier's name must be printable text", name) // the store joins names with \x1f
		}
		if tiers[name] < 0 || tiers[name] > entitlements.MaxCredits {
			return keyErrorf(key+"."+name, "%d: want 0 to %d credits a day", tiers[name], entitlements.MaxCredits)
		}
		if _, ok := known[name]; known != nil && !ok {
			return keyErrorf(key+"."+name, "not a tier in allowance.tiers")
		}
	}
	return nil
}

// checkPaidTiers refuses a subscription's tier whose allowance is below
// the free tier's on any day (allowance.changes lowering one and not the
// other): every user gets the free allowance, and a subscriber would get
// less than one who pays nothing. It names the first day that happens.
func checkPaidTiers(products []ProductConfig, p entitlements.AllowancePolicy) error {
	days := changeDays(p)
	for i, pc := range products {
		if pc.Tier == "" {
			continue
		}
		paid, free, when := p.Tiers[pc.Tier], p.Tiers[entitlements.TierFree], "in allowance.tiers"
		for n := 0; paid >= free && n < len(days); n++ {
			paid, free = p.Limit(pc.Tier, days[n]), p.Limit(entitlements.TierFree, days[n])
			when = "from " + days[n].Key
		}
		if paid < free {
			return keyErrorf(fmt.Sprintf("products[%d].tier", i), "%q gets %d credits a day %s, less than %s's %d: "+
				"a subscriber would get less than a user who pays nothing", pc.Tier, paid, when, entitlements.TierFree, free)
		}
	}
	return nil
}

// changeDays are the days on which p's changes take effect, in order: each
// from the first day that starts at or after its instant.
func changeDays(p entitlements.AllowancePolicy) []entitlements.Day {
	var days []entitlements.Day
	for _, ch := range p.Changes {
		d := p.Day(ch.Effective)
		if !d.Start.Equal(ch.Effective) {
			d = p.Day(d.End)
		}
		days = append(days, d)
	}
	slices.SortFunc(days, func(a, b entitlements.Day) int { return a.Start.Compare(b.Start) })
	return days
}

func parseFrom(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}

// resolveProducts builds the catalog. A subscription's tier must be one
// allowance.tiers gives a figure, other than free: a tier without one
// would silently get the free allowance.
func resolveProducts(products []ProductConfig, tiers map[string]int64) (entitlements.Catalog, error) {
	catalog := entitlements.Catalog{}
	for i, pc := range products {
		key := fmt.Sprintf("products[%d]", i)
		if pc.ProductID == "" {
			return nil, keyErrorf(key+".product_id", "required")
		}
		if _, dup := catalog[pc.ProductID]; dup {
			return nil, keyErrorf(key+".product_id", "%s is listed twice", pc.ProductID)
		}
		p, err := pc.product(key, tiers)
		if err != nil {
			return nil, err
		}
		catalog[p.ID] = p
	}
	return catalog, nil
}

func (pc ProductConfig) product(key string, tiers map[string]int64) (entitlements.Product, error) {
	p := entitlements.Product{ID: pc.ProductID, Credits: pc.Credits, Tier: pc.Tier}
	switch {
	case pc.Credits < 0:
		return p, keyErrorf(key+".credits", "%d: want a positive number of credits", pc.Credits)
	case pc.Credits > entitlements.MaxCredits:
		// Every purchase of it would be refused (invalid_quantity) while
		// Apple is told 200: a paid pack that grants nothing.
		return p, keyErrorf(key+".credits", "%d: want at most %d credits a pack", pc.Credits, entitlements.MaxCredits)
	case pc.Credits > 0 && pc.Tier != "":
		return p, keyErrorf(key, "set credits (a credit pack) or tier (a subscription), not both")
	case pc.Credits == 0 && pc.Tier == "":
		return p, keyErrorf(key, "set credits (a credit pack) or tier (a subscription)")
	case pc.Tier != "":
		if _, ok := tiers[pc.Tier]; !ok || pc.Tier == entitlements.TierFree {
			return p, keyErrorf(key+".tier", "%q: want a tier of allowance.tiers other than free, e.g. pro", pc.Tier)
		}
		if pc.ExpiresAfter != "" {
			return p, keyErrorf(key+".expires_after", "only for credit packs: a subscription lasts as Apple says")
		}
		return p, nil
	}
	p.ExpiresAfter = entitlements.DefaultExpiry
	if pc.ExpiresAfter != "" {
		exp, err := entitlements.ParseExpiry(pc.ExpiresAfter)
		if err != nil {
			return p, keyErrorf(key+".expires_after", "%w", err)
		}
		p.ExpiresAfter = exp
	}
	return p, nil
}
