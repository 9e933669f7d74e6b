package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// appleVectors holds real documents Apple signed in its Sandbox (shared/,
// beside the repository), listed in MANIFEST.tsv.
const appleVectors = "../../../shared/apple-vectors"

// vector is one row of MANIFEST.tsv and its JWS.
type vector struct {
	file, kind, typ, bundleID, productID, transactionID string
	jws                                                 string
}

func readVectors(t *testing.T) []vector {
	t.Helper()
	f, err := os.Open(filepath.Join(appleVectors, "MANIFEST.tsv"))
	require.NoError(t, err, "the Apple vectors are beside the repository")
	defer f.Close()
	var out []vector
	s := bufio.NewScanner(f)
	for s.Scan() {
		c := strings.Split(s.Text(), "\t")
		if len(c) < 8 || c[0] == "file" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(appleVectors, c[0]))
		require.NoError(t, err)
		out = append(out, vector{file: c[0], kind: c[1], typ: c[2], bundleID: c[3], productID: c[6], transactionID: c[7],
			jws: strings.TrimSpace(string(b))})
	}
	require.NoError(t, s.Err())
	require.NotEmpty(t, out)
	return out
}

// appleWorld starts creditsd as a Sandbox deployment of bundleID would
// run: Apple's own root (the built-in Apple Root CA - G3, no
// root_certificates), the Sandbox environment, and products as given.
func appleWorld(t *testing.T, bundleID, products string) *world {
	t.Helper()
	dir := t.TempDir()
	config := filepath.Join(dir, "creditsd.yaml")
	require.NoError(t, os.WriteFile(config, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
database: %s
apple:
  bundle_id: %s
  environments: [Sandbox]
products:
%s
auth:
  hs256_secret: %s
`, filepath.Join(dir, "creditsd.db"), bundleID, products, e2eSecret)), 0o600))
	w := &world{t: t, dir: dir, tokens: mustTokens(t), config: config}
	w.proc = start(t, "serve", "--config", config)
	return w
}

// Apple's real notifications, as Apple would post them to a deployment of
// their app: every one verifies against Apple's root and is recorded (200),
// once (a repeat is a duplicate), with the outcome its transaction has; a
// deployment of another app refuses them, and so does any deployment once
// a byte of Apple's signature is changed.
func TestRealAppleNotificationsEndToEnd(t *testing.T) {
	vectors := readVectors(t)
	session := appleWorld(t, "com.loki-project.loki-messenger", `  - product_id: com.getsession.org.pro_sub
    tier: pro
  - product_id: com.getsession.org.pro_sub_3_months
    tier: pro`)
	cynet := appleWorld(t, "com.cynet.xingqi", `  - product_id: cynet.coci.1usd
    credits: 10
    expires_after: never`)
	post := func(w *world, jws string) answer {
		return w.do("POST", "/v1/appstore/notifications", "", map[string]string{"signedPayload": jws})
	}

	seen := 0
	for _, v := range vectors {
		if v.kind != "notification" {
			continue
		}
		seen++
		w, other := session, cynet
		if v.bundleID == "com.cynet.xingqi" {
			w, other = cynet, session
		}
		t.Run(v.file, func(t *testing.T) {
			a := post(w, v.jws)
			require.Equal(t, http.StatusOK, a.status, a.raw)
			require.Equal(t, false, a.body["duplicate"])
			want := "subscription"
			switch {
			case v.typ == "TEST":
				want = "recorded"
			case v.productID == "cynet.coci.1usd":
				want = "pending_user" // no appAccountToken: it waits for the app's claim
			}
			require.Equal(t, want, a.body["outcome"], a.raw)

			again := post(w, v.jws)
			require.Equal(t, http.StatusOK, again.status, again.raw)
			require.Equal(t, true, again.body["duplicate"])
			require.Equal(t, a.body["outcome"], again.body["outcome"])

			refused := post(other, v.jws)
			require.Equal(t, http.StatusBadRequest, refused.status, refused.raw)
			require.Equal(t, "invalid_app_identifier", refused.code())

			require.Equal(t, "invalid_signature", post(w, forge(v.jws)).code())
		})
	}
	require.Equal(t, 16, seen, "MANIFEST.tsv's notifications")

	// The consumable Apple announced waits for the app's claim; the signed
	// transaction the app holds claims it, once.
	var tx vector
	for _, v := range vectors {
		if v.kind == "transaction" && v.productID == "cynet.coci.1usd" {
			tx = v
		}
	}
	require.NotEmpty(t, tx.jws)
	claim := func(user string) answer {
		return cynet.do("POST", "/v1/me/transactions", cynet.token(user, "", time.Minute),
			map[string]string{"signed_transaction": tx.jws})
	}
	a := claim("alice")
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	require.Equal(t, float64(10), a.body["credits"].(map[string]any)["balance"])
	require.Equal(t, http.StatusOK, claim("alice").status, "a repeat grants nothing more")
	require.Equal(t, "transaction_claimed", claim("bob").code(), "and nobody else may have it")
	require.Equal(t, "invalid_app_identifier", session.do("POST", "/v1/me/transactions", session.token("alice", "", time.Minute),
		map[string]string{"signed_transaction": tx.jws}).code())
}

// forge changes a character in the middle of jws's signature, so that it
// still decodes (the last character's spare bits stay zero) and no longer
// verifies.
func forge(jws string) string {
	b := []byte(jws)
	i := strings.LastIndexByte(jws, '.') + 20
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
