// Package entitlements is the credit ledger's domain: users and their
// app_account_token, the product catalog, lots, the daily allowance, and the
// entitlement a user sees. Its maths are pure functions of (state, now) so
// they can be table-tested without a database; package entitlements/sqlite
// stores the state, and the HTTP handlers for these nouns live here too.
package entitlements
