package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/creditsd/creditsd/entitlements"
)

// ClaimPurchase records a transaction that userID's app submitted and grants
// its lot, once. It reports whether this call gave something new: a lot, a
// subscription that is active now, or the credits of a refund that this
// newer signature of the transaction reverses. A transaction another user
// holds, or owns by the webhook's rules (a renewal is its subscription
// owner's), is a conflict; an unproven claim of one that is nobody's yet is
// refused (entitlements.ErrNotBound). The caller has checked that the
// transaction's app_account_token, if any, is userID's.
func (db *DB) ClaimPurchase(ctx context.Context, userID, token string, p entitlements.Purchase, g entitlements.Grant) (created bool, err error) {
	err = db.update(ctx, func(tx *Tx) error {
		// Before ensureUser: a new user's first call is given the purchases
		// that waited for her token, this one perhaps, and the periods of
		// their subscriptions (adoptRenewals): what it gives is new too.
		had, err := tx.hasLot(ctx, p.TransactionID)
		if err != nil {
			return err
		}
		sub := ofSubscription(p, g)
		wasActive := false
		if sub {
			if wasActive, err = tx.holdsActive(ctx, userID, p.OriginalTransactionID); err != nil {
				return err
			}
		}
		if _, err := tx.ensureUser(ctx, userID, token, entitlements.UserActor(userID)); err != nil {
			return err
		}
		c, err := tx.claim(ctx, userID, token, p, g)
		if err != nil {
			return err
		}
		has, err := tx.hasLot(ctx, p.TransactionID)
		created = err == nil && (has && !had || c.restored || c.adopted)
		if err == nil && !created && (c.claimed || c.replanned) {
			created, err = tx.activeSubscription(ctx, p.TransactionID)
		}
		if err == nil && !created && sub && !wasActive {
			created, err = tx.holdsActive(ctx, userID, p.OriginalTransactionID)
		}
		return err
	})
	return created, err
}

