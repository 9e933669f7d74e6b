package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/receipts"
	"github.com/creditsd/creditsd/receipts/devca"
)

// localWorld is creditsd serving the local profile from a temp directory,
// driven with its own `simulate` and `token` commands, as a newcomer would.
type localWorld struct {
	*world
	tokens map[string]string // minted bearer tokens by "sub scope"
}

func newLocalWorld(t *testing.T) *localWorld {
	t.Helper()
	dir := t.TempDir()
	w := &world{t: t, dir: dir, tokens: mustTokens(t), proc: startIn(t, dir, "serve", "--listen", "127.0.0.1:0")}
	return &localWorld{world: w, tokens: map[string]string{}}
}

// cli runs the binary in dir with extra environment and reports its
// output and exit code.
func cli(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CREDITSD_CONFIG="), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out.String(), errOut.String(), exit.ExitCode()
	}
	require.NoError(t, err)
	return out.String(), errOut.String(), 0
}

// simulate runs `creditsd simulate args… --server <this server>` and
// requires it to succeed; it returns the printed lines.
func (l *localWorld) simulate(args ...string) []string {
	l.t.Helper()
	out, errOut, code := cli(l.t, l.dir, nil, append([]string{"simulate", "--server", "http://" + l.proc.addr}, args...)...)
	require.Zero(l.t, code, "simulate %v: %s%s", args, out, errOut)
	return strings.Split(strings.TrimSpace(out), "\n")
}

// bearer mints a token with `creditsd token`, once per sub and scope.
func (l *localWorld) bearer(sub, scope string) string {
	l.t.Helper()
	key := sub + " " + scope
	if tok, ok := l.tokens[key]; ok {
		return tok
	}
	out, errOut, code := cli(l.t, l.dir, nil, "token", "--user", sub, "--scope", scope)
	require.Zero(l.t, code, errOut)
	l.tokens[key] = strings.TrimSpace(out)
	return l.tokens[key]
}

// ent is user's entitlement, read with their own token.
func (l *localWorld) ent(user string) entitlements.Entitlement {
	l.t.Helper()
	a := l.do("GET", "/v1/me/entitlement", l.bearer(user, ""), nil)
	require.Equal(l.t, http.StatusOK, a.status, a.raw)
	var e entitlements.Entitlement
	require.NoError(l.t, json.Unmarshal([]byte(a.raw), &e))
	return e
}

func (l *localWorld) spend(user, key string, credits int) answer {
	return l.do("POST", "/v1/users/"+user+"/spends", l.bearer("sora-backend", "credits:spend"),
		map[string]any{"idempotency_key": key, "product": "sora", "credits": credits})
}

var soldLine = regexp.MustCompile(`transaction=(\d+) `)

// sold is the transaction id a simulate line names.
func sold(t *testing.T, line string) string {
	m := soldLine.FindStringSubmatch(line)
	require.NotNil(t, m, line)
	return m[1]
}

