package receipts

import "slices"

// knownEnvironments are the values Apple writes; a Verifier listing any
// other (say "production") is a typo that would refuse everything.
var knownEnvironments = []string{Production, Sandbox, Xcode, LocalTesting}

// checkConfig refuses a Verifier that cannot verify anything correctly.
// These errors are the retryable kind: fixing the configuration fixes them.
func (v *Verifier) checkConfig() error {
	if v.BundleID == "" {
		return newError(CodeConfig, nil, "verifier has no BundleID")
	}
	if len(v.Environments) == 0 {
		return newError(CodeConfig, nil, "verifier accepts no environment")
	}
	for _, env := range v.Environments {
		if !slices.Contains(knownEnvironments, env) {
			return newError(CodeConfig, nil, "verifier environment %q is not one of Apple's", env)
		}
	}
	// Apple's SignedDataVerifier demands the app id in Production; without
	// it a Production notification lacking appAppleId would match 0.
	if slices.Contains(v.Environments, Production) && v.AppAppleID == 0 {
		return newError(CodeConfig, nil, "verifier accepts Production but has no AppAppleID")
	}
	if slices.Contains(v.Roots, nil) {
		return newError(CodeConfig, nil, "verifier has a nil root")
	}
	return nil
}

func (v *Verifier) checkBundleID(bundleID string) error {
	if bundleID != v.BundleID {
		return newError(CodeAppIdentifier, nil, "bundleId %q is not this app's", bundleID)
	}
	return nil
}

func (v *Verifier) checkEnvironment(env string) error {
	if !slices.Contains(v.Environments, env) {
		return newError(CodeEnvironment, nil, "environment %q is not accepted", env)
	}
	return nil
}
