package entitlements_test

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/creditsd/creditsd/entitlements"
)

// A spend takes today's allowance first, then the lots that expire
// soonest; a lot that never expires pays last.
func ExamplePlanSpend() {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	december, june := now.AddDate(0, 0, 10), now.AddDate(0, 7, 0)
	lots := []entitlements.Lot{
		{LotID: "gift", Remaining: 50, GrantedAt: now.AddDate(0, -1, 0)}, // never expires
		{LotID: "june", Remaining: 10, GrantedAt: now.AddDate(0, -5, 0), ExpiresAt: &june},
		{LotID: "december", Remaining: 3, GrantedAt: now.AddDate(-1, 0, 10), ExpiresAt: &december},
	}
	plan, err := entitlements.PlanSpend(8, 2, 0, lots, now)
	fmt.Println(plan.FromAllowance, plan.FromLots, err)

	// All or nothing: 66 is one more than the 2 + 63 the user can spend.
	_, err = entitlements.PlanSpend(66, 2, 0, lots, now)
	fmt.Println(entitlements.ErrorCode(err))

	// While a refund's debt is unpaid, nothing is spent.
	_, err = entitlements.PlanSpend(1, 2, 4, lots, now)
	fmt.Println(entitlements.ErrorCode(err))
	// Output:
	// 2 [{december 3} {june 3}] <nil>
	// insufficient_credits
	// debt_outstanding
}

// The entitlement the app and the backend read: the day's allowance by
// tier, the unexpired lots with credits left, and what may be spent.
func ExampleCompute() {
	at := time.Date(2026, 11, 24, 18, 30, 0, 0, time.UTC)
	bought := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	expires, _ := entitlements.DefaultExpiry.ExpiresAt(bought)
	gone := bought.AddDate(0, 0, 1)
	state := entitlements.UserState{
		At: at, UserID: "alice", AppAccountToken: "9b2e0f0a-3d2c-5e1f-8a7b-6c5d4e3f2a1b",
		Tier: entitlements.TierFree, AllowanceUsed: 4,
		Lots: []entitlements.Lot{
			{LotID: "L1", Source: entitlements.SourceAppStore, ProductID: "com.example.sora.credits10",
				TransactionID: "2000000123456789", Environment: "Production",
				Granted: 10, Remaining: 6, GrantedAt: bought, ExpiresAt: &expires},
			{LotID: "L0", Source: entitlements.SourceAdmin, Granted: 5, Remaining: 5,
				GrantedAt: bought, ExpiresAt: &gone}, // expired: not listed, not counted
		},
	}
	e := entitlements.Compute(state, entitlements.DefaultAllowance())
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(e)
	// Output:
	// {
	//   "user_id": "alice",
	//   "app_account_token": "9b2e0f0a-3d2c-5e1f-8a7b-6c5d4e3f2a1b",
	//   "tier": "free",
	//   "allowance": {
	//     "limit": 30,
	//     "used": 4,
	//     "remaining": 26,
	//     "resets_at": "2026-11-25T00:00:00Z"
	//   },
	//   "credits": {
	//     "balance": 6,
	//     "debt": 0,
	//     "lots": [
	//       {
	//         "lot_id": "L1",
	//         "source": "app_store",
	//         "product_id": "com.example.sora.credits10",
	//         "transaction_id": "2000000123456789",
	//         "environment": "Production",
	//         "granted": 10,
	//         "remaining": 6,
	//         "granted_at": "2026-03-01T09:00:00Z",
	//         "expires_at": "2027-03-01T09:00:00Z"
	//       }
	//     ]
	//   },
	//   "spendable": 32
	// }
}

