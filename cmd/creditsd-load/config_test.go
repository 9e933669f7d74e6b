package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/creditsd/creditsd/receipts/devca"
)

func TestWriteConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), `odd: dir #1`) // YAML syntax in the path must not break the file
	require.NoError(t, os.Mkdir(dir, 0o700))
	ca, err := devca.New(devca.Options{})
	require.NoError(t, err)
	f, err := writeConfig(dir, ca.RootPEM(), "warn")
	require.NoError(t, err)

	root, err := os.ReadFile(f.Root)
	require.NoError(t, err)
	require.Equal(t, ca.RootPEM(), root)
	require.GreaterOrEqual(t, len(f.Secret), 32, "creditsd refuses shorter secrets")

	raw, err := os.ReadFile(f.Config)
	require.NoError(t, err)
	var c struct {
		Listen   string
		Database string
		Apple    struct {
			BundleID         string   `yaml:"bundle_id"`
			Environments     []string `yaml:"environments"`
			RootCertificates []string `yaml:"root_certificates"`
		}
		Products []struct {
			ProductID string `yaml:"product_id"`
			Credits   int64
		}
		Auth struct {
			HS256Secret string `yaml:"hs256_secret"`
		}
		Log  struct{ Level, Format string }
		Jobs jobsYAML
	}
	require.NoError(t, yaml.Unmarshal(raw, &c))
	require.Equal(t, "127.0.0.1:0", c.Listen)
	require.Equal(t, filepath.Join(dir, "creditsd.db"), c.Database)
	require.Equal(t, bundleID, c.Apple.BundleID)
	require.Equal(t, []string{"Sandbox"}, c.Apple.Environments)
	require.Equal(t, []string{f.Root}, c.Apple.RootCertificates)
	require.Equal(t, packProduct, c.Products[0].ProductID)
	require.Equal(t, int64(packCredits), c.Products[0].Credits)
	require.Equal(t, f.Secret, c.Auth.HS256Secret)
	require.Equal(t, "warn", c.Log.Level)
	require.Equal(t, "json", c.Log.Format, "the address is read from the JSON log")
	require.Equal(t, "UTC", c.Jobs.Timezone)
	require.Len(t, c.Jobs.Each, 4)
	for name, j := range c.Jobs.Each {
		require.False(t, j.Enabled, "%s must not run on its own during a measurement", name)
	}
}

// jobsYAML is the config's jobs section as creditsd reads it.
type jobsYAML struct {
	Timezone string `yaml:"timezone"`
	Each     map[string]struct {
		Schedule string
		Enabled  bool
	} `yaml:",inline"`
}

// seedSmall seeds 7 users and 503 lots, 50 of them expired, laid out as
// plan says, checks every seeded row's foreign keys, and returns the
// report and a counter on the database.
func seedSmall(t *testing.T, plan seedPlan) (seedReport, func(q string, args ...any) int) {
	t.Helper()
	plan.users, plan.lots, plan.expired, plan.credits = 7, 503, 50, 1000
	path := filepath.Join(t.TempDir(), "seed.db")
	rep, err := seed(context.Background(), path, plan, nil)
	require.NoError(t, err)
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	rows, err := db.Query("PRAGMA foreign_key_check")
	require.NoError(t, err)
	require.False(t, rows.Next(), "every seeded row's foreign keys hold")
	require.NoError(t, rows.Close())
	return rep, func(q string, args ...any) int {
		var n int
		require.NoError(t, db.QueryRow(q, args...).Scan(&n))
		return n
	}
}

func TestSeedMatchesSchema(t *testing.T) {
	now := time.Now()
	rep, count := seedSmall(t, seedPlan{now: now})
	require.Equal(t, 503, rep.Lots)
	require.Equal(t, 7, count("SELECT count(*) FROM users"))
	require.Equal(t, 503, count("SELECT count(*) FROM lots WHERE source = 'admin' AND remaining = granted"))
	require.Equal(t, 503, count("SELECT count(*) FROM entries WHERE kind = 'admin_grant' AND credits = 1000"))
	require.Equal(t, 503, count("SELECT count(*) FROM admin_grants"))
	require.Equal(t, 50, count("SELECT count(*) FROM lots WHERE expires_at <= ?", now.UnixMilli()))
	require.Equal(t, 503, count("SELECT entries FROM ledger_totals WHERE kind = 'admin_grant'"), "the seed counted its entries in the totals")
	require.Equal(t, 71, count("SELECT count(*) FROM lots WHERE user_id = ?", seedUserID(0)), "lots spread evenly: 503/7")
}

