package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The documentation kept in step with the program: README.md for people,
// openapi.yaml for machines. These tests fail when a route, a config key
// or a problem code is added without being documented.
const (
	docsREADME  = "../../README.md"
	docsOpenAPI = "../../openapi.yaml"
)

// docsRoute is one "METHOD /path" pattern registered in routes.go.
type docsRoute struct{ method, path string }

func (r docsRoute) String() string { return r.method + " " + r.path }

var (
	muxCall    = regexp.MustCompile(`mux\.Handle(?:Func)?\(`)
	muxPattern = regexp.MustCompile(`mux\.Handle(?:Func)?\(\s*"([^"]*)"`)
	methodPath = regexp.MustCompile(`^([A-Z]+) (/\S*)$`)
)

// docsRoutes reads routes.go as text: every mux.Handle / mux.HandleFunc
// must register a literal "METHOD /path" pattern, except the "/" catch-all.
func docsRoutes(t *testing.T) []docsRoute {
	t.Helper()
	src, err := os.ReadFile("routes.go")
	require.NoError(t, err)
	patterns := muxPattern.FindAllStringSubmatch(string(src), -1)
	require.Len(t, patterns, len(muxCall.FindAllString(string(src), -1)),
		"every mux.Handle and mux.HandleFunc in routes.go must take a literal pattern, so that its docs can be checked")
	var routes []docsRoute
	for _, p := range patterns {
		if p[1] == "/" {
			continue // the catch-all that answers 404 not_found
		}
		m := methodPath.FindStringSubmatch(p[1])
		require.NotNil(t, m, "route pattern %q: want \"METHOD /path\"", p[1])
		routes = append(routes, docsRoute{method: m[1], path: m[2]})
	}
	require.NotEmpty(t, routes, "no routes found in routes.go")
	return routes
}

type openAPIDoc struct {
	OpenAPI string                          `yaml:"openapi"`
	Paths   map[string]map[string]yaml.Node `yaml:"paths"`
	Comps   map[string]map[string]any       `yaml:"components"`
}

func docsOpenAPIDoc(t *testing.T) openAPIDoc {
	t.Helper()
	data, err := os.ReadFile(docsOpenAPI)
	require.NoError(t, err)
	var doc openAPIDoc
	require.NoError(t, yaml.Unmarshal(data, &doc), "openapi.yaml is not valid YAML")
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3.1."), "openapi.yaml: want OpenAPI 3.1, got %q", doc.OpenAPI)
	require.NotEmpty(t, doc.Paths)
	require.Contains(t, doc.Comps["securitySchemes"], "bearerJWT")
	return doc
}

func docsReadme(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(docsREADME)
	require.NoError(t, err)
	return string(data)
}

var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Every route is in openapi.yaml and README.md, and openapi.yaml describes
// no route the program does not have.
func TestDocsRoutes(t *testing.T) {
	routes := docsRoutes(t)
	doc := docsOpenAPIDoc(t)
	readme := docsReadme(t)
	for _, r := range routes {
		ops, ok := doc.Paths[r.path]
		require.True(t, ok, "openapi.yaml has no path %s (route %s)", r.path, r)
		_, ok = ops[strings.ToLower(r.method)]
		require.True(t, ok, "openapi.yaml has no %s operation under %s", strings.ToLower(r.method), r.path)
		require.True(t, strings.Contains(readme, r.String()), "README.md does not mention route %s", r)
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !slices.Contains(openAPIMethods, method) {
				continue // parameters, summary, …
			}
			r := docsRoute{method: strings.ToUpper(method), path: path}
			require.Contains(t, routes, r, "openapi.yaml documents %s, which routes.go does not register", r)
		}
	}
}

// Every key of the configuration file is in README.md's reference, written
// as it is there: `apple.bundle_id`, `products[].credits`,
// `pricing.<name>.unit_seconds`.
func TestDocsConfigKeys(t *testing.T) {
	readme := docsReadme(t)
	keys := configKeys(reflect.TypeFor[Config](), "")
	require.Contains(t, keys, "apple.bundle_id", "the walk over Config found too little")
	for _, key := range keys {
		require.True(t, strings.Contains(readme, "`"+key+"`"), "README.md does not document config key %s", key)
	}
}