// Purchased credits last 12 calendar months. A month past the end of a
// shorter month stops at its last day, so a pack bought on 29 February
// lasts to 28 February, not to 1 March.
func ExampleExpiry_ExpiresAt() {
	twelve, _ := entitlements.ParseExpiry("12mo")
	for _, bought := range []time.Time{
		time.Date(2028, 2, 29, 15, 4, 5, 0, time.UTC),
		time.Date(2026, 12, 6, 23, 59, 59, 999e6, time.UTC),
	} {
		at, _ := twelve.ExpiresAt(bought)
		fmt.Println(at.Format(time.RFC3339Nano))
	}
	oneMonth, _ := entitlements.ParseExpiry("1mo")
	at, _ := oneMonth.ExpiresAt(time.Date(2027, 1, 31, 8, 0, 0, 0, time.UTC))
	fmt.Println(at.Format(time.RFC3339))
	never, _ := entitlements.ParseExpiry("never")
	_, expires := never.ExpiresAt(time.Now())
	fmt.Println(expires)
	// Output:
	// 2029-02-28T15:04:05Z
	// 2027-12-06T23:59:59.999Z
	// 2027-02-28T08:00:00Z
	// false
}

// A generation costs its started units of length times its resolution's
// credits a unit. Its length is read exactly from the JSON number of
// seconds, so 10.001 s is a third started unit of 5 s.
func ExamplePricing_Price() {
	p := entitlements.DefaultPricing()
	for _, body := range []string{
		`{"product": "sora", "generation": {"seconds": 10, "resolution": "1080p"}}`,
		`{"product": "sora", "generation": {"seconds": 10.001, "resolution": "1080p"}}`,
		`{"product": "codex", "generation": {"seconds": 61, "resolution": "standard"}}`,
		`{"product": "sora", "generation": {"seconds": 5, "resolution": "4k"}}`,
	} {
		var req struct {
			Product    string
			Generation entitlements.Generation
		}
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			fmt.Println(err)
			continue
		}
		credits, err := p.Price(req.Product, req.Generation)
		fmt.Println(req.Product, req.Generation.Resolution, credits, err)
	}
	// Output:
	// sora 1080p 8 <nil>
	// sora 1080p 12 <nil>
	// codex standard 2 <nil>
	// sora 4k 0 unknown_resolution: resolution "4k" for sora: want one of 1080p, 480p, 720p
}

// A refund takes back the credits Apple refunded: first what is left in
// the lot, then, under the debt policy, what was spent of it becomes debt.
func ExamplePlanRefund() {
	// A pack of 10, 7 spent, refunded in full.
	fmt.Printf("%+v\n", entitlements.PlanRefund(10, 1, 3, 7, 100_000, entitlements.RefundDebt))
	// The same refund under the forgive policy.
	fmt.Printf("%+v\n", entitlements.PlanRefund(10, 1, 3, 7, 100_000, entitlements.RefundForgive))
	// Two packs bought at once (20 credits), one of them refunded (50 %),
	// 4 spent: the 10 come out of the 16 left, and nothing is owed.
	fmt.Printf("%+v\n", entitlements.PlanRefund(20, 2, 16, 4, 50_000, entitlements.RefundDebt))
	// Output:
	// {Revoked:10 Removed:3 Debt:7 WrittenOff:0}
	// {Revoked:10 Removed:3 Debt:0 WrittenOff:7}
	// {Revoked:10 Removed:10 Debt:0 WrittenOff:0}
}

// An allowance day runs from midnight to midnight in the policy's zone,
// so the day clocks skip an hour has 23.
func ExampleAllowancePolicy_Day() {
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		fmt.Println(err)
		return
	}
	policy := entitlements.DefaultAllowance()
	policy.Location = newYork
	day := policy.Day(time.Date(2027, 3, 14, 12, 0, 0, 0, time.UTC))
	fmt.Println(day.Key, day.Start.UTC().Format(time.RFC3339), day.End.Sub(day.Start))
	fmt.Println(policy.Limit(entitlements.TierFree, day), policy.Limit(entitlements.TierPro, day))
	// Output:
	// 2027-03-14 2027-03-14T05:00:00Z 23h0m0s
	// 30 100
}