// --expired-layout together: the same lots, owners and expiries, but the
// expired ones granted first, their ids and entries in that order. (The
// lots table itself is kept in user order: a user's lots sit together.)
func TestSeedExpiredTogether(t *testing.T) {
	now := time.Now()
	_, count := seedSmall(t, seedPlan{now: now, together: true})
	require.Equal(t, 503, count("SELECT count(*) FROM lots"))
	require.Equal(t, 50, count("SELECT count(*) FROM lots WHERE expires_at <= ?", now.UnixMilli()))
	require.Equal(t, 50, count(`SELECT count(*) FROM (SELECT expires_at FROM lots ORDER BY lot_id LIMIT 50) WHERE expires_at <= ?`,
		now.UnixMilli()), "the expired lots have the first 50 ids")
	require.Equal(t, 50, count(`SELECT count(*) FROM (SELECT lot_id FROM entries ORDER BY entry_id LIMIT 50)
		JOIN lots USING (lot_id) WHERE expires_at <= ?`, now.UnixMilli()), "and the first 50 entries")
	require.Equal(t, 71, count("SELECT count(*) FROM lots WHERE user_id = ?", seedUserID(0)), "owners as with spread")
	require.Equal(t, 0, count(`SELECT count(*) FROM (SELECT lot_id, lag(lot_id) OVER (ORDER BY expires_at) AS prev FROM lots
		WHERE expires_at <= ?) WHERE prev > lot_id`, now.UnixMilli()), "they expire in the order they were granted, so the sweep writes their entries' lot ids in order")
}

// --lot-order time: the same number of lots a user, but lot i is user
// i mod users's, so neighbouring lots belong to different users.
func TestSeedLotsByTime(t *testing.T) {
	now := time.Now()
	rep, count := seedSmall(t, seedPlan{now: now, byTime: true})
	require.True(t, rep.ByTime)
	require.Equal(t, 503, count("SELECT count(*) FROM lots"))
	require.Equal(t, 503, count("SELECT count(*) FROM entries WHERE kind = 'admin_grant'"))
	require.Equal(t, 50, count("SELECT count(*) FROM lots WHERE expires_at <= ?", now.UnixMilli()))
	require.Equal(t, 72, count("SELECT count(*) FROM lots WHERE user_id = ?", seedUserID(0)), "lots 0, 7, …, 497")
	require.Equal(t, 71, count("SELECT count(*) FROM lots WHERE user_id = ?", seedUserID(6)))
	require.Equal(t, 0, count(`SELECT count(*) FROM (SELECT user_id, lag(user_id) OVER (ORDER BY lot_id) AS prev FROM lots)
		WHERE prev = user_id`), "no two lots bought in turn are one user's")
}

func TestIsExpiredPicksExactly(t *testing.T) {
	for _, c := range []struct{ lots, expired int }{{10, 0}, {10, 1}, {10, 10}, {1000, 333}, {7, 3}} {
		n := 0
		for i := range c.lots {
			if isExpired(seedPlan{lots: c.lots, expired: c.expired}, i) {
				n++
			}
		}
		require.Equal(t, c.expired, n, "%+v", c)
	}
}

// By time, the expired lots are spread among the users even when their
// spacing divides the users: 1M users, 10M lots and 1M expired put every
// lot of one user in ten expired and none of the others'.
func TestSeedExpiredSpreadByTime(t *testing.T) {
	now := time.Now()
	plan := seedPlan{users: 10, lots: 100, expired: 10, credits: 1000, now: now, byTime: true}
	path := filepath.Join(t.TempDir(), "seed.db")
	_, err := seed(context.Background(), path, plan, nil)
	require.NoError(t, err)
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.Query(`SELECT user_id, sum(expires_at <= ?), sum(expires_at > ?) FROM lots GROUP BY user_id`,
		now.UnixMilli(), now.UnixMilli())
	require.NoError(t, err)
	defer rows.Close()
	users := 0
	for rows.Next() {
		var user string
		var expired, live int
		require.NoError(t, rows.Scan(&user, &expired, &live))
		require.Equal(t, []int{1, 9}, []int{expired, live}, "user %s", user)
		users++
	}
	require.NoError(t, rows.Err())
	require.Equal(t, 10, users)
}

// expiredLot picks exactly plan.expired lots in either layout, and by
// time no user has more than its share, rounded up.
func TestExpiredLotPicksExactlyAndEvenly(t *testing.T) {
	for _, c := range []struct{ users, lots, expired int }{
		{10, 100, 10}, {1000, 10000, 1000}, {7, 503, 50}, {3, 10, 9}, {20, 10, 5}, {4, 10, 0}, {1, 10, 10},
	} {
		for _, byTime := range []bool{false, true} {
			p := seedPlan{users: c.users, lots: c.lots, expired: c.expired, byTime: byTime}
			n, perUser := 0, map[int]int{}
			for i := range c.lots {
				if expiredLot(p, i) {
					n++
					perUser[i%c.users]++
				}
			}
			require.Equal(t, c.expired, n, "%+v by time %t", c, byTime)
			if byTime {
				share := (c.lots + c.users - 1) / c.users * c.expired / c.lots
				for u, k := range perUser {
					require.LessOrEqual(t, k, share+1, "%+v: user %d has %d expired", c, u, k)
				}
			}
		}
	}
}