// holdsActive says whether userID holds a period of subscription original
// that sets its tier now. Held after a claim and not before, it is what
// the call gave, by whichever route: the claim itself, or the user's first
// call giving the periods kept for her token (ensureUser), which the
// claim then finds already hers.
func (tx *Tx) holdsActive(ctx context.Context, userID, original string) (bool, error) {
	var active bool
	err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM apple_transactions INDEXED BY apple_transactions_original
		WHERE original_transaction_id = ?1 AND user_id = ?3 AND `+activeNowSQL+`)`,
		original, millis(tx.now), userID).Scan(&active)
	return active, err
}

// activeNowSQL is whether a transaction row sets its tier at ?2 (a product
// with no expiry, which a catalog may give a tier, never does: NULL is 0).
const activeNowSQL = `COALESCE(tier != '' AND revocation_date IS NULL AND NOT upgraded AND purchase_date <= ?2 AND expires_date > ?2, 0)`

// activeSubscription says whether a recorded transaction sets a tier now,
// by its kept (newest) version, which may differ from the one submitted: a
// refund in it, or a period that has ended, gives nothing new.
func (tx *Tx) activeSubscription(ctx context.Context, transactionID string) (bool, error) {
	var active bool
	err := tx.QueryRowContext(ctx, `SELECT `+activeNowSQL+` FROM apple_transactions WHERE transaction_id = ?1`,
		transactionID, millis(tx.now)).Scan(&active)
	return active, err
}

// claimed is what claim did: whether the transaction was not userID's
// before, whether its newer signature gave back what a refund took,
// whether it was planned again from unknown_product, and whether it gave
// the owner a waiting period that is active now (adoptRenewals).
type claimed struct {
	claimed, restored, replanned, adopted bool
}

// claim gives the transaction to userID. One that nobody holds yet but
// another user owns by the rules Apple's own notifications follow (ownerOf:
// a renewal belongs to its subscription's owner) is theirs, not the
// claimant's: a token-less renewal is otherwise anyone's who posts it first.
func (tx *Tx) claim(ctx context.Context, userID, token string, p entitlements.Purchase, g entitlements.Grant) (claimed, error) {
	var c claimed
	k, err := tx.kept(ctx, p)
	if err != nil {
		return c, err
	}
	owner, found, newest := k.owner, k.found, k.tokenFor(p)
	rightful := owner
	if owner == "" {
		rightful, err = tx.ownerOf(ctx, withToken(p, newest))
	}
	switch {
	case err != nil:
		return c, err
	case owner == "" && newest != "" && newest != token:
		// Its newest version names another user's token (Apple set one
		// since the version the caller holds); the caller's own would
		// have been given it by ensureUser.
		return c, entitlements.Errorf(entitlements.KindForbidden, "transaction_not_yours",
			"transaction %s was bought with another user's app_account_token", p.TransactionID)
	case rightful != "" && rightful != userID:
		return c, entitlements.Errorf(entitlements.KindConflict, "transaction_claimed",
			"transaction %s was already claimed by another user", p.TransactionID)
	case rightful == "" && p.Unproven:
		return c, entitlements.ErrNotBound(p.TransactionID)
	case !found:
		err = tx.insertPurchase(ctx, p, g, userID, "")
	default:
		c.replanned, err = tx.replanUnknown(ctx, p, g)
		if err == nil {
			c.restored, err = tx.refreshPurchase(ctx, p, g, entitlements.UserActor(userID))
		}
	}
	if err != nil {
		return c, err
	}
	c.claimed = owner != userID
	if _, err = tx.assignPurchase(ctx, p.TransactionID, userID, entitlements.UserActor(userID)); err != nil {
		return c, err
	}
	if c.claimed && ofSubscription(p, g) {
		c.adopted, err = tx.adoptRenewals(ctx, p.OriginalTransactionID, p.Environment)
	}
	return c, err
}

// ofSubscription says whether p may have periods of the same subscription:
// a tier product's, or a renewal's (its product perhaps unknown now).
func ofSubscription(p entitlements.Purchase, g entitlements.Grant) bool {
	return g.Outcome == entitlements.OutcomeSubscription || p.OriginalTransactionID != p.TransactionID
}

// adoptRenewalsSQL gives ?1 the waiting periods of subscription ?3 of
// environment ?4 at ?2.
// Left to itself, SQLite seeks apple_transactions_pending (tokens of rows
// with no owner) for the empty token, which is every token-less row nobody
// holds, in the whole table: 40 ms a renewal in the writer at 200,000
// of them. The subscription's own rows are a handful.
const adoptRenewalsSQL = `UPDATE apple_transactions INDEXED BY apple_transactions_original SET user_id = ?1, updated_at = ?2
	WHERE original_transaction_id = ?3 AND environment = ?4 AND user_id IS NULL AND app_account_token = '' AND tier != ''
	RETURNING ` + activeNowSQL

// adoptRenewals gives the owner of the subscription original (ownerOf:
// its original's, else its earliest held period's) the token-less periods
// that the webhook kept before it had one: it gives later ones to the owner,
// and these are the owner's by the same rule. It runs when a transaction of
// the subscription has just been given an owner, and says whether a period
// it gave is active now.
func (tx *Tx) adoptRenewals(ctx context.Context, original, environment string) (bool, error) {
	owner, err := tx.ownerOf(ctx, entitlements.Purchase{OriginalTransactionID: original, Environment: environment})
	if err != nil || owner == "" {
		return false, err
	}
	rows, err := tx.QueryContext(ctx, adoptRenewalsSQL, owner, millis(tx.now), original, environment)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	adopted := false
	for rows.Next() {
		var active bool
		if err := rows.Scan(&active); err != nil {
			return false, err
		}
		adopted = adopted || active
	}
	return adopted, rows.Err()
}

// recordPurchase records a transaction that Apple sent (webhook or
// reconciliation). It is granted at once if its app_account_token names a
// user we know; otherwise it waits for that user, or for the app's claim.
// granted reports the common case, a new transaction whose lot this call
// created: its outcome is granted, with no refund yet to look up.
func (tx *Tx) recordPurchase(ctx context.Context, p entitlements.Purchase, g entitlements.Grant, actor string) (granted bool, err error) {
	k, err := tx.kept(ctx, p)
	if err != nil {
		return false, err
	}
	owner, found := k.owner, k.found
	if found {
		if _, err := tx.refreshPurchase(ctx, p, g, actor); err != nil {
			return false, err
		}
	}
	held := owner != ""
	if !held { // new, or kept before its subscription had an owner
		if owner, err = tx.ownerOf(ctx, withToken(p, k.tokenFor(p))); err != nil {
			return false, err
		}
	}
	if !found {
		if lot, ok := tx.lotNow(p, g); ok && owner != "" {
			// Refunded in part, it has a refund in force, which purchaseOutcome reports.
			return !partRefund(p).Valid, tx.insertGranted(ctx, p, g, owner, lot, actor)
		}
		if err := tx.insertPurchase(ctx, p, g, owner, ""); err != nil {
			return false, err
		}
	}
	if owner == "" {
		return false, nil
	}
	if _, err = tx.assignPurchase(ctx, p.TransactionID, owner, actor); err != nil {
		return false, err
	}
	if !held && ofSubscription(p, g) { // the subscription's first owner, perhaps
		_, err = tx.adoptRenewals(ctx, p.OriginalTransactionID, p.Environment)
	}
	return false, err
}

// lotNow is the lot a new transaction earns, if it earns one that has not
// expired: the lot assignPurchase would make of the recorded row.
func (tx *Tx) lotNow(p entitlements.Purchase, g entitlements.Grant) (entitlements.Lot, bool) {
	if g.Outcome != entitlements.OutcomeGranted {
		return entitlements.Lot{}, false
	}
	lot := appStoreLot(p.TransactionID, p.ProductID, p.Environment, g.Credits, millis(p.PurchaseDate), ptrMillis(g.ExpiresAt))
	return lot, !lot.Expired(tx.now)
}

// appStoreLot is the lot a granted App Store transaction earns, with
// times as the store keeps them (milliseconds).
func appStoreLot(transactionID, product, env string, credits, purchased int64, expiresAt sql.NullInt64) entitlements.Lot {
	return entitlements.Lot{LotID: newID("lot"), Source: entitlements.SourceAppStore, ProductID: product,
		TransactionID: transactionID, Environment: env, Granted: credits, Remaining: credits,
		GrantedAt: fromMillis(purchased), ExpiresAt: fromNullMillis(expiresAt)}
}

// insertGranted records a new transaction of a known user with its lot in
// place: the row insertPurchase and assignPurchase would leave, without
// writing it three times (a third of a webhook grant's time in the writer).
func (tx *Tx) insertGranted(ctx context.Context, p entitlements.Purchase, g entitlements.Grant, owner string, lot entitlements.Lot, actor string) error {
	if err := tx.insertPurchase(ctx, p, g, owner, lot.LotID); err != nil {
		return err
	}
	return tx.grantPurchaseLot(ctx, owner, lot, partRefund(p), actor)
}

// partRefund is refund_percent for p's row (migration 0018): the share a
// refund of part of the pack took back, else NULL.
func partRefund(p entitlements.Purchase) sql.NullInt64 {
	if pct, part := p.PartRefunded(); part {
		return sql.NullInt64{Int64: pct, Valid: true}
	}
	return sql.NullInt64{}
}

// grantPurchaseLot creates a purchase's lot, whose transaction row already
// names it, and pays the owner's debt from it. A purchase refunded in part
// before its lot existed (part, its row's refund_percent) then has its
// refund applied, as if it had arrived before the refund.
func (tx *Tx) grantPurchaseLot(ctx context.Context, owner string, lot entitlements.Lot, part sql.NullInt64, actor string) error {
	if err := tx.createLot(ctx, newLot{lot: lot, userID: owner, kind: "grant", reason: "purchase", actor: actor,
		ref: lot.TransactionID}); err != nil {
		return err
	}
	if err := tx.settleDebt(ctx, owner, actor); err != nil || !part.Valid {
		return err
	}
	return tx.refundLot(ctx, lot.TransactionID, part.Int64, lot.LotID, actor)
}

// ownerOf is the user a new transaction from Apple belongs to: the one its
// app_account_token names, else the owner of its subscription (renewals
// share an originalTransactionId, in one environment: under the same
// original another environment's periods are another subscription, as
// kept has it), else nobody yet. A period bought with a token that no
// user holds yet is kept for it, not given to the subscription's owner:
// two app accounts on one Apple ID share the subscription's original, and
// each period belongs to the account that bought it, whether or not its
// buyer called creditsd before Apple's notification came. A token that is
// not a UUID is nobody's, and its period goes to the subscription's owner.
func (tx *Tx) ownerOf(ctx context.Context, p entitlements.Purchase) (string, error) {
	owner, err := tx.userByToken(ctx, p.AppAccountToken)
	if err != nil || owner != "" || p.OriginalTransactionID == p.TransactionID || entitlements.IsToken(p.AppAccountToken) {
		return owner, err
	}
	// The original purchase's owner, else the earliest held period's. Rows
	// of one subscription can have different owners (a period goes to the
	// account whose token it carries), so the order picks one, never the
	// row SQLite meets first. The subscription's own rows are a handful
	// (see adoptRenewalsSQL for why INDEXED BY).
	err = tx.QueryRowContext(ctx, `SELECT user_id FROM apple_transactions INDEXED BY apple_transactions_original
		WHERE original_transaction_id = ?1 AND environment = ?2 AND user_id IS NOT NULL
		ORDER BY transaction_id = ?1 DESC, purchase_date, length(transaction_id), transaction_id LIMIT 1`,
		p.OriginalTransactionID, p.Environment).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return owner, err
}

// purchaseOutcome is where a recorded transaction stands now: granted,
// revoked while a refund of its lot is in force, pending_user while a lot it
// earns waits for its owner, or what it earned (expired, subscription…).
func (tx *Tx) purchaseOutcome(ctx context.Context, transactionID string) (string, error) {
	var outcome string
	var lot sql.NullString
	var refunded bool
	err := tx.QueryRowContext(ctx, `SELECT outcome, lot_id, EXISTS (SELECT 1 FROM refunds r
		WHERE r.transaction_id = t.transaction_id AND r.status = 'active') FROM apple_transactions t
		WHERE t.transaction_id = ?`, transactionID).Scan(&outcome, &lot, &refunded)
	switch {
	case err != nil || outcome != string(entitlements.OutcomeGranted):
	case !lot.Valid:
		outcome = string(entitlements.OutcomePending)
	case refunded:
		outcome = string(entitlements.OutcomeRevoked)
	}
	return outcome, err
}

func (tx *Tx) hasLot(ctx context.Context, transactionID string) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM lots WHERE transaction_id = ?`, transactionID).Scan(&n)
	return n > 0, err
}

