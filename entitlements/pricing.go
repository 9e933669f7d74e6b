package entitlements

import (
	"sort"
	"strings"
)

// Products that spend credits. Credits are shared between them.
const (
	ProductSora  = "sora"
	ProductCodex = "codex"
)

// Rate prices one product's generations: a credit figure per started unit
// of seconds, by resolution.
type Rate struct {
	UnitSeconds int64            // the length one unit covers
	MaxSeconds  int64            // the longest generation accepted
	PerUnit     map[string]int64 // credits per unit, by resolution
}

// Pricing maps a product to its rate.
type Pricing map[string]Rate

// DefaultPricing: a Sora video costs 1 credit per started 5 seconds at
// 480p, 2 at 720p and 4 at 1080p (a 10 s 1080p video is 8 credits); a
// Codex task costs 1 credit per started minute.
func DefaultPricing() Pricing {
	return Pricing{
		ProductSora:  {UnitSeconds: 5, MaxSeconds: 60, PerUnit: map[string]int64{"480p": 1, "720p": 2, "1080p": 4}},
		ProductCodex: {UnitSeconds: 60, MaxSeconds: 3600, PerUnit: map[string]int64{"standard": 1}},
	}
}

// Generation is what a spend may ask to be priced.
type Generation struct {
	Seconds    Seconds `json:"seconds"`
	Resolution string  `json:"resolution"`
}

// Price is the credits a generation of product costs: started units of
// UnitSeconds (rounded up) times the resolution's credits per unit.
func (p Pricing) Price(product string, g Generation) (int64, error) {
	rate, ok := p[product]
	if !ok {
		return 0, Errorf(KindInvalid, "unknown_product", "product %q: want one of %s", product, strings.Join(p.Products(), ", "))
	}
	perUnit, ok := rate.PerUnit[g.Resolution]
	if !ok {
		return 0, Errorf(KindInvalid, "unknown_resolution", "resolution %q for %s: want one of %s",
			g.Resolution, product, strings.Join(keys(rate.PerUnit), ", "))
	}
	ms := int64(g.Seconds)
	if ms <= 0 || ms > rate.MaxSeconds*1000 {
		return 0, Errorf(KindInvalid, "invalid_seconds", "seconds must be above 0 and at most %d for %s", rate.MaxSeconds, product)
	}
	unitMS := rate.UnitSeconds * 1000
	units := (ms + unitMS - 1) / unitMS
	return units * perUnit, nil
}

// Products are the product names the pricing knows, sorted.
func (p Pricing) Products() []string { return keys(p) }

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
