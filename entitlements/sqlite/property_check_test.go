package sqlite

import (
	"database/sql"
	"fmt"
	"sort"

	"github.com/creditsd/creditsd/entitlements"
)

// propKinds are the entry kinds the contract lists, with the sign each
// must have and whether it names a lot (0: never, 1: always, 2: either).
var propKinds = map[string]struct {
	sign int
	lot  int
}{
	"grant": {1, 1}, "admin_grant": {1, 1}, "reverse": {1, 2}, "refund_reversed": {1, 2},
	"spend": {-1, 2}, "expire": {-1, 1}, "refund": {-1, 1}, "debt_paid": {-1, 1}, "debt": {-1, 0},
}

// check runs every invariant; the first broken one is the answer.
func (w *propWorld) check() error {
	for _, c := range []func() error{
		w.checkEntries, w.checkLots, w.checkDebt, w.checkAllowance, w.checkEntitlements,
		w.checkConservation, w.checkSpends, w.checkTotals, w.checkPurchases, w.checkRefunds,
		w.checkLedgerCheck,
	} {
		if err := c(); err != nil {
			return err
		}
	}
	return nil
}

// checkLedgerCheck: the operators' check (CheckLedger) finds nothing in a
// ledger that every check above passes, and reads every lot and user.
func (w *propWorld) checkLedgerCheck() error {
	c, err := w.db.CheckLedger(w.ctx, "") // the world prunes no counters
	if err != nil {
		return err
	}
	if c.Found != 0 {
		return propErr("ledger check", "%d mismatches: %q", c.Found, c.Mismatches)
	}
	var lots, users int64
	if err := w.queryRow(`SELECT (SELECT count(*) FROM lots), (SELECT count(*) FROM users)`).Scan(&lots, &users); err != nil {
		return err
	}
	if c.Lots != lots || c.Users != users {
		return propErr("ledger check", "read %d lots and %d users of %d and %d", c.Lots, c.Users, lots, users)
	}
	return nil
}

// newEntriesPeek are the entries written since the last check, which stay
// unread for the next.
func (w *propWorld) newEntriesPeek() ([]propEntry, error) {
	last := w.lastEntry
	es, err := w.newEntries()
	w.lastEntry = last
	return es, err
}

// checkArrivals: a lot made this step (its grant among es) for a pack
// refunded in part before it existed pays the user's debt first, as if the
// purchase had arrived before its refund, and then the refund takes the
// model's share of what is left, whichever path made the lot (the webhook,
// the user's first call, a claim); a lot of a pack not so refunded is not
// refunded as it arrives.
func (w *propWorld) checkArrivals(es []propEntry) error {
	for i, g := range es {
		if g.kind != "grant" {
			continue
		}
		var b *propBuy
		for _, c := range w.buys {
			if c.id == g.ref {
				b = c
			}
		}
		if b == nil {
			continue
		}
		left, removed, refunded := g.credits, int64(0), false
		for _, e := range es[i+1:] {
			switch {
			case e.lot != g.lot || refunded:
			case e.kind == "debt_paid":
				left += e.credits
			case e.kind == "refund":
				removed, refunded = -e.credits, true
			}
		}
		switch {
		case b.refund == nil && refunded:
			return propErr("arrival", "%s: its new lot was refunded %d, the model has no refund", b.id, removed)
		case b.refund != nil && removed != min(b.refund.revoked, left):
			return propErr("arrival", "%s: its new lot was refunded %d of the %d its debt left, want %d (revoked %d)",
				b.id, removed, left, min(b.refund.revoked, left), b.refund.revoked)
		}
	}
	return nil
}

// checkEntries: every new entry is of a kind the contract lists, with its
// sign and lot; the model takes in the kinds no answer reports.
func (w *propWorld) checkEntries() error {
	es, err := w.newEntries()
	if err != nil {
		return err
	}
	if err := w.checkArrivals(es); err != nil {
		return err
	}
	for _, e := range es {
		k, ok := propKinds[e.kind]
		switch {
		case !ok:
			return propErr("entry kinds", "kind %q is not in the contract: %+v", e.kind, e)
		case k.sign > 0 && e.credits <= 0, k.sign < 0 && e.credits > 0, e.kind != "refund" && e.credits == 0:
			return propErr("entry signs", "%+v", e)
		case k.lot == 0 && e.lot != "", k.lot == 1 && e.lot == "":
			return propErr("entry lots", "%+v", e)
		case e.lot == "" && (e.kind == "spend" || e.kind == "reverse") && e.day == "":
			return propErr("entry lots", "an allowance entry without its day: %+v", e)
		case e.kind == "debt" && w.db.Policy.Refund == entitlements.RefundForgive:
			return propErr("entry kinds", "debt under refund_policy forgive: %+v", e)
		}
		if e.lot != "" && (e.kind == "refund" || e.kind == "refund_reversed" || e.kind == "debt_paid") {
			w.flow[e.kind] += e.credits
		}
		if e.kind == "grant" {
			for _, b := range w.buys {
				if b.id == e.ref && b.lot == "" {
					b.lot = e.lot // checkPurchases checks that it is the transaction's lot
				}
			}
		}
	}
	return nil
}

