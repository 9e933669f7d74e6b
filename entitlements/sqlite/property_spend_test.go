package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/creditsd/creditsd/entitlements"
)

// spend charges 1–15 credits under a new key, or replays an earlier key
// with the same body or another.
func (w *propWorld) spend(op propOp) (string, error) {
	k := &propKey{user: w.user(op.User), key: w.newID("k"), product: entitlements.ProductSora, cost: 1 + op.N%15}
	if op.Mode%2 == 1 {
		k.product = entitlements.ProductCodex
	}
	mode := "new"
	if r := op.Mode % 10; r >= 7 && len(w.keyIDs) > 0 {
		k = w.keys[w.keyIDs[op.Pick%len(w.keyIDs)]]
		mode = "replay"
		if r == 9 {
			mode = "replay with another cost"
			if k.spend == nil { // a refused spend is not kept: the key is free
				k.cost = k.cost%15 + 1
			}
		}
	} else {
		w.keys[k.key] = k
		w.keyIDs = append(w.keyIDs, k.key)
	}
	req := entitlements.SpendRequest{UserID: k.user, Token: tokens.Token(k.user), Key: k.key, Product: k.product,
		Credits: k.cost, Hash: fmt.Sprintf("%s/%d", k.product, k.cost), Actor: "service:prop"}
	desc := fmt.Sprintf("spend %s %s %d %s by %s", mode, k.key, k.cost, k.product, k.user)
	if k.spend != nil {
		if mode != "replay" {
			req.Credits++
			req.Hash = fmt.Sprintf("%s/%d", k.product, req.Credits)
		}
		return desc, w.replaySpend(k, req, mode == "replay")
	}
	return desc, w.newSpend(k, req)
}

func (w *propWorld) replaySpend(k *propKey, req entitlements.SpendRequest, same bool) error {
	return w.unchanged(func() error {
		sp, _, replayed, err := w.db.Spend(w.ctx, req)
		if !same {
			return propWant("spend replay", err, "idempotency_key_reused")
		}
		if err := propWant("spend replay", err, ""); err != nil {
			return err
		}
		first := k.spend.sp
		if !replayed || sp.SpendID != first.SpendID || sp.Credits != first.Credits ||
			sp.FromAllowance != first.FromAllowance || !propSameParts(sp.FromLots, first.FromLots) {
			return propErr("spend replay", "replayed=%t %+v, want the first spend %+v", replayed, sp, first)
		}
		return nil
	})
}

// newSpend predicts a spend from the state its transaction will see: it is
// refused while the user owes debt or cannot pay; otherwise the allowance
// pays first, then lots soonest-expiring first, none below zero.
func (w *propWorld) newSpend(k *propKey, req entitlements.SpendRequest) error {
	before, err := w.dryState(k.user)
	if err != nil {
		return err
	}
	e := entitlements.Compute(before, w.db.Policy.Allowance)
	want := ""
	switch {
	case before.Debt > 0:
		want = "debt_outstanding"
	case req.Credits > e.Allowance.Remaining+e.Credits.Balance:
		want = "insufficient_credits"
	}
	if want != "" {
		return w.unchanged(func() error {
			_, _, _, err := w.db.Spend(w.ctx, req)
			return propWant("spend", err, want)
		})
	}
	sp, st, replayed, err := w.db.Spend(w.ctx, req)
	if err := propWant("spend", err, ""); err != nil {
		return err
	}
	if replayed {
		return propErr("spend answer", "a new key was answered as a replay")
	}
	w.ensure(k.user)
	s := &propSpend{user: k.user, key: k.key, sp: sp}
	k.spend = s
	w.spends = append(w.spends, s)
	if err := w.answerIsRead(k.user, st); err != nil {
		return err
	}
	if sp.FromAllowance != min(req.Credits, e.Allowance.Remaining) || st.AllowanceUsed != before.AllowanceUsed+sp.FromAllowance ||
		sp.AllowanceDay != w.db.Policy.Allowance.Day(w.now).Key {
		return propErr("spend", "from allowance %d of %d remaining (day %s), used %d → %d",
			sp.FromAllowance, e.Allowance.Remaining, sp.AllowanceDay, before.AllowanceUsed, st.AllowanceUsed)
	}
	parts, err := w.byTransaction(sp.FromLots)
	if err != nil {
		return err
	}
	if err := propCheckParts(req.Credits-sp.FromAllowance, parts, propLotsByTransaction(e.Credits.Lots)); err != nil {
		return err
	}
	var fromLots int64
	entries := []propEntry{}
	if sp.FromAllowance > 0 {
		entries = append(entries, propEntry{user: k.user, kind: "spend", credits: -sp.FromAllowance, product: req.Product,
			ref: sp.SpendID, day: sp.AllowanceDay})
	}
	for _, p := range sp.FromLots {
		fromLots += p.Credits
		entries = append(entries, propEntry{user: k.user, kind: "spend", lot: p.LotID, credits: -p.Credits,
			product: req.Product, ref: sp.SpendID})
	}
	w.flow["spend"] -= fromLots
	return w.entriesAre("spend", entries, "grant")
}