func TestSimulateLocalProfile(t *testing.T) {
	l := newLocalWorld(t)

	t.Run("PurchaseGrants", func(t *testing.T) {
		lines := l.simulate("purchase", "--user", "alice", "--quantity", "2")
		require.Len(t, lines, 1)
		require.Regexp(t, `^ONE_TIME_CHARGE transaction=\d{16} product=com\.example\.sora\.credits10 quantity=2 user=alice `+
			`notification=[0-9a-f-]{36} status=200 outcome=pending_user$`, lines[0], "alice has not called yet")
		e := l.ent("alice") // her first call: the purchase waited for her
		require.EqualValues(t, 20, e.Credits.Balance)
		require.Equal(t, receipts.LocalTesting, e.Credits.Lots[0].Environment)
		require.Equal(t, sold(t, lines[0]), e.Credits.Lots[0].TransactionID)
	})

	t.Run("RefundMakesDebtWhenSpentAndReversalRestores", func(t *testing.T) {
		tx := sold(t, l.simulate("purchase", "--user", "bob")[0])
		require.EqualValues(t, 10, l.ent("bob").Credits.Balance)
		require.Equal(t, http.StatusCreated, l.spend("bob", "big", 35).status, "30 from the allowance, 5 from the pack")

		require.Contains(t, l.simulate("refund", "--transaction", tx)[0], "status=200 outcome=revoked")
		e := l.ent("bob")
		require.EqualValues(t, 0, e.Credits.Balance)
		require.EqualValues(t, 5, e.Credits.Debt, "the refund took back 5 credits already spent")
		a := l.spend("bob", "more", 1)
		require.Equal(t, http.StatusPaymentRequired, a.status)
		require.Equal(t, "debt_outstanding", a.code())

		require.Contains(t, l.simulate("refund-reversed", "--transaction", tx)[0], "REFUND_REVERSED transaction="+tx)
		e = l.ent("bob")
		require.EqualValues(t, 0, e.Credits.Debt)
		require.EqualValues(t, 5, e.Credits.Balance, "the unspent half is back in the pack")
	})

	t.Run("ProratedRefund", func(t *testing.T) {
		tx := sold(t, l.simulate("purchase", "--user", "carol")[0])
		require.EqualValues(t, 10, l.ent("carol").Credits.Balance, "granted before the refund")
		require.Contains(t, l.simulate("refund", "--transaction", tx, "--percent", "30")[0], " refund=30% ")
		require.EqualValues(t, 7, l.ent("carol").Credits.Balance)
	})

	t.Run("SubscribeMakesProAndExpireEndsIt", func(t *testing.T) {
		line := l.simulate("subscribe", "--user", "dave")[0]
		require.Regexp(t, `^SUBSCRIBED/INITIAL_BUY .* product=com\.example\.pro\.monthly user=dave expires=\S+Z .*outcome=subscription$`, line)
		e := l.ent("dave")
		require.Equal(t, "pro", e.Tier)
		require.EqualValues(t, 100, e.Allowance.Limit)

		require.Contains(t, l.simulate("expire", "--transaction", sold(t, line))[0], "EXPIRED/VOLUNTARY")
		require.Equal(t, "free", l.ent("dave").Tier)
	})

	t.Run("RenewExtends", func(t *testing.T) {
		// A month's subscription bought 40 days ago has lapsed; its renewal
		// covers the next month, today included.
		tx := sold(t, l.simulate("subscribe", "--user", "erin", "--purchased-at", "-40d")[0])
		require.Equal(t, "free", l.ent("erin").Tier)
		require.Contains(t, l.simulate("renew", "--transaction", tx)[0], "DID_RENEW")
		require.Equal(t, "pro", l.ent("erin").Tier)
	})

	t.Run("ExpiredPackAddsNothing", func(t *testing.T) {
		l.ent("fred")
		require.Contains(t, l.simulate("purchase", "--user", "fred", "--purchased-at", "-13mo")[0], "status=200 outcome=expired")
		require.EqualValues(t, 0, l.ent("fred").Credits.Balance)
	})

	t.Run("ConsumptionRequestAndTest", func(t *testing.T) {
		tx := sold(t, l.simulate("purchase", "--user", "gina")[0])
		require.Contains(t, l.simulate("consumption-request", "--transaction", tx)[0], "CONSUMPTION_REQUEST transaction="+tx)
		require.Regexp(t, `^TEST environment=LocalTesting notification=\S+ status=200 outcome=recorded$`, l.simulate("test")[0])
	})

	t.Run("ProductionRefused", func(t *testing.T) {
		out, errOut, code := cli(t, l.dir, nil, "simulate", "purchase", "--user", "hugo", "--environment", "Production",
			"--server", "http://"+l.proc.addr)
		require.Equal(t, 1, code)
		require.Contains(t, out, "status=400 code=invalid_environment")
		require.Contains(t, errOut, "the server refused ONE_TIME_CHARGE")
		require.EqualValues(t, 0, l.ent("hugo").Credits.Balance)
	})

	t.Run("PrintSignsWithTheCA", func(t *testing.T) {
		out, errOut, code := cli(t, l.dir, nil, "simulate", "purchase", "--user", "ivy", "--print")
		require.Zero(t, code, errOut)
		require.Contains(t, errOut, "ONE_TIME_CHARGE transaction=")
		ca, err := devca.Load(filepath.Join(l.dir, "creditsd-local", "ca"))
		require.NoError(t, err)
		n, err := verifierFor(t, ca, receipts.LocalTesting).VerifyNotification(strings.TrimSpace(out))
		require.NoError(t, err)
		require.Equal(t, l.world.tokens.Token("ivy"), n.Transaction.AppAccountToken, "derived as the server derives it")
		require.EqualValues(t, 0, l.ent("ivy").Credits.Balance, "printed, not sent")
	})

	t.Run("UnknownTransactionAndNoServer", func(t *testing.T) {
		_, errOut, code := cli(t, l.dir, nil, "simulate", "refund", "--transaction", "42", "--server", "http://"+l.proc.addr)
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "has not sold it")
		_, errOut, code = cli(t, l.dir, nil, "simulate", "test", "--server", "http://127.0.0.1:1")
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "is `creditsd serve` running")
	})

	t.Run("StateBesideTheCA", func(t *testing.T) {
		_, err := os.Stat(filepath.Join(l.dir, "creditsd-local", "simulator.json"))
		require.NoError(t, err)
	})
}

