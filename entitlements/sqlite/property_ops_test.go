package sqlite

import (
	"fmt"
	"time"

	"github.com/creditsd/creditsd/entitlements"
)

// apply runs one operation, checks what its answer and its entries must
// be, and describes it for the failure report.
func (w *propWorld) apply(op propOp) (string, error) {
	// Every operation takes a second, so that no two lots tie on expiry and
	// grant time: the tie-break is the lot id, which is random, and a
	// replayed seed must spend the same lots.
	w.now = w.now.Add(time.Second)
	switch op.Kind {
	case propBuyKind:
		return w.buy(op)
	case propClaimKind:
		return w.claim(op)
	case propRefundKind:
		return w.refund(op)
	case propUnrefundKind:
		return w.unrefund(op)
	case propResendKind:
		return w.resend(op)
	case propGrantKind:
		return w.grant(op)
	case propSpendKind:
		return w.spend(op)
	case propReverseKind:
		return w.reverse(op)
	case propAdvanceKind:
		return w.advance(op)
	case propSweepKind:
		return w.sweep(op)
	case propTierKind:
		return w.setTier(op)
	}
	return w.look(op)
}

// buy is a new consumable purchase of 1–3 packs, bought now or up to 400
// days ago, arriving by the webhook or by the buyer's app. One in seven is
// of packs of 50,000 credits: past 100,000 credits a lot, a prorated
// refund's units decide what it revokes (entitlements.Revoked).
func (w *propWorld) buy(op propOp) (string, error) {
	buyer := w.user(op.User)
	product, per := "pack", int64(10)
	if op.N%7 == 6 {
		product, per = "big", catalog["big"].Credits
	}
	quantity := 1 + op.N%3
	b := &propBuy{id: w.newID("tx"), buyer: buyer, token: tokens.Token(buyer), credits: per * quantity}
	if op.Mode%5 == 0 {
		b.token = "" // the app set no app_account_token: only a claim assigns it
	}
	age := time.Duration(0)
	switch k := op.Pick % 20; {
	case k >= 16:
		age = time.Duration(330+op.Pick%70) * 24 * time.Hour // around the 12-month expiry
	case k >= 10:
		age = time.Duration(op.Pick%300) * 24 * time.Hour
	}
	v := entitlements.Purchase{TransactionID: b.id, OriginalTransactionID: b.id, ProductID: product, Type: "Consumable",
		Environment: "Sandbox", AppAccountToken: b.token, Quantity: quantity, PurchaseDate: w.now.Add(-age),
		SignedDate: w.now, JWS: "jws-" + b.id}
	partly := ""
	if op.Pick%7 == 3 { // first seen already refunded in part: it earns its lot, less the refund
		v.RevocationDate, v.RevocationType, v.RevocationPercent = w.now, "REFUND_PRORATED", propShare(quantity, op.N)
		partly = fmt.Sprintf(", already refunded %d/100000", v.RevocationPercent)
	}
	b.versions = []entitlements.Purchase{v}
	w.buys = append(w.buys, b)
	desc := fmt.Sprintf("buy %s by %s: %d credits bought %s ago, token=%t%s", b.id, buyer, b.credits, age, b.token != "", partly)
	if op.Mode%2 == 0 {
		return desc + " via webhook", w.send(b, "ONE_TIME_CHARGE", v)
	}
	return desc + " via claim", w.claimAs(b, buyer, v)
}

// claim is the app submitting an existing purchase's newest version; a
// token-less one may be claimed by another user, once.
func (w *propWorld) claim(op propOp) (string, error) {
	if len(w.buys) == 0 {
		return "claim: no purchase yet", nil
	}
	b := w.buys[op.Pick%len(w.buys)]
	claimant := b.buyer
	if b.token == "" && op.Mode%3 == 0 {
		claimant = w.user(op.User)
	}
	return fmt.Sprintf("claim %s by %s", b.id, claimant), w.claimAs(b, claimant, b.versions[len(b.versions)-1])
}

func (w *propWorld) claimAs(b *propBuy, claimant string, v entitlements.Purchase) error {
	if b.recorded && b.owner != "" && b.owner != claimant {
		return w.unchanged(func() error {
			_, err := w.db.ClaimPurchase(w.ctx, claimant, tokens.Token(claimant), v, propPlan(v, w.now))
			return propWant("claim", err, "transaction_claimed")
		})
	}
	had := b.wantLot
	granted, err := w.db.ClaimPurchase(w.ctx, claimant, tokens.Token(claimant), v, propPlan(v, w.now))
	if err != nil {
		return propWant("claim", err, "")
	}
	w.ensure(claimant)
	w.record(b, v, claimant)
	if granted != (b.wantLot && !had) {
		return propErr("claim answer", "granted=%t, the model expects a new lot: %t", granted, b.wantLot && !had)
	}
	return w.afterPurchase("claim")
}