// byTransaction names the parts' packs by transaction id: on a user's first
// call their waiting purchases' lots are created in the spend's own
// transaction, under ids other than the dry run's.
func (w *propWorld) byTransaction(parts []entitlements.LotPart) ([]entitlements.LotPart, error) {
	out := make([]entitlements.LotPart, len(parts))
	for i, p := range parts {
		var tx string
		if err := w.queryRow(`SELECT COALESCE(transaction_id, '') FROM lots WHERE lot_id = ?`, p.LotID).Scan(&tx); err != nil {
			return nil, err
		}
		out[i] = p
		if tx != "" {
			out[i].LotID = tx
		}
	}
	return out, nil
}

func propLotsByTransaction(lots []entitlements.Lot) []entitlements.Lot {
	out := append([]entitlements.Lot(nil), lots...)
	for i, l := range out {
		if l.TransactionID != "" {
			out[i].LotID = l.TransactionID
		}
	}
	return out
}

// propCheckParts checks a spend's lot parts against the spendable lots it
// saw: they pay exactly cost, take no lot below zero, and no lot is used
// while one expiring strictly sooner still has credits left.
func propCheckParts(cost int64, parts []entitlements.LotPart, spendable []entitlements.Lot) error {
	lots := map[string]entitlements.Lot{}
	for _, l := range spendable {
		lots[l.LotID] = l
	}
	taken := map[string]int64{}
	var sum int64
	for _, p := range parts {
		l, ok := lots[p.LotID]
		if !ok || p.Credits <= 0 || p.Credits > l.Remaining || taken[p.LotID] > 0 {
			return propErr("spend takes from lots", "part %+v of lot %+v (spendable %v)", p, l, spendable)
		}
		taken[p.LotID] = p.Credits
		sum += p.Credits
	}
	if sum != cost {
		return propErr("spend takes from lots", "parts %v pay %d, want %d", parts, sum, cost)
	}
	expires := func(l entitlements.Lot) int64 {
		if l.ExpiresAt == nil {
			return 1<<63 - 1
		}
		return l.ExpiresAt.UnixMilli()
	}
	for _, used := range parts {
		for _, l := range spendable {
			if expires(l) < expires(lots[used.LotID]) && taken[l.LotID] < l.Remaining {
				return propErr("spend order", "took from %s while %+v, expiring sooner, kept %d", used.LotID, l,
					l.Remaining-taken[l.LotID])
			}
		}
	}
	return nil
}

func propSameParts(a, b []entitlements.LotPart) bool {
	key := func(ps []entitlements.LotPart) string {
		s := make([]string, len(ps))
		for i, p := range ps {
			s[i] = fmt.Sprintf("%s:%d", p.LotID, p.Credits)
		}
		sort.Strings(s)
		return fmt.Sprint(s)
	}
	return key(a) == key(b)
}

// reverse reverses an earlier spend, by its user or (refused) by another.
func (w *propWorld) reverse(op propOp) (string, error) {
	if len(w.spends) == 0 {
		return "reverse: no spend yet", nil
	}
	s := w.spends[op.Pick%len(w.spends)]
	if op.Mode%10 == 0 && len(w.users) > 1 {
		other := w.users[0]
		if other == s.user {
			other = w.users[1]
		}
		return fmt.Sprintf("reverse %s as %s", s.sp.SpendID, other), w.unchanged(func() error {
			_, _, _, err := w.db.Reverse(w.ctx, other, tokens.Token(other), s.sp.SpendID, "service:prop")
			return propWant("reverse", err, "spend_not_found")
		})
	}
	desc := fmt.Sprintf("reverse %s (%s of %s: %d from allowance on %s, lots %v)", s.sp.SpendID, s.key, s.user,
		s.sp.FromAllowance, s.sp.AllowanceDay, s.sp.FromLots)
	if s.reversal != nil {
		return desc + " again", w.unchanged(func() error {
			rv, _, created, err := w.db.Reverse(w.ctx, s.user, tokens.Token(s.user), s.sp.SpendID, "service:prop")
			if err == nil && (created || rv.ReversalID != s.reversal.ReversalID) {
				err = propErr("reverse again", "created=%t %+v, want the first reversal %+v", created, rv, *s.reversal)
			}
			return propWant("reverse", err, "")
		})
	}
	before, err := w.dryState(s.user)
	if err != nil {
		return desc, err
	}
	giveBack, err := w.paidDebtGivenBack(s)
	if err != nil {
		return desc, err
	}
	wantReturned, wantForfeited, err := w.forfeitedParts(s)
	if err != nil {
		return desc, err
	}
	rv, _, created, err := w.db.Reverse(w.ctx, s.user, tokens.Token(s.user), s.sp.SpendID, "service:prop")
	if err := propWant("reverse", err, ""); err != nil {
		return desc, err
	}
	s.reversal = &rv
	sameDay := s.sp.AllowanceDay == w.db.Policy.Allowance.Day(w.now).Key
	if !created || (sameDay && rv.AllowanceReturned != s.sp.FromAllowance) || (!sameDay && rv.AllowanceForfeited != s.sp.FromAllowance) ||
		rv.AllowanceReturned+rv.AllowanceForfeited != s.sp.FromAllowance ||
		!propSameParts(rv.LotsReturned, wantReturned) || !propSameParts(rv.LotsForfeited, wantForfeited) {
		return desc, propErr("reverse", "created=%t %+v for spend %+v (same day %t)", created, rv, s.sp, sameDay)
	}
	return desc, w.afterReverse(s, rv, before.Debt, giveBack)
}