func verifierFor(t *testing.T, ca *devca.CA, env string) *receipts.Verifier {
	roots, err := receipts.ParseCertificates(ca.RootPEM())
	require.NoError(t, err)
	return &receipts.Verifier{Roots: roots, BundleID: e2eBundle, Environments: []string{env}}
}

// Any server that trusts the CA will do: a configured one, found by
// CREDITSD_CONFIG, with the CA in another directory.
func TestSimulateConfiguredServer(t *testing.T) {
	w := newWorld(t)
	caDir := filepath.Join(t.TempDir(), "ca")
	require.NoError(t, w.ca.Save(caDir))
	w.entitlement("alice")
	env := []string{"CREDITSD_CONFIG=" + w.config}
	out, errOut, code := cli(t, t.TempDir(), env, "simulate", "purchase", "--user", "alice", "--ca-dir", caDir,
		"--environment", "Sandbox", "--server", "http://"+w.proc.addr)
	require.Zero(t, code, errOut)
	require.Contains(t, out, "outcome=granted")
	require.EqualValues(t, 10, w.entitlement("alice").Credits.Balance)
	_, err := os.Stat(filepath.Join(filepath.Dir(caDir), "simulator.json"))
	require.NoError(t, err, "the state lives beside the CA")
}

func TestSimulateUsage(t *testing.T) {
	for name, args := range map[string][]string{
		"no action":           {"simulate"},
		"unknown action":      {"simulate", "gift"},
		"flag of another":     {"simulate", "refund", "--transaction", "1", "--user", "alice"},
		"needs a user":        {"simulate", "purchase"},
		"needs a transaction": {"simulate", "renew"},
		"bad user id":         {"simulate", "purchase", "--user", "a b"},
		"percent 0":           {"simulate", "refund", "--transaction", "1", "--percent", "0"},
		"percent 101":         {"simulate", "refund", "--transaction", "1", "--percent", "101"},
		"quantity 0":          {"simulate", "purchase", "--user", "a", "--quantity", "0"},
		"bad date":            {"simulate", "purchase", "--user", "a", "--purchased-at", "yesterday"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, code := cli(t, t.TempDir(), nil, args...)
			require.Equal(t, 2, code)
		})
	}
}