// configKeys lists the dotted YAML keys of t's leaves: fields holding
// values, not sections. Slices of structs add "[]", maps of structs
// ".<name>"; inline structs add nothing.
func configKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		ft := deref(f.Type)
		if slices.Contains(strings.Split(opts, ","), "inline") {
			keys = append(keys, configKeys(ft, prefix)...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name) // yaml's default
		}
		key := joinKey(prefix, name)
		switch {
		case isSection(ft):
			keys = append(keys, configKeys(ft, key)...)
		case ft.Kind() == reflect.Slice && isSection(deref(ft.Elem())):
			keys = append(keys, configKeys(deref(ft.Elem()), key+"[]")...)
		case ft.Kind() == reflect.Map && isSection(deref(ft.Elem())):
			keys = append(keys, configKeys(deref(ft.Elem()), key+".<name>")...)
		default:
			keys = append(keys, key)
		}
	}
	return keys
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// isSection reports a struct of this package: a group of keys. Structs of
// other packages (time.Time) are values.
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t.PkgPath() == reflect.TypeFor[Config]().PkgPath()
}

// The README's full example is a configuration the program accepts.
func TestDocsExampleConfig(t *testing.T) {
	readme := docsReadme(t)
	_, after, ok := strings.Cut(readme, "<!-- docs_test: example-config -->")
	require.True(t, ok, "README.md lost its example-config marker")
	_, after, ok = strings.Cut(after, "```yaml\n")
	require.True(t, ok)
	example, _, ok := strings.Cut(after, "```")
	require.True(t, ok)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	p8 := filepath.Join(t.TempDir(), "AuthKey.p8")
	require.NoError(t, os.WriteFile(p8, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	env := map[string]string{
		"CREDITSD_HS256_SECRET":      "an-example-secret-of-at-least-32-bytes",
		"CREDITSD_APPSTORE_KEY_FILE": p8,
	}
	getenv := func(name string) string { return env[name] }
	c, err := parseConfig([]byte(example), getenv)
	require.NoError(t, err)
	_, err = c.Resolve()
	require.NoError(t, err)
}

var problemCodePatterns = []*regexp.Regexp{
	regexp.MustCompile(`Errorf\(\s*(?:entitlements\.)?Kind\w+,\s*"([a-z_]+)"`), // domain errors
	regexp.MustCompile(`unauthenticated\(\s*"([a-z_]+)"`),                      // auth.go
	regexp.MustCompile(`newProblem\([^,]+,\s*"([a-z_]+)"`),                     // problem.go
	regexp.MustCompile(`Code:\s*"([a-z_]+)"`),                                  // literal Problems
	regexp.MustCompile(`\bCode\s*=\s*"([a-z_]+)"`),                             // receipts codes
}

// Every problem code the HTTP-facing code can answer is in README.md's
// error table.
func TestDocsProblemCodes(t *testing.T) {
	readme := docsReadme(t)
	codes := map[string]string{} // code → file
	scan := func(path string) {
		src, err := os.ReadFile(path)
		require.NoError(t, err)
		for _, re := range problemCodePatterns {
			for _, m := range re.FindAllStringSubmatch(string(src), -1) {
				codes[m[1]] = path
			}
		}
	}
	for _, root := range []string{".", "../../entitlements", "../../notifications", "../../receipts"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && path != root && (d.Name() == "testdata" || root == "../../receipts") {
				return fs.SkipDir // receipts' subpackages answer no client
			}
			if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
				scan(path)
			}
			return nil
		})
		require.NoError(t, err)
	}
	require.Contains(t, codes, "insufficient_credits", "the scan found too little")
	for code, file := range codes {
		require.True(t, strings.Contains(readme, "`"+code+"`"), "README.md does not document problem code %s (from %s)", code, file)
	}
}