// forfeitedParts splits s's lot parts as a reversal now must: a lot that
// has expired (at its expiry's instant) with no refund in force on it keeps
// its part spent; every other part goes back.
func (w *propWorld) forfeitedParts(s *propSpend) (returned, forfeited []entitlements.LotPart, err error) {
	returned, forfeited = []entitlements.LotPart{}, []entitlements.LotPart{}
	for _, p := range s.sp.FromLots {
		var expires sql.NullInt64
		var refunds int
		if err := w.queryRow(`SELECT expires_at, (SELECT count(*) FROM refunds WHERE lot_id = ? AND status = 'active')
			FROM lots WHERE lot_id = ?`, p.LotID, p.LotID).Scan(&expires, &refunds); err != nil {
			return nil, nil, err
		}
		if expires.Valid && !w.now.Before(time.UnixMilli(expires.Int64)) && refunds == 0 {
			forfeited = append(forfeited, p)
		} else {
			returned = append(returned, p)
		}
	}
	return returned, forfeited, nil
}

// paidDebtGivenBack is what reversing s must give back in restored lots,
// worked out from the refunds in force before it: each part returned to a
// refunded pack pays what its refund's debt still owes, then takes back
// what it wrote off, and the rest, up to the debt others paid, goes back.
func (w *propWorld) paidDebtGivenBack(s *propSpend) (int64, error) {
	var owed, total int64
	if err := w.queryRow(`SELECT debt FROM users WHERE user_id = ?`, s.user).Scan(&owed); err != nil {
		return 0, err
	}
	for _, p := range s.sp.FromLots {
		var debt, writtenOff int64
		err := w.queryRow(`SELECT debt, written_off FROM refunds WHERE lot_id = ? AND status = 'active'`, p.LotID).
			Scan(&debt, &writtenOff)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return 0, err
		}
		unpaid := min(debt, owed)
		pay := min(p.Credits, unpaid)
		take := min(p.Credits-pay, writtenOff)
		total += min(p.Credits-pay-take, debt-unpaid)
		owed -= pay
	}
	return total, nil
}

// afterReverse checks a new reversal's entries: each lot part and the
// returned allowance come back; a part returned to a refunded pack may pay
// debt or be refunded again; then debt is paid from what is spendable.
func (w *propWorld) afterReverse(s *propSpend, rv entitlements.Reversal, debt, giveBack int64) error {
	want := []propEntry{}
	if rv.AllowanceReturned > 0 {
		want = append(want, propEntry{user: s.user, kind: "reverse", credits: rv.AllowanceReturned, product: s.sp.Product,
			ref: s.sp.SpendID, day: s.sp.AllowanceDay})
	}
	refunded := map[string]bool{}
	for _, b := range w.buys {
		if b.refund != nil {
			refunded[b.lot] = true
		}
	}
	for _, p := range rv.LotsReturned {
		w.flow["reverse"] += p.Credits
		want = append(want, propEntry{user: s.user, kind: "reverse", lot: p.LotID, credits: p.Credits,
			product: s.sp.Product, ref: s.sp.SpendID})
	}
	// A part forfeited is given back and written off at once: nothing of
	// it counts as consumed, and it expired with its lot.
	for _, p := range rv.LotsForfeited {
		var product string
		if err := w.queryRow(`SELECT COALESCE(product_id, '') FROM lots WHERE lot_id = ?`, p.LotID).Scan(&product); err != nil {
			return err
		}
		w.flow["reverse"] += p.Credits
		w.flow["expire"] -= p.Credits
		want = append(want, propEntry{user: s.user, kind: "reverse", lot: p.LotID, credits: p.Credits,
			product: s.sp.Product, ref: s.sp.SpendID},
			propEntry{user: s.user, kind: "expire", lot: p.LotID, credits: -p.Credits, product: product, ref: s.sp.SpendID})
	}
	es, err := w.newEntriesPeek()
	if err != nil {
		return err
	}
	var paid, retaken, restored int64
	for _, e := range es {
		switch {
		case e.kind == "debt_paid":
			paid -= e.credits
		case e.kind == "refund" && !refunded[e.lot]:
			return propErr("reverse", "refund entry %+v on a lot with no refund in force", e)
		case e.kind == "refund" && e.ref == s.sp.SpendID:
			retaken -= e.credits
		case e.kind == "refund_reversed":
			// Credits that paid a refund's debt, back in a restored lot.
			if err := w.isRestoredLot(e.lot); err != nil {
				return err
			}
			restored += e.credits
		}
	}
	if err := w.entriesAre("reverse", want, "debt_paid", "refund", "refund_reversed"); err != nil {
		return err
	}
	if paid > debt {
		return propErr("reverse", "paid %d of a debt of %d", paid, debt)
	}
	// Under forgive a refund retakes what it wrote off and nobody paid its
	// debt; under debt, what others paid of it goes to a restored lot.
	if restored != giveBack || restored > retaken || (w.db.Policy.Refund == entitlements.RefundDebt && restored != retaken) {
		return propErr("reverse", "%d retaken from refunded packs, %d given back in restored lots, want %d given back",
			retaken, restored, giveBack)
	}
	return w.settledOnly(s.user)
}

