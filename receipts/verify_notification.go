package receipts

// VerifyNotification verifies an App Store Server Notification V2
// signedPayload: chain, signature, bundle id, environment, the app's Apple id
// for Production, and then the nested signedTransactionInfo and
// signedRenewalInfo, each verified in full. Any failure fails the whole
// notification, so a valid envelope around a forged transaction grants
// nothing.
func (v *Verifier) VerifyNotification(signedPayload string) (*Notification, error) {
	if err := v.checkConfig(); err != nil {
		return nil, err
	}
	n := &Notification{JWS: signedPayload}
	raw, err := v.verifyJWS(signedPayload, n)
	if err != nil {
		return nil, err
	}
	n.Raw = raw
	if n.NotificationType == "" || n.NotificationUUID == "" {
		// notificationUUID is what callers deduplicate on.
		return nil, newError(CodeMalformed, nil, "notification has no notificationType or notificationUUID")
	}
	if err := v.checkNotificationApp(n); err != nil {
		return nil, err
	}
	if err := v.verifyNested(n); err != nil {
		return nil, err
	}
	return n, nil
}

// checkNotificationApp applies Apple's identity rule, and one step more.
// Apple requires appAppleId to be this app's only in Production, because
// Sandbox and TestFlight notifications may carry none; one that does carry
// an appAppleId naming another app is not ours in any environment (the
// contract counts it as not verifying). The environment is checked before
// the app id so that a Verifier not accepting Production is told so,
// rather than being told the app id differs.
func (v *Verifier) checkNotificationApp(n *Notification) error {
	if err := v.checkBundleID(n.BundleID()); err != nil {
		return err
	}
	if err := v.checkEnvironment(n.Environment()); err != nil {
		return err
	}
	if id := n.AppAppleID(); id != v.AppAppleID && (n.Environment() == Production || id != 0 && v.AppAppleID != 0) {
		return newError(CodeAppIdentifier, nil, "appAppleId %d is not this app's", id)
	}
	return nil
}

// verifyNested verifies the JWS inside data. The outer payload has passed
// our app checks, so agreeing with it is agreeing with us.
func (v *Verifier) verifyNested(n *Notification) error {
	if n.Data == nil {
		return nil
	}
	if s := n.Data.SignedTransactionInfo; s != "" {
		t, err := v.decodeTransaction(s)
		if err != nil {
			return withContext(err, "signedTransactionInfo")
		}
		if t.BundleID != n.BundleID() || t.Environment != n.Environment() {
			return newError(CodeInnerMismatch, nil, "signedTransactionInfo bundleId or environment differs from the notification's")
		}
		n.Transaction = t
	}
	if s := n.Data.SignedRenewalInfo; s != "" {
		r, err := v.decodeRenewal(s)
		if err != nil {
			return withContext(err, "signedRenewalInfo")
		}
		if r.Environment != n.Environment() {
			return newError(CodeInnerMismatch, nil, "signedRenewalInfo environment differs from the notification's")
		}
		n.Renewal = r
	}
	return nil
}