// kept reads what is recorded of p's transaction: its owner ("" if none
// yet), the token and signed date of its newest version, and whether it is
// recorded at all. It refuses p with errAnotherTransaction when the id is
// kept for another transaction: Apple re-signs a transaction with the same
// environment, product and original, so one that differs is another that
// shares the id (Apple does not promise Sandbox and Production ids never
// meet). Applying it would let a free Sandbox refund take back a paid
// Production pack, or its token choose the owner of a pack that waits for
// its user.
func (tx *Tx) kept(ctx context.Context, p entitlements.Purchase) (keptRow, error) {
	var k keptRow
	var o sql.NullString
	var env, product, original string
	err := tx.QueryRowContext(ctx, `SELECT user_id, app_account_token, signed_date, environment, product_id,
		original_transaction_id FROM apple_transactions WHERE transaction_id = ?`, p.TransactionID).
		Scan(&o, &k.token, &k.signed, &env, &product, &original)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return keptRow{}, nil
	case err == nil && (p.Environment != env || p.ProductID != product || p.OriginalTransactionID != original):
		return keptRow{found: true}, errAnotherTransaction
	}
	k.owner, k.found = o.String, err == nil
	return k, err
}

// withToken is p with the token of its transaction's newest version.
func withToken(p entitlements.Purchase, token string) entitlements.Purchase {
	p.AppAccountToken = token
	return p
}

