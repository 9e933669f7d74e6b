package entitlements

import "time"

// LotPart is the credits one spend took from (or gave back to) one lot.
type LotPart struct {
	LotID   string `json:"lot_id"`
	Credits int64  `json:"credits"`
}

// SpendPlan splits a cost between today's allowance and lots.
type SpendPlan struct {
	FromAllowance int64
	FromLots      []LotPart
}

// PlanSpend splits cost: today's allowance first, then lots soonest-expiring
// first. A spend is all or nothing: while the user owes debt it is refused,
// and so is one that spendable cannot cover.
func PlanSpend(cost, allowanceRemaining, debt int64, lots []Lot, now time.Time) (SpendPlan, error) {
	if debt > 0 {
		return SpendPlan{}, Errorf(KindPaymentRequired, "debt_outstanding",
			"the user owes %d credits from a refund; spending resumes once it is paid", debt)
	}
	plan := SpendPlan{FromAllowance: min(cost, max(allowanceRemaining, 0))}
	left := cost - plan.FromAllowance
	for _, l := range SpendableLots(lots, now) {
		if left == 0 {
			break
		}
		take := min(left, l.Remaining)
		plan.FromLots = append(plan.FromLots, LotPart{LotID: l.LotID, Credits: take})
		left -= take
	}
	if left > 0 {
		return SpendPlan{}, Errorf(KindPaymentRequired, "insufficient_credits",
			"the spend costs %d credits and the user can spend %d", cost, cost-left)
	}
	return plan, nil
}

// After is st once plan is charged: the allowance used grows, each lot
// loses what the plan takes from it, and lots left empty drop out, as
// they do from a state read. The spend path answers with it instead of
// reading the user again after its commit.
func (st UserState) After(plan SpendPlan) UserState {
	taken := make(map[string]int64, len(plan.FromLots))
	for _, p := range plan.FromLots {
		taken[p.LotID] += p.Credits
	}
	lots := make([]Lot, 0, len(st.Lots))
	for _, l := range st.Lots {
		l.Remaining -= taken[l.LotID]
		if l.Remaining > 0 {
			lots = append(lots, l)
		}
	}
	st.AllowanceUsed += plan.FromAllowance
	st.Lots = lots
	return st
}

// Refund policies for credits already spent from a refunded pack.
const (
	RefundDebt    = "debt"    // the spent part becomes debt; spending is refused until it is paid
	RefundForgive = "forgive" // the spent part is written off
)

// RefundPlan is what a refund of a lot takes back.
type RefundPlan struct {
	Revoked    int64 // credits the refund revokes in all
	Removed    int64 // from the lot's unspent credits
	Debt       int64 // already-spent credits the user now owes
	WrittenOff int64 // already-spent credits forgiven
}

// Revoked is the credits a refund of percentMilli (in milliunits; outside
// 1..100000, all) revokes of a lot of granted credits bought as quantity
// units, without overflowing int64. Apple's percentage is its rounding of
// the true share to a milliunit, so granted × percent / 100000 is only
// near the credits it refunded: a purchase of several units refunds whole
// units where the percentage names them (refundedUnits); otherwise the
// share rounds down unless only the credit above it is consistent with
// Apple's rounding (revokedShare).
func Revoked(granted, quantity, percentMilli int64) int64 {
	if percentMilli <= 0 || percentMilli > 100000 {
		percentMilli = 100000
	}
	if k, ok := refundedUnits(granted, quantity, percentMilli); ok {
		return k * (granted / quantity)
	}
	return revokedShare(granted, percentMilli)
}

// maxNamedQuantity is the largest quantity whose refunded units a
// percentage can name: units are 100000/quantity milliunits apart, so
// below 100000 units at most one count of them lies within half a
// milliunit of the percentage. (Apple sells at most 10 at once; the
// catalog's bound, MaxCredits, is far above this one.) It also keeps
// percent × quantity far from int64's limits.
const maxNamedQuantity = 99_999

// refundedUnits is the number of units k whose share k/quantity is within
// half a milliunit of percentMilli: what Apple refunded of a purchase of
// several units of equal credits. Above 100,000 credits a lot's half a
// milliunit spans more than a credit, and only the units tell which: 2 of
// 7 packs of 16,667 is 28.571 %, 33,333.49999 of their 116,669 credits,
// and Apple refunded 33,334.
func refundedUnits(granted, quantity, percentMilli int64) (int64, bool) {
	if quantity < 2 || quantity > maxNamedQuantity || granted%quantity != 0 {
		return 0, false
	}
	scaled := percentMilli * quantity // k × 100000, within quantity/2 when k units were refunded
	k := (scaled + 50000) / 100000    // the nearest count
	return k, 2*abs(k*100000-scaled) <= quantity
}

// revokedShare is granted × percentMilli / 100000 rounded down, unless the
// credit above is the only whole number Apple's rounding explains: the
// percentage is within half a milliunit of the true share, so the product
// is within granted/2 hundred-thousandths of a credit of the credits
// refunded. 1 of 3 credits is 33.333 %, 0.99999 credits: that is 1, and
// rounding down would leave the buyer a credit nobody paid for. Where both
// neighbours are within reach (a lot above 100,000 credits), it rounds
// down: the user is never charged for more than Apple refunded. Half a
// milliunit is within reach, not past it: a true share exactly between two
// milliunits, as 1 of 64 credits (1.5625 %) is, Apple may write either way
// (1562), so a shortfall of exactly granted/2 is still its rounding.
func revokedShare(granted, percentMilli int64) int64 {
	q := granted/100000*percentMilli + granted%100000*percentMilli/100000
	r := granted % 100000 * percentMilli % 100000 // what floor dropped, in 1/100000 of a credit
	if 2*(100000-r) <= granted && 2*r > granted {
		q++
	}
	return q
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// PlanRefund decides what refunding a lot of granted credits, bought as
// quantity units, takes back. percentMilli is Apple's revocationPercentage
// in milliunits (100000 = all); a partial refund revokes the whole units
// it names, else that share of the lot, rounded down unless Apple's
// rounding of the percentage explains the fraction (Revoked), so that a
// user is never charged for more than Apple refunded. The unspent part goes first;
// whatever the revocation still needs comes from credits already spent.
func PlanRefund(granted, quantity, remaining, spent, percentMilli int64, policy string) RefundPlan {
	p := RefundPlan{Revoked: Revoked(granted, quantity, percentMilli)}
	p.Removed = min(p.Revoked, remaining)
	owed := min(p.Revoked-p.Removed, max(spent, 0))
	if policy == RefundForgive {
		p.WrittenOff = owed
	} else {
		p.Debt = owed
	}
	return p
}
