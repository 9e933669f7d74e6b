package sqlite

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"path"
	"testing"

	"github.com/stretchr/testify/require"
)

// landed are the SHA-256s of the migrations main has carried. The runner
// records a migration by its name alone, so one edited after it landed
// leaves every database that applied it on the old text for good (0002,
// 0008, 0012 and 0020 were edited after they landed, and 0013 replaced
// under another name: session 34's upgrade audit found databases of those
// commits missing a trigger, an index or rows, and one that no later
// binary would open). A change to a migration is a new migration; add each
// new one here when it lands.
var landed = map[string]string{
	"0001_ledger.sql":                         "b27db30f5fe641167de615caa5a52e9486a1d47b10a3d84bf5253462efba0580",
	"0002_spends.sql":                         "4014c82b68c61ca733f20499f86f3b8368f7cb8f16682a790eade2cd22fd5009",
	"0003_jobs.sql":                           "ec0171433022903843aace6be4c02d9dee48a8e931fb9143d5d191c1ddb1258c",
	"0004_consumption.sql":                    "7716b7c7dd5ad57856f985558d2751d9a92702438461d4196c267bc69315f2d9",
	"0005_transaction_jws.sql":                "a7da43690a7283ef6ebb0d00996dff820707f9771a803707f2ff5b07d3282947",
	"0006_drop_decoded.sql":                   "72de246483db14d36c23c44eb169e1b052d574e156209faf3beb19fa7006c81a",
	"0007_allowance_day_by_entry.sql":         "5ce67b3c87d294ddd349eae4c4a957bc04c05f4698f9874448a9c1c6bfbab4d8",
	"0008_jws_headers.sql":                    "068fcab58e5984a480e20292e855a22fd11cd36496bb4fe34094409b3cbfeeb4",
	"0009_notification_inner_header.sql":      "9325699aa7061b67b5db2c6c3d5f553f856f89eba90bb6598e79fabf1ca6d93f",
	"0010_subscription_user_index.sql":        "53138866744cd6dc5cbb82b3e9cc1e7f4a38bff16e0ef156ddeb4e276bd56c27",
	"0011_allowance_usage_by_day.sql":         "3a8ea2e12fe2c49c6929165f0c5815f34e503bb885a88eb04f32ee24e62c0d04",
	"0012_lots_by_user.sql":                   "bf834ff2f52821f831ad780400f965c60758e9b7ea69856f283a86523bc99a16",
	"0013_unread_indexes.sql":                 "e02d6cfd495a7d798380fc2645e27e9bc96e154bbb49a6d0ee68e2c2630d3e84",
	"0014_entries_lot_by_user.sql":            "81b993ecbaeb80a3d9d954631f993f0d142dc7e38571426bea9f5109d14126a6",
	"0015_totals_by_commit.sql":               "87c5ad0dba7d0e728ca61774dea5a682e3c863e601a48f8b12c4cbc8610b3e77",
	"0016_refund_marks.sql":                   "49e59e87f9f8a9a40cff521cd8ff37c574157626bc745f44346c05886ee07f31",
	"0017_consumption_rejected.sql":           "db5aa028655b5164428b150b64e0333452003c9f6e9fe6810f9789d658bf2362",
	"0018_transaction_refund_and_upgrade.sql": "941af9edc9023a3ec4f2f89b7c93afd9a4b562576140e55fc58cf3662296d8ba",
	"0019_renewal_infos_by_environment.sql":   "e1172ef32f369d896432a232840befcf8a1f8166a4f23372434582eaf28aa914",
	"0020_tier_changes.sql":                   "2f1c369d8099713b7870c97cc26e3e5b603d2e046a8eef746130dfda37fc5cc1",
	"0021_allowance_kept_from.sql":            "1ca4abafe55471cf77e4e88f7ebbcd1e488a90c8a7a0cce914be0694e5432764",
}

func TestMigrationsAreFrozen(t *testing.T) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	require.NoError(t, err)
	for _, name := range names {
		b, err := fs.ReadFile(migrations, name)
		require.NoError(t, err)
		sum := sha256.Sum256(b)
		want, ok := landed[path.Base(name)]
		require.True(t, ok, "%s is new: add its SHA-256 %s to landed when it lands", name, hex.EncodeToString(sum[:]))
		require.Equal(t, want, hex.EncodeToString(sum[:]), "%s was edited after it landed: write a new migration instead", name)
	}
	require.Len(t, names, len(landed), "a landed migration was removed or renamed")
}