// isRestoredLot requires that lot was made by a refund giving back debt
// that other lots paid, never bought or granted.
func (w *propWorld) isRestoredLot(lot string) error {
	var source string
	if err := w.db.read.QueryRowContext(w.ctx, `SELECT source FROM lots WHERE lot_id = ?`, lot).Scan(&source); err != nil {
		return err
	}
	if source != entitlements.SourceRestored {
		return propErr("reverse", "debt given back to lot %s of source %s, not a restored lot", lot, source)
	}
	return nil
}

// settledOnly requires that user owes nothing or has nothing spendable.
func (w *propWorld) settledOnly(user string) error {
	st, err := w.db.UserState(w.ctx, user, tokens.Token(user), "service:test")
	if err != nil {
		return err
	}
	if e := entitlements.Compute(st, w.db.Policy.Allowance); e.Credits.Debt > 0 && e.Credits.Balance > 0 {
		return propErr("debt is settled", "%s owes %d with a balance of %d", user, e.Credits.Debt, e.Credits.Balance)
	}
	return nil
}

// arrivals says which of an operation's entries are a purchase's lot
// arriving (the webhook, the user's first call, a claim): its grant, and
// the refund of part of it that Apple made before the lot existed, which
// checkArrivals checks against the model rather than the operation.
func arrivals(es []propEntry) func(propEntry) bool {
	granted := map[string]bool{}
	for _, e := range es {
		if e.kind == "grant" {
			granted[e.lot] = true
		}
	}
	return func(e propEntry) bool { return e.kind == "grant" || e.kind == "refund" && granted[e.lot] }
}

// entriesAre requires that the operation's entries of its own kinds are
// exactly want, in any order; entries of the other kinds are left to the
// caller and the global checks.
func (w *propWorld) entriesAre(op string, want []propEntry, others ...string) error {
	es, err := w.newEntriesPeek()
	if err != nil {
		return err
	}
	other := map[string]bool{}
	for _, k := range others {
		other[k] = true
	}
	key := func(e propEntry) string {
		return fmt.Sprintf("%s %s %s %d %s %s %s", e.user, e.kind, e.lot, e.credits, e.product, e.ref, e.day)
	}
	var got, exp []string
	arrived := arrivals(es)
	for _, e := range es {
		if !other[e.kind] && !arrived(e) {
			got = append(got, key(e))
		}
	}
	for _, e := range want {
		exp = append(exp, key(e))
	}
	sort.Strings(got)
	sort.Strings(exp)
	if fmt.Sprint(got) != fmt.Sprint(exp) {
		return propErr(op+" entries", "got\n  %v\nwant\n  %v", got, exp)
	}
	return nil
}

// answerIsRead checks that the state a spend answers (derived from the
// state it planned with) is what reading the user now gives.
func (w *propWorld) answerIsRead(user string, answered entitlements.UserState) error {
	read, err := w.dryState(user)
	if err != nil {
		return err
	}
	got, want := entitlements.Compute(answered, w.db.Policy.Allowance), entitlements.Compute(read, w.db.Policy.Allowance)
	if !reflect.DeepEqual(got, want) {
		return propErr("spend answer", "answered %+v, a read gives %+v", got, want)
	}
	return nil
}