// checkLots (1): 0 ≤ remaining ≤ granted, remaining is the sum of the
// lot's entries, and the first of them grants it.
func (w *propWorld) checkLots() error {
	return w.eachRow(`SELECT l.lot_id, l.granted, l.remaining, COALESCE(SUM(e.credits), 0),
		(SELECT kind || ' ' || credits FROM entries f WHERE f.lot_id = l.lot_id ORDER BY entry_id LIMIT 1)
		FROM lots l LEFT JOIN entries e ON e.lot_id = l.lot_id GROUP BY l.lot_id`, func(r *sql.Rows) error {
		var id, first string
		var granted, remaining, sum int64
		if err := r.Scan(&id, &granted, &remaining, &sum, &first); err != nil {
			return err
		}
		if remaining < 0 || remaining > granted || remaining != sum || !propGrantsLot(first, granted) {
			return propErr("lots rebuild", "lot %s: granted %d, remaining %d, entries sum to %d, first entry %q",
				id, granted, remaining, sum, first)
		}
		return nil
	})
}

// propGrantsLot: a lot's first entry grants it: a purchase, an admin grant,
// or a refund giving back debt that other lots paid (a restored lot: the
// refund reversed, or a spend reversed into its pack).
func propGrantsLot(first string, granted int64) bool {
	for _, kind := range []string{"grant", "admin_grant", "refund_reversed"} {
		if first == fmt.Sprintf("%s %d", kind, granted) {
			return true
		}
	}
	return false
}

// checkDebt (2): users.debt rebuilds from the debt entries and is ≥ 0.
func (w *propWorld) checkDebt() error {
	return w.eachRow(`SELECT u.user_id, u.debt, COALESCE((SELECT
		-SUM(CASE WHEN kind = 'debt' THEN credits ELSE 0 END)
		+SUM(CASE WHEN kind = 'debt_paid' THEN credits ELSE 0 END)
		-SUM(CASE WHEN kind = 'refund_reversed' AND lot_id IS NULL THEN credits ELSE 0 END)
		FROM entries e WHERE e.user_id = u.user_id), 0) FROM users u`, func(r *sql.Rows) error {
		var user string
		var debt, rebuilt int64
		if err := r.Scan(&user, &debt, &rebuilt); err != nil {
			return err
		}
		if debt < 0 || debt != rebuilt {
			return propErr("debt rebuild", "%s: debt %d, entries say %d", user, debt, rebuilt)
		}
		return nil
	})
}

// checkAllowance (3): each day's allowance counter is what that day's
// allowance spends and reversals add up to, and never negative.
func (w *propWorld) checkAllowance() error {
	used := map[string]int64{}
	err := w.eachRow(`SELECT user_id, day, used FROM allowance_usage`, func(r *sql.Rows) error {
		var user, day string
		var n int64
		err := r.Scan(&user, &day, &n)
		used[user+" "+day] = n
		if n < 0 {
			return propErr("allowance rebuild", "%s %s: used %d", user, day, n)
		}
		return err
	})
	if err != nil {
		return err
	}
	rebuilt := map[string]int64{}
	err = w.eachRow(`SELECT user_id, allowance_day, -SUM(credits) FROM entries
		WHERE lot_id IS NULL AND kind IN ('spend', 'reverse') GROUP BY user_id, allowance_day`, func(r *sql.Rows) error {
		var user, day string
		var n int64
		err := r.Scan(&user, &day, &n)
		rebuilt[user+" "+day] = n
		return err
	})
	if err != nil {
		return err
	}
	for k, n := range rebuilt {
		if used[k] != n {
			return propErr("allowance rebuild", "%s: used %d, entries say %d", k, used[k], n)
		}
	}
	for k, n := range used {
		if rebuilt[k] != n {
			return propErr("allowance rebuild", "%s: used %d, entries say %d", k, n, rebuilt[k])
		}
	}
	return nil
}

