package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/creditsd/creditsd/entitlements"
)

// propWorld is one property run: the store under test, its clock, and the
// test's own model of what the store must hold.
type propWorld struct {
	ctx    context.Context
	db     *DB
	closed bool
	now    time.Time
	users  []string
	seen   map[string]bool // users the store has created, as the model expects
	buys   []*propBuy
	spends []*propSpend // spends that succeeded
	keys   map[string]*propKey
	keyIDs []string // keys in the order they were first tried, for replays
	grants []*propGrant
	uuids  []string // notification UUIDs sent, for duplicates
	ids    int

	// flow is the model's account of the credits in lots, by entry kind:
	// grants, admin grants, spends, reversals and expiry as the operations'
	// answers say; refunds, restored refunds and debt payments, which no
	// answer reports, as the entries say once their bounds are checked.
	flow      map[string]int64
	lastEntry int64
	trace     []string
	stmts     map[string]*sql.Stmt
}

// propBuy is one Apple transaction and what the model expects of it.
type propBuy struct {
	id, buyer, token string // token is "" when the app set no app_account_token
	credits          int64
	versions         []entitlements.Purchase // every signed version sent, oldest first
	recorded         bool
	signed           time.Time // the newest recorded version's signedDate
	revoked          bool      // the newest recorded version revokes it
	outcome          entitlements.Outcome
	owner            string
	wantLot          bool
	lot              string      // the lot's id once the store created it
	refund           *propRefund // the refund in force, if any
	everRefunded     bool
	partRefund       int64 // the newest recorded version's share refunded in part (milliunits), 0 if none
}

// revokedAt is what a refund of pct (milliunits) revokes of b's pack.
func (b *propBuy) revokedAt(pct int64) int64 {
	return entitlements.Revoked(b.credits, b.versions[0].Quantity, pct)
}

// propRefund is a refund in force: what Apple's revocation takes back.
type propRefund struct{ revoked int64 }

type propSpend struct {
	user, key string
	sp        entitlements.Spend
	reversal  *entitlements.Reversal
}

// propKey is a spend idempotency key and the body last sent with it.
type propKey struct {
	user, key, product string
	cost               int64
	spend              *propSpend // nil while no spend succeeded under it
}

type propGrant struct {
	req entitlements.GrantRequest
	lot string
}

func newPropWorld(db *DB, seed uint64) *propWorld {
	users := []string{"alice", "bob", "carol"}
	if seed/2%2 == 1 {
		users = users[:2]
	}
	return &propWorld{ctx: context.Background(), db: db, now: testNow, users: users, seen: map[string]bool{},
		keys: map[string]*propKey{}, flow: map[string]int64{}, stmts: map[string]*sql.Stmt{}}
}

func (w *propWorld) close() {
	if !w.closed {
		w.closed = true
		for _, s := range w.stmts {
			_ = s.Close()
		}
		_ = w.db.Close()
	}
}

// query runs one of the checks' queries on the read pool. The statements
// are prepared once: parsing SQL is most of a check's cost under -race.
func (w *propWorld) query(q string, args ...any) (*sql.Rows, error) {
	s, err := w.stmt(q)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(w.ctx, args...)
}

func (w *propWorld) queryRow(q string, args ...any) *sql.Row {
	s, err := w.stmt(q)
	if err != nil {
		return w.db.read.QueryRowContext(w.ctx, q, args...) // answers the same error
	}
	return s.QueryRowContext(w.ctx, args...)
}

func (w *propWorld) stmt(q string) (*sql.Stmt, error) {
	if s, ok := w.stmts[q]; ok {
		return s, nil
	}
	s, err := w.db.read.PrepareContext(w.ctx, q)
	if err == nil {
		w.stmts[q] = s
	}
	return s, err
}

func (w *propWorld) user(i int) string { return w.users[i%len(w.users)] }

func (w *propWorld) newID(prefix string) string {
	w.ids++
	return fmt.Sprintf("%s%d", prefix, w.ids)
}

// ensure is what the store does on a user's first call: create them and
// give them every purchase that waited for their app_account_token.
func (w *propWorld) ensure(user string) {
	if w.seen[user] {
		return
	}
	w.seen[user] = true
	for _, b := range w.buys {
		if b.recorded && b.owner == "" && b.token != "" && b.token == tokens.Token(user) {
			w.assign(b, user)
		}
	}
}

// record is the model of a verified version of b arriving, from Apple
// (claimant "") or from claimant's app.
func (w *propWorld) record(b *propBuy, v entitlements.Purchase, claimant string) {
	switch {
	case !b.recorded:
		g, err := entitlements.PlanGrant(v, catalog, w.now)
		if err != nil {
			panic(err) // quantities are 1–3
		}
		b.recorded, b.signed, b.revoked, b.outcome = true, v.SignedDate, !v.RevocationDate.IsZero(), g.Outcome
		b.partRefund = partShare(v)
		if b.token != "" && w.seen[b.buyer] {
			b.owner = b.buyer
		}
	case v.SignedDate.UnixMilli() > b.signed.UnixMilli():
		w.refresh(b, v)
	}
	if claimant != "" {
		b.owner = claimant
	}
	if b.owner != "" {
		w.assign(b, b.owner)
	}
}

