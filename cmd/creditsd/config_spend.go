package main

import (
	"fmt"
	"sort"

	"github.com/creditsd/creditsd/entitlements"
)

// RateConfig prices one spending product's generations. A product the
// defaults know keeps any field left out; resolutions, when given, replace
// the default table.
type RateConfig struct {
	UnitSeconds int64            `yaml:"unit_seconds"` // one unit of length; a started unit counts whole
	MaxSeconds  int64            `yaml:"max_seconds"`  // the longest generation accepted
	Resolutions map[string]int64 `yaml:"resolutions"`  // credits per unit, by resolution
}

// resolvePricing merges pricing over entitlements.DefaultPricing.
func resolvePricing(cfg map[string]RateConfig) (entitlements.Pricing, error) {
	pricing := entitlements.DefaultPricing()
	names := make([]string, 0, len(cfg))
	for name := range cfg {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		rate, err := resolveRate(name, cfg[name], pricing[name])
		if err != nil {
			return nil, err
		}
		pricing[name] = rate
	}
	return pricing, nil
}

func resolveRate(name string, rc RateConfig, rate entitlements.Rate) (entitlements.Rate, error) {
	key := "pricing." + name
	if !entitlements.ValidUserID(name) {
		return rate, keyErrorf(key, "product names are 1–128 letters, digits, '-', '_', '.', '@' or ':'")
	}
	if rc.UnitSeconds != 0 {
		rate.UnitSeconds = rc.UnitSeconds
	}
	if rc.MaxSeconds != 0 {
		rate.MaxSeconds = rc.MaxSeconds
	}
	if rc.Resolutions != nil {
		rate.PerUnit = rc.Resolutions
	}
	switch {
	case rate.UnitSeconds <= 0:
		return rate, keyErrorf(key+".unit_seconds", "want a whole number of seconds above 0")
	case rate.MaxSeconds <= 0 || rate.MaxSeconds > 86400:
		return rate, keyErrorf(key+".max_seconds", "want a whole number of seconds from 1 to 86400")
	case len(rate.PerUnit) == 0:
		return rate, keyErrorf(key+".resolutions", "want at least one resolution with its credits per unit")
	}
	for res, credits := range rate.PerUnit {
		if credits <= 0 || credits > 1_000_000 {
			return rate, keyErrorf(fmt.Sprintf("%s.resolutions.%s", key, res), "want credits from 1 to 1000000")
		}
	}
	return rate, nil
}

// resolveRefundPolicy checks refund_policy; empty means debt.
func resolveRefundPolicy(p string) (string, error) {
	switch p {
	case "", entitlements.RefundDebt:
		return entitlements.RefundDebt, nil
	case entitlements.RefundForgive:
		return p, nil
	}
	return "", keyErrorf("refund_policy", "want debt or forgive")
}