// checkEntitlements (4): the store creates exactly the users the model
// expects, and each one's entitlement adds up.
func (w *propWorld) checkEntitlements() error {
	var users int
	if err := w.queryRow(`SELECT count(*) FROM users`).Scan(&users); err != nil {
		return err
	}
	if users != len(w.seen) {
		return propErr("users", "the store has %d users, the model expects %v", users, w.seen)
	}
	for _, user := range w.users {
		if !w.seen[user] {
			continue
		}
		st, err := w.db.UserState(w.ctx, user, tokens.Token(user), "service:test")
		if err != nil {
			return err
		}
		e := entitlements.Compute(st, w.db.Policy.Allowance)
		var balance, debt, used int64
		if err := w.queryRow(`SELECT
			(SELECT COALESCE(SUM(remaining), 0) FROM lots WHERE user_id = ?1 AND (expires_at IS NULL OR expires_at > ?2)),
			(SELECT debt FROM users WHERE user_id = ?1),
			(SELECT COALESCE(SUM(used), 0) FROM allowance_usage WHERE user_id = ?1 AND day = ?3)`,
			user, w.now.UnixMilli(), w.db.Policy.Allowance.Day(w.now).Key).Scan(&balance, &debt, &used); err != nil {
			return err
		}
		a := e.Allowance
		if e.Credits.Balance != balance || balance < 0 || e.Credits.Debt != debt || a.Used != used || a.Remaining < 0 ||
			a.Remaining != max(a.Limit-a.Used, 0) || e.Spendable != max(a.Remaining+balance-debt, 0) {
			return propErr("entitlement", "%s: %+v; lots hold %d unexpired, debt %d, used today %d", user, e, balance, debt, used)
		}
		// Held credits pay debt as soon as both exist, so that spendable and
		// a 402 debt_outstanding never disagree.
		if debt > 0 && balance > 0 {
			return propErr("debt is settled", "%s owes %d while holding %d spendable credits", user, debt, balance)
		}
	}
	return nil
}

// checkConservation (5): credits enter lots only by grants, reversals and
// restored refunds and leave only by spends, expiry, refunds and debt
// payments; the model's account of each kind, kept from the operations'
// answers, matches the entries, and it sums to what the lots hold.
func (w *propWorld) checkConservation() error {
	entries := map[string]int64{}
	err := w.eachRow(`SELECT kind, SUM(credits) FROM entries WHERE lot_id IS NOT NULL GROUP BY kind`, func(r *sql.Rows) error {
		var kind string
		var n int64
		err := r.Scan(&kind, &n)
		entries[kind] = n
		return err
	})
	if err != nil {
		return err
	}
	var held, sum int64
	if err := w.queryRow(`SELECT COALESCE(SUM(remaining), 0) FROM lots`).Scan(&held); err != nil {
		return err
	}
	for kind := range propKinds {
		if entries[kind] != w.flow[kind] {
			return propErr("conservation", "%s entries on lots sum to %d, the model says %d (model %v)",
				kind, entries[kind], w.flow[kind], w.flow)
		}
		sum += w.flow[kind]
	}
	if sum != held {
		return propErr("conservation", "lots hold %d, the model's flows %v sum to %d", held, w.flow, sum)
	}
	return nil
}

// checkSpends (6): every kept spend is paid exactly by its allowance part
// and its lot parts, each written once to the ledger.
func (w *propWorld) checkSpends() error {
	var n int
	if err := w.queryRow(`SELECT count(*) FROM spends`).Scan(&n); err != nil {
		return err
	}
	if n != len(w.spends) {
		return propErr("spends", "%d spends kept, %d succeeded", n, len(w.spends))
	}
	return w.eachRow(`SELECT s.spend_id, s.credits, s.from_allowance, COALESCE(sl.credits, 0), COALESCE(e.credits, 0)
		FROM spends s
		LEFT JOIN (SELECT spend_id, SUM(credits) AS credits FROM spend_lots GROUP BY spend_id) sl ON sl.spend_id = s.spend_id
		LEFT JOIN (SELECT ref, -SUM(credits) AS credits FROM entries WHERE kind = 'spend' GROUP BY ref) e ON e.ref = s.spend_id`,
		func(r *sql.Rows) error {
			var id string
			var credits, allowance, lots, entries int64
			if err := r.Scan(&id, &credits, &allowance, &lots, &entries); err != nil {
				return err
			}
			if allowance+lots != credits || entries != credits {
				return propErr("spends", "%s: %d credits, %d from allowance, %d from lots, entries %d", id, credits, allowance, lots, entries)
			}
			return nil
		})
}