// keptRow is what kept reads of a recorded transaction.
type keptRow struct {
	owner, token string
	signed       int64 // Unix ms
	found        bool
}

// tokenFor is the app_account_token of the newest version known of p's
// transaction, which names whom it is for while nobody holds it: Apple may
// set one after the purchase (Set App Account Token), and an older version
// may arrive after it. A version with none says nothing: Apple sets
// tokens, it does not clear them.
func (k keptRow) tokenFor(p entitlements.Purchase) string {
	if k.token != "" && (k.signed >= millis(p.SignedDate) || p.AppAccountToken == "") {
		return k.token
	}
	return p.AppAccountToken
}

// insertPurchase records a new transaction, with its user and its lot when
// they are known ("" when not).
func (tx *Tx) insertPurchase(ctx context.Context, p entitlements.Purchase, g entitlements.Grant, userID, lotID string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO apple_transactions (transaction_id, original_transaction_id, user_id,
		app_account_token, product_id, tier, type, environment, quantity, purchase_date, expires_date, revocation_date,
		signed_date, outcome, credits, expires_at, lot_id, created_at, updated_at, refund_percent, upgraded)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		p.TransactionID, p.OriginalTransactionID, nullString(userID), p.AppAccountToken, p.ProductID, g.Tier, p.Type,
		p.Environment, p.Quantity, millis(p.PurchaseDate), nullMillis(p.ExpiresDate), nullMillis(p.RevocationDate),
		millis(p.SignedDate), string(g.Outcome), g.Credits, ptrMillis(g.ExpiresAt), nullString(lotID),
		millis(tx.now), millis(tx.now), partRefund(p), p.Upgraded); err != nil {
		return err
	}
	return tx.keepTransactionJWS(ctx, p)
}