func propPlan(v entitlements.Purchase, now time.Time) entitlements.Grant {
	g, err := entitlements.PlanGrant(v, catalog, now)
	if err != nil {
		panic(err)
	}
	return g
}

// send delivers a version of b by the webhook.
func (w *propWorld) send(b *propBuy, typ string, v entitlements.Purchase) error {
	var remaining int64 = -1
	if b.wantLot && b.lot != "" {
		if err := w.queryRow(`SELECT remaining FROM lots WHERE lot_id = ?`, b.lot).Scan(&remaining); err != nil {
			return err
		}
	}
	wasRefunded := b.refund != nil
	dup, err := w.notify(typ, v)
	if err != nil {
		return propWant("notification", err, "")
	}
	if dup {
		return propErr("notification answer", "a new notificationUUID was reported a duplicate")
	}
	w.record(b, v, "")
	// A lot made this step, refunded as it arrived, is checkArrivals'.
	if err := w.afterPurchase(typ); err != nil || wasRefunded || b.refund == nil || remaining < 0 {
		return err
	}
	// The refund just started: it removes the unspent part first, never
	// more than Apple revoked.
	es, err := w.newEntriesPeek()
	if err != nil {
		return err
	}
	var removed int64
	for _, e := range es {
		if e.kind == "refund" && e.lot == b.lot {
			removed -= e.credits
		}
	}
	if want := min(b.refund.revoked, remaining); removed != want {
		return propErr("refund", "%s: removed %d of the lot's %d unspent credits, want %d (revoked %d)",
			b.id, removed, remaining, want, b.refund.revoked)
	}
	return nil
}

// afterPurchase checks the entries of an operation that recorded or
// claimed a purchase: only grants, refunds and what follows from them.
func (w *propWorld) afterPurchase(op string) error {
	return w.onlyKinds(op, "grant", "debt_paid", "refund", "debt", "refund_reversed")
}

// refund is Apple revoking a purchase, in full or prorated, re-signed with
// a newer signedDate.
func (w *propWorld) refund(op propOp) (string, error) {
	if len(w.buys) == 0 {
		return "refund: no purchase yet", nil
	}
	b := w.pickBuy(op, func(b *propBuy) bool { return b.lot != "" && b.refund == nil })
	v := w.nextVersion(b, func(v *entitlements.Purchase) {
		v.RevocationDate, v.RevocationType, v.RevocationPercent = w.now, "", 0
		if op.Mode%2 == 1 {
			v.RevocationType, v.RevocationPercent = "REFUND_PRORATED", propShare(v.Quantity, op.N)
		}
	})
	return fmt.Sprintf("refund %s %q %d", b.id, v.RevocationType, v.RevocationPercent), w.send(b, "REFUND", v)
}

// propShare is a REFUND_PRORATED percentage for a purchase of quantity
// units: for several, half the time Apple's rounding (half up) of a whole
// number of them, else any share.
func propShare(quantity, n int64) int64 {
	if quantity > 1 && n%2 == 0 {
		k := 1 + n/2%(quantity-1)
		return (2*k*100000 + quantity) / (2 * quantity)
	}
	return 1 + n%99999
}

// pickBuy picks a purchase, mostly among those where want holds: most
// refunds are of granted packs, most reversals of refunds in force.
func (w *propWorld) pickBuy(op propOp, want func(*propBuy) bool) *propBuy {
	var some []*propBuy
	for _, b := range w.buys {
		if want(b) {
			some = append(some, b)
		}
	}
	if len(some) == 0 || op.Mode%5 == 0 {
		some = w.buys
	}
	return some[op.Pick%len(some)]
}

// unrefund is Apple reversing a refund: a newer version without revocation.
func (w *propWorld) unrefund(op propOp) (string, error) {
	if len(w.buys) == 0 {
		return "refund reversal: no purchase yet", nil
	}
	b := w.pickBuy(op, func(b *propBuy) bool { return b.refund != nil })
	v := w.nextVersion(b, func(v *entitlements.Purchase) {
		v.RevocationDate, v.RevocationType, v.RevocationPercent = time.Time{}, "", 0
	})
	return fmt.Sprintf("refund reversal %s", b.id), w.send(b, "REFUND_REVERSED", v)
}

