package sqlite

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creditsd/creditsd/entitlements"
)

var (
	propSeedFlag  = flag.Uint64("prop.seed", 0, "replay the TestPropertyLedger sequence with this seed (or set PROP_SEED)")
	propSeqsFlag  = flag.Int("prop.seqs", 0, "random sequences TestPropertyLedger runs (0: 30, or 4 under -race)")
	propStepsFlag = flag.Int("prop.steps", 150, "operations in each TestPropertyLedger sequence")
)

// TestPropertyLedger runs random sequences of purchases (webhook and app
// claim), admin grants, spends, reversals, Apple refunds and refund
// reversals, expiry sweeps, tier changes and clock jumps against a real file
// database, and checks the ledger's invariants after every step. Even seeds
// run with refund_policy debt, odd ones with forgive. A failing sequence is
// shrunk before it is reported; replay it with -prop.seed=N or PROP_SEED=N.
func TestPropertyLedger(t *testing.T) {
	for _, seed := range propSeeds(t) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			t.Parallel()
			ops := propGenerate(seed, *propStepsFlag)
			fail := propRun(t, seed, ops)
			if fail == nil {
				return
			}
			short, sfail := propShrink(t, seed, ops, fail)
			t.Fatalf("seed %d (policy %s) failed at step %d: %v\n\nshrunk to %d of %d operations, failing at step %d: %v\n%s\nreplay (the whole sequence): go test ./entitlements/sqlite -run 'TestPropertyLedger' -prop.seed=%d\n\nledger at the failure:\n%s",
				seed, propPolicy(seed), fail.step, fail.err, len(short), len(ops), sfail.step, sfail.err,
				strings.Join(sfail.trace, "\n"), seed, sfail.ledger)
		})
	}
}

// TestPropertyRebuildFromLedger checks, after a long deterministic run and
// at checkpoints along it, that every user's state can be rebuilt from the
// entries alone: lots' remaining, debt and today's allowance use.
func TestPropertyRebuildFromLedger(t *testing.T) {
	steps := 600
	if propRace {
		steps = 200
	}
	for _, seed := range []uint64{20261125, 20261126} { // one per refund policy
		t.Run(propPolicy(seed), func(t *testing.T) {
			t.Parallel()
			w := propOpen(t, seed)
			for i, op := range propGenerate(seed, steps) {
				desc, err := w.apply(op)
				if err == nil {
					err = w.checkEntries() // TestPropertyLedger checks the rest after every step
				}
				require.NoError(t, err, "step %d: %s", i, desc)
				if i%100 == 99 || i == steps-1 {
					require.NoError(t, w.check(), "step %d", i)
					propRequireRebuild(t, w)
				}
			}
		})
	}
}

func propSeeds(t *testing.T) []uint64 {
	seed := *propSeedFlag
	if s := os.Getenv("PROP_SEED"); s != "" && seed == 0 {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "PROP_SEED")
	}
	if seed != 0 {
		return []uint64{seed}
	}
	n := *propSeqsFlag
	if n == 0 {
		n = 30
		if propRace {
			n = 4
		}
	}
	// Consecutive seeds alternate the refund policy (and every other pair
	// the allowance and the number of users), so that each is run.
	base := rand.Uint64() >> 2
	t.Logf("base seed %d: sequences use seeds %d..%d", base, base, base+uint64(n)-1)
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = base + uint64(i)
	}
	return seeds
}

// propPolicy is the refund policy a seed runs with.
func propPolicy(seed uint64) string {
	if seed%2 == 0 {
		return entitlements.RefundDebt
	}
	return entitlements.RefundForgive
}

// propFailure is the first step of a run that broke an invariant.
type propFailure struct {
	step   int
	err    error
	key    string // the broken invariant, to keep shrinking on the same bug
	trace  []string
	ledger string // the entries when it failed
}

// propRun applies ops to a fresh database and checks every invariant after
// each step.
func propRun(t *testing.T, seed uint64, ops []propOp) *propFailure {
	w := propOpen(t, seed)
	defer w.close()
	for i, op := range ops {
		desc, err := w.apply(op)
		w.trace = append(w.trace, fmt.Sprintf("%3d %s", i, desc))
		if err == nil {
			err = w.check()
		}
		if err != nil {
			key := err.Error()
			var ie *propInvariantError
			if errors.As(err, &ie) {
				key = ie.name
			} else if k, _, ok := strings.Cut(key, ":"); ok {
				key = k
			}
			return &propFailure{step: i, err: err, key: key, trace: w.trace, ledger: w.dumpLedger()}
		}
	}
	return nil
}