// refresh is a newer signed version: a revocation of a granted pack starts
// a refund (or revises the one in force to its share), its withdrawal ends
// it, and until the lot exists the newest version alone decides what the
// purchase earns (a withdrawn revocation makes it grantable again).
func (w *propWorld) refresh(b *propBuy, v entitlements.Purchase) {
	revoked := !v.RevocationDate.IsZero()
	switch {
	case !b.wantLot:
		g, err := entitlements.PlanGrant(v, catalog, w.now)
		if err != nil {
			panic(err) // quantities are 1–3
		}
		b.outcome = g.Outcome
	case revoked:
		pct := partShare(v)
		if pct == 0 {
			pct = 100000
		}
		b.refund = &propRefund{revoked: b.revokedAt(pct)}
		b.everRefunded = true
	case b.revoked && !revoked:
		b.refund = nil
	}
	b.signed, b.revoked = v.SignedDate, revoked
	b.partRefund = partShare(v)
}

// partShare is the share of v (milliunits) a revocation of part of it
// takes back, Apple's rule written out again for the model; 0 if v is not
// refunded in part.
func partShare(v entitlements.Purchase) int64 {
	if v.RevocationDate.IsZero() || v.RevocationType != "REFUND_PRORATED" || v.RevocationPercent <= 0 || v.RevocationPercent >= 100000 {
		return 0
	}
	return v.RevocationPercent
}

// assign gives b to owner; a granted, unexpired pack gets its lot.
func (w *propWorld) assign(b *propBuy, owner string) {
	b.owner = owner
	if b.wantLot || b.outcome != entitlements.OutcomeGranted {
		return
	}
	if exp, _ := catalog[b.versions[0].ProductID].ExpiresAfter.ExpiresAt(b.versions[0].PurchaseDate); !w.now.Before(exp) {
		b.outcome = entitlements.OutcomeExpired
		return
	}
	b.wantLot = true
	w.flow["grant"] += b.credits
	if b.partRefund > 0 { // refunded in part before its lot: the refund applies as the lot is made
		b.refund = &propRefund{revoked: b.revokedAt(b.partRefund)}
		b.everRefunded = true
	}
}

// nextVersion is Apple's re-signing of b's newest version for a new event.
func (w *propWorld) nextVersion(b *propBuy, edit func(*entitlements.Purchase)) entitlements.Purchase {
	v := b.versions[len(b.versions)-1]
	v.SignedDate = w.now
	if prev := b.versions[len(b.versions)-1].SignedDate; !v.SignedDate.After(prev) {
		v.SignedDate = prev.Add(time.Second)
	}
	edit(&v)
	v.JWS = fmt.Sprintf("jws-%s-%d", b.id, len(b.versions))
	b.versions = append(b.versions, v)
	return v
}

// notify sends v as Apple's webhook would, under a new notificationUUID.
func (w *propWorld) notify(typ string, v entitlements.Purchase) (bool, error) {
	uuid := w.newID("n")
	w.uuids = append(w.uuids, uuid)
	return w.notifyAs(uuid, typ, v)
}

func (w *propWorld) notifyAs(uuid, typ string, v entitlements.Purchase) (bool, error) {
	g, err := entitlements.PlanGrant(v, catalog, w.now)
	if err != nil {
		return false, err
	}
	rec, err := w.db.RecordNotification(w.ctx, Notification{UUID: uuid, Type: typ, SignedDate: v.SignedDate,
		TransactionID: v.TransactionID, OriginalTransactionID: v.OriginalTransactionID, JWS: "outer-" + uuid, Source: "webhook", Outcome: "recorded"}, Effect{Purchase: &v, Grant: g})
	return rec.Duplicate, err
}

// dryState is the user's state as the operation's own transaction will
// first see it, after creating the user if new: read in a write
// transaction that is rolled back, so it changes nothing.
func (w *propWorld) dryState(user string) (st entitlements.UserState, err error) {
	err = w.db.update(w.ctx, func(tx *Tx) error {
		if _, err := tx.ensureUser(w.ctx, user, tokens.Token(user), "service:prop"); err != nil {
			return err
		}
		if st, _, err = tx.userState(w.ctx, user); err != nil {
			return err
		}
		return errPropDryRun
	})
	if errors.Is(err, errPropDryRun) {
		err = nil
	}
	return st, err
}

// errPropDryRun rolls back dryState's transaction.
var errPropDryRun = errors.New("dry run: roll back")

// propEntry is one ledger entry as the checks read it.
type propEntry struct {
	id                int64
	user, kind, lot   string // lot is "" for allowance and debt entries
	credits           int64
	product, ref, day string
}

