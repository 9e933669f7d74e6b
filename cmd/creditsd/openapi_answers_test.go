package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// apiSpec is openapi.yaml read as plain maps, enough to check answers
// against it: a real answer that the file does not describe is a doc gap
// the app's and the backend's generated clients would trip on.
type apiSpec struct {
	root  map[string]any
	paths map[string]any
}

func readAPISpec(t *testing.T) *apiSpec {
	t.Helper()
	data, err := os.ReadFile(docsOpenAPI)
	require.NoError(t, err)
	var root map[string]any
	require.NoError(t, yaml.Unmarshal(data, &root))
	paths, ok := root["paths"].(map[string]any)
	require.True(t, ok, "openapi.yaml has no paths")
	return &apiSpec{root: root, paths: paths}
}

// operation finds the operation that serves method and path (its query
// dropped), matching {parameters} to one segment each.
func (s *apiSpec) operation(method, path string) (map[string]any, error) {
	path, _, _ = strings.Cut(path, "?")
	for tmpl, item := range s.paths {
		if !pathMatches(tmpl, path) {
			continue
		}
		op, ok := item.(map[string]any)[strings.ToLower(method)].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("openapi.yaml: %s has no %s", tmpl, method)
		}
		return op, nil
	}
	return nil, fmt.Errorf("openapi.yaml: no path matches %s", path)
}

func pathMatches(tmpl, path string) bool {
	ts, ps := strings.Split(tmpl, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i := range ts {
		if ts[i] != ps[i] && !(strings.HasPrefix(ts[i], "{") && ps[i] != "") {
			return false
		}
	}
	return true
}

// checkAnswer holds one answer to what openapi.yaml says the operation
// answers with that status: the status listed, the content type, the body's
// schema, and for a problem its code among the operation's x-problem-codes.
func (s *apiSpec) checkAnswer(method, path string, status int, contentType, raw string) error {
	op, err := s.operation(method, path)
	if err != nil {
		return err
	}
	code := strconv.Itoa(status)
	resp, ok := op["responses"].(map[string]any)[code]
	if !ok {
		return fmt.Errorf("openapi.yaml: %s %s lists no %d answer", method, path, status)
	}
	r := s.deref(resp)
	content, _ := r["content"].(map[string]any)
	media, ok := content[contentType].(map[string]any)
	if !ok {
		return fmt.Errorf("openapi.yaml: %s %s %d: no %s content (has %v)", method, path, status, contentType, keysOf(content))
	}
	if !strings.HasSuffix(contentType, "json") {
		return nil // /metrics: Prometheus' text, which the file does not model
	}
	body, err := readOrdered([]byte(raw))
	if err != nil {
		return fmt.Errorf("the answer is not JSON: %v", err)
	}
	if err := s.validate(media["schema"], body, "body"); err != nil {
		return fmt.Errorf("%s %s %d: %w", method, path, status, err)
	}
	if contentType == "application/problem+json" {
		codes, _ := op["x-problem-codes"].(map[string]any)[code].([]any)
		got := memberOf(body, "code")
		if !slices.Contains(codes, any(got)) {
			return fmt.Errorf("%s %s %d: code %v is not in x-problem-codes %v", method, path, status, got, codes)
		}
	}
	return nil
}

func memberOf(v any, key string) any {
	o, _ := v.(object)
	for _, m := range o {
		if m.key == key {
			return m.value
		}
	}
	return nil
}

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// deref follows a local $ref.
func (s *apiSpec) deref(v any) map[string]any {
	m, _ := v.(map[string]any)
	ref, ok := m["$ref"].(string)
	if !ok {
		return m
	}
	var cur any = s.root
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		cur = cur.(map[string]any)[part]
	}
	return s.deref(cur)
}