// propShrink removes operations, halves first and single ones last, as long
// as the run still breaks the same invariant.
func propShrink(t *testing.T, seed uint64, ops []propOp, fail *propFailure) ([]propOp, *propFailure) {
	ops = ops[:fail.step+1]
	deadline := time.Now().Add(90 * time.Second)
	for chunk := len(ops) / 2; chunk >= 1; chunk /= 2 {
		for i := 0; i+chunk <= len(ops) && time.Now().Before(deadline); {
			try := append(append([]propOp(nil), ops[:i]...), ops[i+chunk:]...)
			if f := propRun(t, seed, try); f != nil && f.key == fail.key {
				ops, fail = try[:f.step+1], f
				continue
			}
			i += chunk
		}
	}
	return ops, fail
}

// propOpKind names an operation.
type propOpKind int

const (
	propBuyKind propOpKind = iota
	propClaimKind
	propRefundKind
	propUnrefundKind
	propResendKind
	propGrantKind
	propSpendKind
	propReverseKind
	propAdvanceKind
	propSweepKind
	propTierKind
	propLookKind
)

// propWeights says how often each operation is drawn.
var propWeights = []struct {
	kind   propOpKind
	weight int
}{
	{propBuyKind, 10}, {propClaimKind, 3}, {propRefundKind, 8}, {propUnrefundKind, 5}, {propResendKind, 3},
	{propGrantKind, 6}, {propSpendKind, 30}, {propReverseKind, 12}, {propAdvanceKind, 12}, {propSweepKind, 3},
	{propTierKind, 2}, {propLookKind, 2},
}

// propOp is one operation drawn independently of the state: it names
// earlier purchases, spends and keys by Pick modulo how many there are when
// it runs, so any subsequence is still a valid sequence to shrink to.
type propOp struct {
	Kind propOpKind
	User int
	N    int64 // cost, credits, quantity, percent or amount of time
	Pick int
	Mode int
}

func propGenerate(seed uint64, n int) []propOp {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	total := 0
	for _, w := range propWeights {
		total += w.weight
	}
	ops := make([]propOp, n)
	for i := range ops {
		k := r.IntN(total)
		for _, w := range propWeights {
			if k < w.weight {
				ops[i].Kind = w.kind
				break
			}
			k -= w.weight
		}
		ops[i].User, ops[i].N, ops[i].Pick, ops[i].Mode = r.IntN(3), r.Int64N(1<<20), r.IntN(1<<20), r.IntN(100)
	}
	return ops
}

// propOpen is a fresh world on its own database file in the test's temp dir.
func propOpen(t *testing.T, seed uint64) *propWorld {
	db, err := Open(context.Background(), filepath.Join(propDir(t), "prop.db"))
	require.NoError(t, err)
	w := newPropWorld(db, seed)
	db.Now = func() time.Time { return w.now }
	db.Policy.Refund = propPolicy(seed)
	if seed/4%2 == 1 {
		// A small allowance, so that most spends reach the lots.
		db.Policy.Allowance.Tiers = map[string]int64{entitlements.TierFree: 3, entitlements.TierPro: 10}
	}
	t.Cleanup(func() { w.close() })
	return w
}

// propDir is a temp dir for one database, on tmpfs when there is one: the
// DSN's synchronous=FULL makes every commit an fsync, which on a real disk
// is most of a run's time and none of what it tests.
func propDir(t *testing.T) string {
	if _, err := os.Stat("/dev/shm"); err == nil {
		if dir, err := os.MkdirTemp("/dev/shm", "creditsd-prop-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// propRequireRebuild rebuilds every user's lots, debt and allowance use
// from the entries alone (the lots table only for expires_at, which never
// changes) and requires the store's state and entitlement to agree.
func propRequireRebuild(t *testing.T, w *propWorld) {
	t.Helper()
	for _, user := range w.users {
		if !w.seen[user] {
			continue
		}
		rebuilt, err := w.rebuild(user)
		require.NoError(t, err)
		st, err := w.db.UserState(w.ctx, user, tokens.Token(user), "service:test")
		require.NoError(t, err)
		require.Equal(t, propRemainingByLot(rebuilt.Lots), propRemainingByLot(st.Lots), "%s: lots", user)
		require.Equal(t, rebuilt.Debt, st.Debt, "%s: debt", user)
		require.Equal(t, rebuilt.AllowanceUsed, st.AllowanceUsed, "%s: allowance used", user)
		want, got := entitlements.Compute(rebuilt, w.db.Policy.Allowance), entitlements.Compute(st, w.db.Policy.Allowance)
		require.Equal(t, want.Credits.Balance, got.Credits.Balance, "%s: balance", user)
		require.Equal(t, want.Spendable, got.Spendable, "%s: spendable", user)
		require.Equal(t, want.Allowance, got.Allowance, "%s: allowance", user)
	}
}

func propRemainingByLot(lots []entitlements.Lot) map[string]int64 {
	m := map[string]int64{}
	for _, l := range lots {
		m[l.LotID] = l.Remaining
	}
	return m
}
