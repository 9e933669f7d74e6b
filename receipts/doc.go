// Package receipts verifies what Apple signs for the App Store: App Store
// Server Notifications V2, signed transactions and renewal infos, each a
// compact JWS whose x5c chain must lead to Apple Root CA - G3.
//
// The checks follow Apple's own SignedDataVerifier (with online checks off)
// and add a few: the header's exact ES256, exactly three certificates, the
// intermediate signed by a configured root (x5c[2] is never trusted), Apple's
// marker OIDs, every certificate valid at the payload's signedDate, the
// signature, then the bundle id, environment and (for Production
// notifications) the app's Apple id. Beyond Apple: nested transactions and
// renewal infos in a notification are verified too and must agree with it,
// Xcode and LocalTesting payloads get no exemption, and input size and
// encoding are strict.
//
// Package receipts/devca mints Apple-shaped chains for development and tests.
package receipts