// newEntries are the entries written since the last call.
func (w *propWorld) newEntries() ([]propEntry, error) {
	rows, err := w.query(`SELECT entry_id, user_id, kind, COALESCE(lot_id, ''), credits,
		product, ref, allowance_day FROM entries WHERE entry_id > ? ORDER BY entry_id`, w.lastEntry)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []propEntry
	for rows.Next() {
		var e propEntry
		if err := rows.Scan(&e.id, &e.user, &e.kind, &e.lot, &e.credits, &e.product, &e.ref, &e.day); err != nil {
			return nil, err
		}
		out = append(out, e)
		w.lastEntry = e.id
	}
	return out, rows.Err()
}

// digest is everything an operation that must change nothing could change
// (the notification inbox aside: a stale or duplicate notification is
// still recorded).
func (w *propWorld) digest() (string, error) {
	var out []any
	for _, q := range []string{
		`SELECT user_id, debt FROM users ORDER BY 1`,
		`SELECT lot_id, remaining, EXISTS (SELECT 1 FROM refunds r WHERE r.lot_id = lots.lot_id AND r.status = 'active') FROM lots ORDER BY 1`,
		`SELECT count(*), COALESCE(max(entry_id), 0) FROM entries`,
		`SELECT spend_id, request_hash FROM spends ORDER BY 1`,
		`SELECT spend_id FROM reversals ORDER BY 1`,
		`SELECT user_id, day, used FROM allowance_usage ORDER BY 1, 2`,
		`SELECT refund_id, status FROM refunds ORDER BY 1`,
		`SELECT user_id, idempotency_key, lot_id FROM admin_grants ORDER BY 1, 2`,
		`SELECT t.transaction_id, user_id, outcome, lot_id, signed_date, revocation_date, s.jws FROM apple_transactions t JOIN transactions_signed s USING (transaction_id) ORDER BY 1`,
		`SELECT user_id, tier, expires_at FROM tier_overrides ORDER BY 1`,
		`SELECT kind, product, credits, entries FROM ledger_totals ORDER BY 1, 2`,
	} {
		rows, err := w.query(q)
		if err != nil {
			return "", err
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return "", err
			}
			out = append(out, vals...)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return "", err
		}
	}
	return fmt.Sprint(out...), nil
}

// unchanged runs op and requires that it changed nothing.
func (w *propWorld) unchanged(op func() error) error {
	before, err := w.digest()
	if err != nil {
		return err
	}
	if err := op(); err != nil {
		return err
	}
	after, err := w.digest()
	if err != nil {
		return err
	}
	if before != after {
		return propErr("nothing changes", "the store changed:\nbefore %s\nafter  %s", before, after)
	}
	es, err := w.newEntries()
	if err == nil && len(es) > 0 {
		err = propErr("nothing changes", "new entries %+v", es)
	}
	return err
}

// propInvariantError is a broken invariant, named so that shrinking keeps
// to the same one.
type propInvariantError struct {
	name, detail string
}

func (e *propInvariantError) Error() string { return e.name + ": " + e.detail }

func propErr(name, format string, args ...any) error {
	return &propInvariantError{name: name, detail: fmt.Sprintf(format, args...)}
}

// propWant is an error when the answer's code is not want ("" for success).
func propWant(op string, err error, want string) error {
	got := ""
	if err != nil {
		got = entitlements.ErrorCode(err)
		if got == "internal" {
			return propErr(op+" fails", "%v", err)
		}
	}
	if got != want {
		return propErr(op+" answer", "want code %q, got %q (%v)", want, got, err)
	}
	return nil
}

// dumpLedger lists the entries and lots, for a failure report.
func (w *propWorld) dumpLedger() string {
	var b strings.Builder
	_ = w.eachRow(`SELECT entry_id, user_id, kind, credits, COALESCE(lot_id, '-'), ref, allowance_day FROM entries ORDER BY entry_id`,
		func(r *sql.Rows) error {
			var id, credits int64
			var user, kind, lot, ref, day string
			err := r.Scan(&id, &user, &kind, &credits, &lot, &ref, &day)
			fmt.Fprintf(&b, "  %4d %-6s %-15s %+5d lot=%s ref=%s %s\n", id, user, kind, credits, lot, ref, day)
			return err
		})
	_ = w.eachRow(`SELECT l.lot_id, l.user_id, COALESCE(l.transaction_id, 'admin'), l.granted, l.remaining, EXISTS (SELECT 1 FROM refunds r WHERE r.lot_id = l.lot_id AND r.status = 'active') FROM lots l ORDER BY l.lot_id`,
		func(r *sql.Rows) error {
			var id, user, tx string
			var granted, remaining, refunded int64
			err := r.Scan(&id, &user, &tx, &granted, &remaining, &refunded)
			fmt.Fprintf(&b, "  lot %s %s %s granted %d remaining %d refunded %d\n", id, user, tx, granted, remaining, refunded)
			return err
		})
	return b.String()
}