// keepTransactionJWS keeps p's JWS as the transaction's newest signed
// version.
func (tx *Tx) keepTransactionJWS(ctx context.Context, p entitlements.Purchase) error {
	jws, err := tx.storeJWS(ctx, p.JWS)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO transaction_jws (transaction_id, jws_header, jws) VALUES (?, ?, ?)
		ON CONFLICT (transaction_id) DO UPDATE SET jws_header = excluded.jws_header, jws = excluded.jws`,
		p.TransactionID, jws.headerArg(), jws.rest)
	return err
}

// refreshPurchase keeps the newest signed version of a transaction: Apple
// re-signs it for every event and arrival order means nothing, so an older
// version changes nothing. Once the purchase has a lot, the newest
// version's revocation rules it: a revocation applies the refund, a version
// without one (REFUND_REVERSED) undoes the refund in force, and a
// revocation of another share of the pack revises it. Until a lot exists,
// the newest version decides what the purchase earns (g), so a pack whose
// refund Apple reversed earns its lot; a plan of unknown_product (the
// catalog does not sell the product) keeps the earlier plan unless the
// newest version changes whether the purchase is refunded in full. restored
// reports that this call undid a refund in force: it gave credits back.
func (tx *Tx) refreshPurchase(ctx context.Context, p entitlements.Purchase, g entitlements.Grant, actor string) (restored bool, err error) {
	old, err := tx.keptVersion(ctx, p.TransactionID)
	if err != nil {
		return false, err
	}
	if millis(p.SignedDate) <= old.signed {
		return false, nil
	}
	if err := tx.storeNewestVersion(ctx, p, g, replanOnRefresh(old, p, g)); err != nil {
		return false, err
	}
	return tx.applyRevocationChange(ctx, p, old, actor)
}

// keptVersion is what refreshPurchase compares a newer version with: the
// kept version's signed date and revocation, and the lot, if any, it earned.
type keptVersion struct {
	signed        int64 // Unix ms
	revoked, part sql.NullInt64
	lotID         sql.NullString
}

// keptVersion reads the kept version of a recorded transaction.
func (tx *Tx) keptVersion(ctx context.Context, transactionID string) (keptVersion, error) {
	var old keptVersion
	err := tx.QueryRowContext(ctx, `SELECT signed_date, revocation_date, refund_percent, lot_id FROM apple_transactions
		WHERE transaction_id = ?`, transactionID).Scan(&old.signed, &old.revoked, &old.part, &old.lotID)
	return old, err
}

// replanOnRefresh says whether p's plan (g) replaces the kept version's
// (old) while the purchase has no lot. A product the catalog no longer
// sells keeps what the purchase earned: a subscriber mid-period does not
// fall to free because a config dropped the product when Apple re-signed
// the transaction. A refund in full, or its end, changes what it earned, so
// the plan becomes unknown_product, to be planned again (replanUnknown). A
// refund in part does not: the pack still earns its lot, and
// refund_percent, set by storeNewestVersion, carries the share to it.
func replanOnRefresh(old keptVersion, p entitlements.Purchase, g entitlements.Grant) bool {
	fullBefore := old.revoked.Valid && !old.part.Valid
	fullNow := !p.RevocationDate.IsZero() && !partRefund(p).Valid
	return g.Outcome != entitlements.OutcomeUnknown || fullBefore != fullNow
}

// storeNewestVersion records p as the transaction's newest version, and
// its plan (g) too when replan says so and no lot exists yet. A token Apple
// set since (Set App Account Token, for a purchase made outside the app)
// names whom a row nobody holds yet waits for (pendingFor). A held row
// keeps its owner.
func (tx *Tx) storeNewestVersion(ctx context.Context, p entitlements.Purchase, g entitlements.Grant, replan bool) error {
	if _, err := tx.ExecContext(ctx, `UPDATE apple_transactions SET signed_date = ?1,
		expires_date = ?2, revocation_date = ?3, updated_at = ?4, refund_percent = ?11, upgraded = ?12,
		app_account_token = CASE WHEN user_id IS NULL AND ?13 != '' THEN ?13 ELSE app_account_token END,
		outcome = CASE WHEN lot_id IS NULL AND ?5 THEN ?6 ELSE outcome END,
		credits = CASE WHEN lot_id IS NULL AND ?5 THEN ?7 ELSE credits END,
		expires_at = CASE WHEN lot_id IS NULL AND ?5 THEN ?8 ELSE expires_at END,
		tier = CASE WHEN lot_id IS NULL AND ?5 THEN ?9 ELSE tier END
		WHERE transaction_id = ?10`,
		millis(p.SignedDate), nullMillis(p.ExpiresDate), nullMillis(p.RevocationDate), millis(tx.now), replan,
		string(g.Outcome), g.Credits, ptrMillis(g.ExpiresAt), g.Tier, p.TransactionID, partRefund(p), p.Upgraded,
		p.AppAccountToken); err != nil {
		return err
	}
	return tx.keepTransactionJWS(ctx, p)
}

// applyRevocationChange brings the lot the purchase earned, if any, in line
// with the newest version's (p) revocation where it differs from the kept
// version's (old): it refunds, undoes the refund in force, or revises its
// share. restored reports that it undid a refund.
func (tx *Tx) applyRevocationChange(ctx context.Context, p entitlements.Purchase, old keptVersion, actor string) (restored bool, err error) {
	revokedNow := !p.RevocationDate.IsZero()
	switch {
	case !old.lotID.Valid:
		return false, nil
	case !old.revoked.Valid && revokedNow:
		return false, tx.refundLot(ctx, p.TransactionID, p.RefundPercent(), old.lotID.String, actor)
	case old.revoked.Valid && !revokedNow:
		return tx.reverseRefund(ctx, p.TransactionID, actor)
	case revokedNow:
		return false, tx.reviseRefund(ctx, p, old.lotID.String, actor)
	}
	return false, nil
}

// errAnotherTransaction refuses a version of a transaction id whose
// environment, product or original transaction differ from the kept one's
// (kept): a transaction this service cannot use (the contract's 422).
var errAnotherTransaction = entitlements.Errorf(entitlements.KindUnprocessable, "transaction_id_conflict",
	"this transaction id is recorded for another transaction (its environment, product or original transaction differ)")

// replanUnknown plans again, with the catalog as it is now (g), a
// transaction kept as unknown_product: a pack or subscription sold before
// the operator configured it is kept for later (the webhook's 2xx), and
// later is when its buyer's app submits it again. Whatever version the app holds, the
// plan is the kept version's: only a revocation differs between versions
// of one transaction, so a plan of the submitted version (g) is the kept
// one's unless exactly one of them is revoked. A revoked kept version earns
// nothing; a revoked submitted version of a kept one that is not says
// nothing of what the kept one earns, and is left for a later claim. It
// runs before refreshPurchase, which plans from g itself when the
// submitted version is newer; so its plan stands for an app's copy no
// newer than the kept one, and its answer tells the claim it re-planned.
// (The handler refuses a product the catalog does not sell before this.)
func (tx *Tx) replanUnknown(ctx context.Context, p entitlements.Purchase, g entitlements.Grant) (bool, error) {
	var outcome string
	var revoked, part sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT outcome, revocation_date, refund_percent FROM apple_transactions
		WHERE transaction_id = ? AND lot_id IS NULL`, p.TransactionID).Scan(&outcome, &revoked, &part)
	// A kept version refunded in part earns its lot, as one not refunded
	// does; assignPurchase applies its refund.
	keptRevoked := revoked.Valid && !part.Valid
	switch {
	case errors.Is(err, sql.ErrNoRows) || err == nil && outcome != string(entitlements.OutcomeUnknown):
		return false, nil
	case err != nil:
		return false, err
	case g.Outcome == entitlements.OutcomeRevoked && !keptRevoked:
		return false, nil
	case keptRevoked && (g.Outcome == entitlements.OutcomeGranted || g.Outcome == entitlements.OutcomeExpired):
		g = entitlements.Grant{Outcome: entitlements.OutcomeRevoked}
	}
	_, err = tx.ExecContext(ctx, `UPDATE apple_transactions SET outcome = ?, credits = ?, expires_at = ?, tier = ?,
		updated_at = ? WHERE transaction_id = ?`,
		string(g.Outcome), g.Credits, ptrMillis(g.ExpiresAt), g.Tier, millis(tx.now), p.TransactionID)
	return err == nil, err
}