// checkTotals (7): the running totals each commit adds to match the entries.
func (w *propWorld) checkTotals() error {
	totals, err := w.db.Totals(w.ctx)
	if err != nil {
		return err
	}
	var want []Total
	err = w.eachRow(`SELECT kind, product, SUM(abs(credits)), count(*) FROM entries GROUP BY kind, product ORDER BY kind, product`,
		func(r *sql.Rows) error {
			var t Total
			err := r.Scan(&t.Kind, &t.Product, &t.Credits, &t.Entries)
			want = append(want, t)
			return err
		})
	if err != nil {
		return err
	}
	if fmt.Sprint(totals) != fmt.Sprint(want) {
		return propErr("ledger totals", "totals %v, entries say %v", totals, want)
	}
	return nil
}

// checkPurchases: each transaction is recorded, owned, granted or not, and
// refunded or not as the model expects, and has at most one lot, granted
// once, with the pack's credits, purchase date and expiry.
func (w *propWorld) checkPurchases() error {
	got := map[string]string{}
	err := w.eachRow(`SELECT t.transaction_id, COALESCE(t.user_id, ''), t.outcome, COALESCE(t.lot_id, ''),
		t.signed_date, t.revocation_date IS NOT NULL, EXISTS (SELECT 1 FROM refunds r WHERE r.lot_id = l.lot_id AND r.status = 'active'),
		(SELECT count(*) FROM refunds r WHERE r.transaction_id = t.transaction_id AND r.status = 'active'),
		COALESCE(l.user_id || ' ' || l.granted || ' ' || l.granted_at || ' ' || l.expires_at || ' ' || l.source || ' ' || l.transaction_id, ''),
		COALESCE(g.n, '0 0')
		FROM apple_transactions t LEFT JOIN lots l ON l.lot_id = t.lot_id
		LEFT JOIN (SELECT ref, count(*) || ' ' || SUM(credits) AS n FROM entries WHERE kind = 'grant' GROUP BY ref) g
			ON g.ref = t.transaction_id`, func(r *sql.Rows) error {
		var id, owner, outcome, lot, lotRow, grants string
		var signed int64
		var revoked, refunded bool
		var active int
		if err := r.Scan(&id, &owner, &outcome, &lot, &signed, &revoked, &refunded, &active, &lotRow, &grants); err != nil {
			return err
		}
		got[id] = fmt.Sprintf("owner=%q outcome=%s lot=%q signed=%d revoked=%t refunded=%t active=%d lotrow=%q grants=%q",
			owner, outcome, lot, signed, revoked, refunded, active, lotRow, grants)
		return nil
	})
	if err != nil {
		return err
	}
	recorded := 0
	for _, b := range w.buys {
		if !b.recorded {
			continue
		}
		recorded++
		want := fmt.Sprintf("owner=%q outcome=%s lot=%q signed=%d revoked=%t refunded=%t active=%d lotrow=%q grants=%q",
			b.owner, b.outcome, b.lot, b.signed.UnixMilli(), b.revoked, b.refund != nil, propBool(b.refund != nil),
			propLotRow(b), propGrants(b))
		if got[b.id] != want {
			return propErr("purchases", "%s:\n  store %s\n  model %s", b.id, got[b.id], want)
		}
	}
	if recorded != len(got) {
		return propErr("purchases", "the store recorded %d transactions, the model %d", len(got), recorded)
	}
	return nil
}

func propBool(b bool) int {
	if b {
		return 1
	}
	return 0
}

func propLotRow(b *propBuy) string {
	if !b.wantLot {
		return ""
	}
	bought := b.versions[0].PurchaseDate
	exp, _ := catalog[b.versions[0].ProductID].ExpiresAfter.ExpiresAt(bought)
	return fmt.Sprintf("%s %d %d %d app_store %s", b.owner, b.credits, bought.UnixMilli(), exp.UnixMilli(), b.id)
}

func propGrants(b *propBuy) string {
	if !b.wantLot {
		return "0 0"
	}
	return fmt.Sprintf("1 %d", b.credits)
}