// resend is a stale version under a new UUID, or a duplicate UUID: Apple's
// retries and out-of-order deliveries change nothing.
func (w *propWorld) resend(op propOp) (string, error) {
	if len(w.buys) == 0 {
		return "resend: no purchase yet", nil
	}
	b := w.buys[op.Pick%len(w.buys)]
	v := b.versions[op.Pick%len(b.versions)]
	if op.Mode%2 == 0 || len(w.uuids) == 0 {
		return fmt.Sprintf("resend %s version %s", b.id, v.SignedDate.Format(time.RFC3339)), w.unchanged(func() error {
			dup, err := w.notify("ONE_TIME_CHARGE", v)
			if err == nil && dup {
				err = propErr("notification answer", "a new UUID was reported a duplicate")
			}
			return propWant("notification", err, "")
		})
	}
	uuid := w.uuids[op.Pick%len(w.uuids)]
	return fmt.Sprintf("duplicate notification %s", uuid), w.unchanged(func() error {
		dup, err := w.notifyAs(uuid, "ONE_TIME_CHARGE", v)
		if err == nil && !dup {
			err = propErr("notification answer", "duplicate %s not reported", uuid)
		}
		return propWant("notification", err, "")
	})
}

// grant is an admin grant of 1–40 credits, never expiring or expiring in
// hours or months; or a replay of an earlier key, with the same body or
// another.
func (w *propWorld) grant(op propOp) (string, error) {
	if op.Mode%10 >= 7 && len(w.grants) > 0 {
		g := w.grants[op.Pick%len(w.grants)]
		req := g.req
		if op.Mode%10 == 9 {
			req.Credits++
			req.Hash = propGrantHash(req)
			return fmt.Sprintf("grant replay %s with another body", req.Key), w.unchanged(func() error {
				_, _, _, err := w.db.AdminGrant(w.ctx, req)
				return propWant("grant replay", err, "idempotency_key_reused")
			})
		}
		return fmt.Sprintf("grant replay %s", req.Key), w.unchanged(func() error {
			lot, _, replayed, err := w.db.AdminGrant(w.ctx, req)
			if err == nil && (!replayed || lot.LotID != g.lot) {
				err = propErr("grant replay", "replayed=%t lot %s, want the first grant's lot %s", replayed, lot.LotID, g.lot)
			}
			return propWant("grant replay", err, "")
		})
	}
	user := w.user(op.User)
	req := entitlements.GrantRequest{UserID: user, Token: tokens.Token(user), Key: w.newID("g"),
		Credits: 1 + op.N%40, Reason: "goodwill", Actor: "admin:prop"}
	switch op.Pick % 3 {
	case 1:
		exp := w.now.Add(time.Duration(1+op.Pick%72) * time.Hour)
		req.ExpiresAt = &exp
	case 2:
		exp := w.now.AddDate(0, 1+op.Pick%13, 0)
		req.ExpiresAt = &exp
	}
	req.Hash = propGrantHash(req)
	desc := fmt.Sprintf("grant %s %d credits to %s expiring %v", req.Key, req.Credits, user, req.ExpiresAt)
	before, err := w.dryState(user)
	if err != nil {
		return desc, err
	}
	lot, st, replayed, err := w.db.AdminGrant(w.ctx, req)
	if err := propWant("grant", err, ""); err != nil {
		return desc, err
	}
	if replayed {
		return desc, propErr("grant answer", "a new key was answered as a replay")
	}
	w.ensure(user)
	w.flow["admin_grant"] += req.Credits
	w.grants = append(w.grants, &propGrant{req: req, lot: lot.LotID})
	// Credits that arrive while the user owes pay the debt first.
	balance := entitlements.Compute(before, w.db.Policy.Allowance).Credits.Balance
	paid := min(before.Debt, balance+req.Credits)
	if lot.Granted != req.Credits || st.Debt != before.Debt-paid {
		return desc, propErr("grant", "lot granted %d (want %d), debt %d → %d, want %d paid", lot.Granted, req.Credits,
			before.Debt, st.Debt, paid)
	}
	return desc, w.settled("grant", user, map[string]int64{"admin_grant": req.Credits, "debt_paid": -paid})
}

func propGrantHash(req entitlements.GrantRequest) string {
	exp := "never"
	if req.ExpiresAt != nil {
		exp = req.ExpiresAt.Format(time.RFC3339)
	}
	return fmt.Sprintf("%d/%s", req.Credits, exp)
}