var uuidText = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// validate checks v against the subset of JSON Schema openapi.yaml uses:
// type (one or a list), required, properties (a member it does not list is
// an error: the file must name every member the program writes), items,
// enum, oneOf, and the date-time and uuid formats.
func (s *apiSpec) validate(schema, v any, at string) error {
	sc := s.deref(schema)
	if sc == nil {
		return fmt.Errorf("%s: no schema", at)
	}
	if alts, ok := sc["oneOf"].([]any); ok {
		n := 0
		for _, alt := range alts {
			if s.validate(alt, v, at) == nil {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%s: matches %d of oneOf's %d schemas", at, n, len(alts))
		}
		return nil
	}
	if err := checkType(sc["type"], v, at); err != nil {
		return err
	}
	if enum, ok := sc["enum"].([]any); ok && !slices.Contains(enum, v) {
		return fmt.Errorf("%s: %v is not one of %v", at, v, enum)
	}
	switch x := v.(type) {
	case object:
		return s.validateObject(sc, x, at)
	case []any:
		for i, item := range x {
			if err := s.validate(sc["items"], item, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case string:
		return checkFormat(sc["format"], x, at)
	}
	return nil
}

func (s *apiSpec) validateObject(sc map[string]any, o object, at string) error {
	props, _ := sc["properties"].(map[string]any)
	for _, r := range asList(sc["required"]) {
		if !slices.ContainsFunc(o, func(m member) bool { return m.key == r }) {
			return fmt.Errorf("%s: required member %q missing", at, r)
		}
	}
	for _, m := range o {
		p, ok := props[m.key]
		if !ok {
			return fmt.Errorf("%s: member %q is not in openapi.yaml", at, m.key)
		}
		if err := s.validate(p, m.value, at+"."+m.key); err != nil {
			return err
		}
	}
	return nil
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func checkType(t, v any, at string) error {
	if t == nil {
		return nil
	}
	types := asList(t)
	if s, ok := t.(string); ok {
		types = []any{s}
	}
	for _, want := range types {
		if isType(want.(string), v) {
			return nil
		}
	}
	return fmt.Errorf("%s: %v (%T) is not %v", at, v, v, t)
}

func isType(want string, v any) bool {
	switch want {
	case "null":
		return v == nil
	case "object":
		_, ok := v.(object)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		_, err := strconv.ParseInt(string(n), 10, 64)
		return ok && err == nil
	case "number":
		_, ok := v.(json.Number)
		return ok
	}
	return false
}

func checkFormat(format any, s, at string) error {
	switch format {
	case "date-time":
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return fmt.Errorf("%s: %q is not a date-time", at, s)
		}
	case "uuid":
		if !uuidText.MatchString(s) {
			return fmt.Errorf("%s: %q is not a lower-case uuid", at, s)
		}
	}
	return nil
}

// The checker itself: it must refuse what openapi.yaml does not describe,
// or TestContractAnswers' use of it proves nothing.
func TestAPISpecChecksAnswers(t *testing.T) {
	spec := readAPISpec(t)
	health := `{"status": "ok"}`
	require.NoError(t, spec.checkAnswer("GET", "/healthz", 200, "application/json", health))
	for _, c := range []struct {
		name, method, path string
		status             int
		ctype, body        string
	}{
		{"unknown path", "GET", "/v1/nowhere", 200, "application/json", health},
		{"unlisted status", "GET", "/healthz", 418, "application/json", health},
		{"other content type", "GET", "/healthz", 200, "text/plain", health},
		{"missing member", "GET", "/healthz", 200, "application/json", `{}`},
		{"undocumented member", "GET", "/healthz", 200, "application/json", `{"status": "ok", "extra": 1}`},
		{"wrong type", "GET", "/healthz", 200, "application/json", `{"status": 1}`},
		{"problem code not listed", "GET", "/readyz", 503, "application/problem+json",
			`{"type": "urn:creditsd:problem:x", "title": "Service Unavailable", "status": 503, "detail": "", "code": "x"}`},
		{"integer with a fraction", "GET", "/v1/me/entitlement", 200, "application/json",
			`{"user_id": "a", "app_account_token": "494e9788-ae04-5c6c-b335-be97cbf4dd38", "tier": "free", "spendable": 1.5,
			"allowance": {"limit": 30, "used": 0, "remaining": 30, "resets_at": "2026-11-25T00:00:00Z"},
			"credits": {"balance": 0, "debt": 0, "lots": []}}`},
		{"bad date-time", "GET", "/v1/me/entitlement", 200, "application/json",
			`{"user_id": "a", "app_account_token": "494e9788-ae04-5c6c-b335-be97cbf4dd38", "tier": "free", "spendable": 1,
			"allowance": {"limit": 30, "used": 0, "remaining": 30, "resets_at": "tomorrow"},
			"credits": {"balance": 0, "debt": 0, "lots": []}}`},
		{"enum", "GET", "/v1/me/entitlement", 200, "application/json",
			`{"user_id": "a", "app_account_token": "494e9788-ae04-5c6c-b335-be97cbf4dd38", "tier": "free", "spendable": 1,
			"allowance": {"limit": 30, "used": 0, "remaining": 30, "resets_at": "2026-11-25T00:00:00Z"},
			"credits": {"balance": 0, "debt": 0, "lots": [{"lot_id": "1", "source": "gift", "product_id": null,
			"transaction_id": null, "environment": null, "granted": 1, "remaining": 1,
			"granted_at": "2026-11-25T00:00:00Z", "expires_at": null}]}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			require.Error(t, spec.checkAnswer(c.method, c.path, c.status, c.ctype, c.body))
		})
	}
}