// checkRefunds: a refund never takes back more than Apple revoked — what
// it removed from the pack, the debt it created and any later refunds of
// credits returned to the pack, less what a reversal restored — and once
// Apple reverses it, everything it took is restored.
func (w *propWorld) checkRefunds() error {
	taken := map[string]int64{}
	err := w.eachRow(`SELECT t.transaction_id, -COALESCE(l.credits, 0) - COALESCE(r.credits, 0)
		FROM apple_transactions t
		LEFT JOIN (SELECT lot_id, SUM(credits) AS credits FROM entries WHERE kind = 'refund' GROUP BY lot_id) l ON l.lot_id = t.lot_id
		LEFT JOIN (SELECT ref, SUM(credits) AS credits FROM entries WHERE kind IN ('debt', 'refund_reversed') GROUP BY ref) r
			ON r.ref = t.transaction_id
		WHERE t.lot_id IS NOT NULL`, func(r *sql.Rows) error {
		var id string
		var n int64
		err := r.Scan(&id, &n)
		taken[id] = n
		return err
	})
	if err != nil {
		return err
	}
	active := map[string]int64{}
	if err := w.eachRow(`SELECT transaction_id, percent FROM refunds WHERE status = 'active'`, func(r *sql.Rows) error {
		var id string
		var n int64
		err := r.Scan(&id, &n)
		active[id] = n
		return err
	}); err != nil {
		return err
	}
	// The refund in force revokes the credits of Apple's newest revocation:
	// a version revoking another number of them revises it.
	for _, b := range w.buys {
		pct, ok := active[b.id]
		if b.refund != nil && (!ok || b.revokedAt(pct) != b.refund.revoked) {
			return propErr("refund share", "%s: the refund in force revokes %d/100000 of %d (found %t), Apple's newest %d credits",
				b.id, pct, b.credits, ok, b.refund.revoked)
		}
	}
	for _, b := range w.buys {
		switch n := taken[b.id]; {
		case b.refund == nil && n != 0:
			return propErr("refund reversal restores", "%s: refunds took %d and the reversal left it taken", b.id, n)
		case b.refund != nil && (n < 0 || n > b.refund.revoked):
			return propErr("refund bound", "%s: refunds took %d of a pack of %d, Apple revoked %d", b.id, n, b.credits, b.refund.revoked)
		}
	}
	return nil
}

func (w *propWorld) eachRow(q string, fn func(*sql.Rows) error, args ...any) error {
	rows, err := w.query(q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// rebuild is user's state from the ledger alone: each lot's remaining is
// the sum of its entries, debt and today's allowance use those of the debt
// and allowance entries. Only expires_at, which never changes, and the
// tier, which the ledger does not hold, come from elsewhere.
func (w *propWorld) rebuild(user string) (entitlements.UserState, error) {
	st := entitlements.UserState{At: w.now, UserID: user}
	day := w.db.Policy.Allowance.Day(w.now).Key
	err := w.eachRow(`SELECT e.lot_id, SUM(e.credits), MAX(l.expires_at) FROM entries e JOIN lots l ON l.lot_id = e.lot_id
		WHERE e.user_id = ? GROUP BY e.lot_id`, func(r *sql.Rows) error {
		var l entitlements.Lot
		var exp sql.NullInt64
		if err := r.Scan(&l.LotID, &l.Remaining, &exp); err != nil {
			return err
		}
		l.ExpiresAt = fromNullMillis(exp)
		if l.Remaining > 0 && !l.Expired(w.now) {
			st.Lots = append(st.Lots, l)
		}
		return nil
	}, user)
	if err != nil {
		return st, err
	}
	sort.Slice(st.Lots, func(i, j int) bool { return st.Lots[i].LotID < st.Lots[j].LotID })
	err = w.queryRow(`SELECT
		COALESCE(SUM(CASE WHEN kind = 'debt' THEN -credits WHEN kind = 'debt_paid' THEN credits
			WHEN kind = 'refund_reversed' AND lot_id IS NULL THEN -credits ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN lot_id IS NULL AND kind IN ('spend', 'reverse') AND allowance_day = ? THEN -credits ELSE 0 END), 0)
		FROM entries WHERE user_id = ?`, day, user).Scan(&st.Debt, &st.AllowanceUsed)
	if err != nil {
		return st, err
	}
	st.Tier, err = w.tierOf(user)
	return st, err
}

func (w *propWorld) tierOf(user string) (string, error) {
	var tier string
	err := w.queryRow(`SELECT COALESCE((SELECT tier FROM tier_overrides WHERE user_id = ?), 'free')`,
		user).Scan(&tier)
	return tier, err
}