// assignPurchase gives a recorded transaction to userID and, if it earns a
// lot that has not been created yet and has not expired, creates it. It
// reports whether it created the lot.
func (tx *Tx) assignPurchase(ctx context.Context, transactionID, userID, actor string) (bool, error) {
	var r struct {
		outcome, product, env    string
		credits, purchased       int64
		expiresAt, refundPercent sql.NullInt64
		lotID                    sql.NullString
	}
	err := tx.QueryRowContext(ctx, `UPDATE apple_transactions SET user_id = ?, updated_at = ?
		WHERE transaction_id = ? AND (user_id IS NULL OR user_id = ?)
		RETURNING outcome, product_id, environment, credits, purchase_date, expires_at, lot_id, refund_percent`,
		userID, millis(tx.now), transactionID, userID).
		Scan(&r.outcome, &r.product, &r.env, &r.credits, &r.purchased, &r.expiresAt, &r.lotID, &r.refundPercent)
	if err != nil || r.lotID.Valid || r.outcome != string(entitlements.OutcomeGranted) {
		return false, err
	}
	lot := appStoreLot(transactionID, r.product, r.env, r.credits, r.purchased, r.expiresAt)
	if lot.Expired(tx.now) {
		_, err := tx.ExecContext(ctx, `UPDATE apple_transactions SET outcome = 'expired' WHERE transaction_id = ?`, transactionID)
		return false, err
	}
	if _, err = tx.ExecContext(ctx, `UPDATE apple_transactions SET lot_id = ? WHERE transaction_id = ?`, lot.LotID, transactionID); err != nil {
		return false, err
	}
	return true, tx.grantPurchaseLot(ctx, userID, lot, r.refundPercent, actor)
}

// settledSQL selects which of the transactions ?2 (a JSON array of ids)
// ?1 holds in a state that a newer signed version could not change to her
// gain: a pack whose lot she has, not refunded (a refund may still be
// reversed). Not settled: a pack recorded too late to give anything (the
// catalog may give its packs a longer life now, and a newer version is
// planned again), a period of a subscription (Apple may extend it), and
// an unknown product (the catalog may sell it now: replanUnknown).
const settledSQL = `SELECT transaction_id FROM apple_transactions
	WHERE transaction_id IN (SELECT value FROM json_each(?2)) AND user_id = ?1
	AND outcome = 'granted' AND lot_id IS NOT NULL AND revocation_date IS NULL AND refund_percent IS NULL`

// SettledPurchases says which of ids userID already holds for good
// (settledSQL): claiming one again, whatever Apple now signs for it, could
// give her nothing, so an app receipt's claim need not ask Apple for it.
func (db *DB) SettledPurchases(ctx context.Context, userID string, ids []string) (map[string]bool, error) {
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	return db.stringSet(ctx, settledSQL, userID, string(list))
}