// settled checks an operation that ends by paying debt: the entries of
// each kind sum as expected (pending purchases granted on the user's first
// call aside), and either no debt is left or nothing spendable is.
func (w *propWorld) settled(op, user string, want map[string]int64) error {
	es, err := w.newEntriesPeek()
	if err != nil {
		return err
	}
	got := map[string]int64{}
	arrived := arrivals(es)
	for _, e := range es {
		if !arrived(e) {
			got[e.kind] += e.credits
		}
	}
	for k, v := range want {
		if got[k] != v {
			return propErr(op+" entries", "%s sums to %d, want %d (entries %+v)", k, got[k], v, es)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			return propErr(op+" entries", "unexpected %s entries: %+v", k, es)
		}
	}
	st, err := w.db.UserState(w.ctx, user, tokens.Token(user), "service:test")
	if err != nil {
		return err
	}
	if e := entitlements.Compute(st, w.db.Policy.Allowance); e.Credits.Debt > 0 && e.Credits.Balance > 0 {
		return propErr(op+" settles debt", "%s owes %d with a balance of %d", user, e.Credits.Debt, e.Credits.Balance)
	}
	return nil
}

// advance moves the clock by minutes, hours, days or 13 months.
func (w *propWorld) advance(op propOp) (string, error) {
	var d time.Duration
	switch k := op.Mode; {
	case k < 35:
		d = time.Duration(1+op.N%59) * time.Minute
	case k < 70:
		d = time.Duration(1+op.N%23) * time.Hour
	case k < 95:
		d = time.Duration(1+op.N%5) * 24 * time.Hour
	default:
		d = w.now.AddDate(0, 13, 0).Sub(w.now)
	}
	w.now = w.now.Add(d)
	return fmt.Sprintf("advance %s to %s", d, w.now.Format(time.RFC3339)), nil
}

// sweep runs the expiry sweep, walking 1 to 5 lots a batch.
func (w *propWorld) sweep(op propOp) (string, error) {
	limit := 1 + int(op.N%5)
	desc := fmt.Sprintf("expiry sweep, walking %d a batch", limit)
	due := map[string]int64{}
	rows, err := w.query(`SELECT lot_id, remaining FROM lots
		WHERE remaining > 0 AND expires_at IS NOT NULL AND expires_at <= ?`, w.now.UnixMilli())
	if err != nil {
		return desc, err
	}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			rows.Close()
			return desc, err
		}
		due[id] = n
	}
	rows.Close()
	var out Expired
	for after := (LotKey{}); ; {
		b, err := w.db.ExpireLots(w.ctx, w.now, after, limit, "job:prop")
		if err != nil {
			return desc, propWant("sweep", err, "")
		}
		out.Lots, out.Credits = out.Lots+b.Lots, out.Credits+b.Credits
		if b.End {
			break
		}
		after = b.Next
	}
	w.flow["expire"] -= out.Credits
	es, err := w.newEntriesPeek()
	if err != nil {
		return desc, err
	}
	var sum int64
	for _, e := range es {
		if e.kind != "expire" || due[e.lot] != -e.credits {
			return desc, propErr("sweep", "entry %+v: only lots due, all they hold (due %v)", e, due)
		}
		delete(due, e.lot)
		sum += e.credits
	}
	if out.Lots != int64(len(es)) || sum != -out.Credits || len(due) > 0 {
		return desc, propErr("sweep", "answered %+v for entries %+v; still due %v", out, es, due)
	}
	return desc, nil
}

// setTier makes a user Pro or free from outside the App Store.
func (w *propWorld) setTier(op propOp) (string, error) {
	user, tier := w.user(op.User), entitlements.TierFree
	if op.Mode%2 == 0 {
		tier = entitlements.TierPro
	}
	st, err := w.db.SetTier(w.ctx, user, tokens.Token(user), tier, nil, "prop", "admin:prop")
	if err != nil {
		return "tier", propWant("tier", err, "")
	}
	w.ensure(user)
	if st.Tier != tier {
		return "tier", propErr("tier", "%s is %s, want %s", user, st.Tier, tier)
	}
	return fmt.Sprintf("tier %s %s", user, tier), w.onlyKinds("tier", "grant")
}

// look is a user reading their entitlement; on their first call it creates
// them and grants what waited for their token.
func (w *propWorld) look(op propOp) (string, error) {
	user := w.user(op.User)
	if _, err := w.db.UserState(w.ctx, user, tokens.Token(user), "service:test"); err != nil {
		return "look", propWant("look", err, "")
	}
	w.ensure(user)
	return "look " + user, w.onlyKinds("look", "grant")
}

// onlyKinds requires that the operation's entries are of the given kinds.
func (w *propWorld) onlyKinds(op string, kinds ...string) error {
	es, err := w.newEntriesPeek()
	if err != nil {
		return err
	}
	allowed := map[string]bool{}
	for _, k := range kinds {
		allowed[k] = true
	}
	arrived := arrivals(es)
	for _, e := range es {
		if !allowed[e.kind] && !arrived(e) {
			return propErr(op+" entries", "unexpected %s entry %+v", e.kind, e)
		}
	}
	return nil
}
