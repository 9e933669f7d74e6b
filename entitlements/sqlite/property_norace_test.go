//go:build !race

package sqlite

// propRace scales the property tests down under -race, whose pointer
// checks make the pure-Go SQLite about thirty times slower.
const propRace = false
