package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	_ "time/tzdata" // allowance.timezone and jobs.timezone must load in a container without zoneinfo

	"go.yaml.in/yaml/v3"

	"github.com/creditsd/creditsd/entitlements"
	"github.com/creditsd/creditsd/receipts"
)

// Config is the YAML configuration file. Relative paths in it (database,
// root certificates, key and secret files) are resolved against the
// process's working directory, not the file's: that is what an operator
// typing a path at a shell expects, and what the standard library does.
type Config struct {
	Listen         string          `yaml:"listen"`
	MaxConnections int             `yaml:"max_connections"` // served at once; more wait to be accepted
	Database       string          `yaml:"database"`
	Apple          AppleConfig     `yaml:"apple"`
	Products       []ProductConfig `yaml:"products"`
	Allowance      AllowanceConfig `yaml:"allowance"`
	Auth           AuthConfig      `yaml:"auth"`
	Users          UsersConfig     `yaml:"users"`
	Log            LogConfig       `yaml:"log"`
	Jobs           JobsConfig      `yaml:"jobs"`

	AppStoreAPI  AppStoreAPIConfig     `yaml:"app_store_api"` // credentials; off until set
	Pricing      map[string]RateConfig `yaml:"pricing"`       // spend pricing by product (sora, codex)
	RefundPolicy string                `yaml:"refund_policy"` // debt (default) or forgive

	Local    bool   `yaml:"-"` // set by the no-config local profile
	StateDir string `yaml:"-"` // the local profile's directory

	fromEnv []envValue // what ${NAME} references expanded to, kept out of error messages
}

// envValue is a value a ${NAME} reference in the file expanded to.
type envValue struct{ ref, value string }

// minHiddenLen is the shortest expanded value hidden from messages: a
// secret is longer (an HS256 secret has at least 32 bytes), and hiding
// "30s" would garble a message wherever those characters stand.
const minHiddenLen = 8

// AppleConfig says whose App Store data is accepted.
type AppleConfig struct {
	BundleID         string   `yaml:"bundle_id"`
	AppAppleID       int64    `yaml:"app_apple_id"`
	Environments     []string `yaml:"environments"`
	RootCertificates []string `yaml:"root_certificates"` // PEM or DER files; empty = Apple Root CA - G3
}

// ProductConfig is one App Store product: a credit pack or a tier.
type ProductConfig struct {
	ProductID    string `yaml:"product_id"`
	Credits      int64  `yaml:"credits"`
	ExpiresAfter string `yaml:"expires_after"`
	Tier         string `yaml:"tier"`
}

// AllowanceConfig is the daily allowance.
type AllowanceConfig struct {
	Timezone string                  `yaml:"timezone"`
	Tiers    map[string]int64        `yaml:"tiers"`
	Changes  []AllowanceChangeConfig `yaml:"changes"`
}

// AllowanceChangeConfig replaces some tiers' figures from a date
// ("2027-01-01", midnight in allowance.timezone) or an RFC 3339 instant.
type AllowanceChangeConfig struct {
	From  string           `yaml:"from"`
	Tiers map[string]int64 `yaml:"tiers"`
}

// AuthConfig holds the keys bearer tokens are verified with: an HS256
// secret (inline or in a file), or public keys (PEM files and/or a JWKS).
type AuthConfig struct {
	HS256Secret     string   `yaml:"hs256_secret"`
	HS256SecretFile string   `yaml:"hs256_secret_file"`
	PublicKeys      []string `yaml:"public_keys"` // PEM files: ECDSA P-256 (ES256) or RSA (RS256)
	JWKSFile        string   `yaml:"jwks_file"`
	Leeway          string   `yaml:"leeway"`   // clock skew allowed on nbf and iat (never on exp)
	Issuer          string   `yaml:"issuer"`   // if set, the iss every token must carry
	Audience        string   `yaml:"audience"` // if set, an aud every token must carry
}

// UsersConfig sets how app_account_token is derived from a user id.
type UsersConfig struct {
	TokenNamespace string `yaml:"token_namespace"`
}

// LogConfig picks the log level (debug, info, warn, error) and format
// (text, json).
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// DefaultConfig is what every key means when the file leaves it out.
func DefaultConfig() Config {
	return Config{
		Listen:         "127.0.0.1:8080",
		MaxConnections: 1024,
		Database:       "./creditsd.db",
		Apple:          AppleConfig{Environments: []string{receipts.Production, receipts.Sandbox}},
		Allowance: AllowanceConfig{
			Timezone: "UTC",
			Tiers:    map[string]int64{entitlements.TierFree: 30, entitlements.TierPro: 100},
		},
		// Skew on nbf and iat only: the contract refuses an expired token
		// at once, but an issuer whose clock runs ahead mints tokens that
		// look issued in the future.
		Auth:  AuthConfig{Leeway: "30s"},
		Users: UsersConfig{TokenNamespace: entitlements.DefaultTokenNamespace},
		Log:   LogConfig{Level: "info", Format: "json"},
	}
}

// ConfigError is a configuration mistake, named by its key
// (e.g. "apple.root_certificates[1]").
type ConfigError struct {
	File string // set by nameFile
	Line int    // set for errors found while decoding YAML
	Key  string
	Err  error

	hidden []envValue // set by hideEnv: values the message names by their reference
}

func (e *ConfigError) Error() string {
	msg := e.message()
	for _, h := range e.hidden {
		// As %q quotes it (a quote, a backslash or a newline in the value
		// are escaped there), and as written.
		quoted := strconv.Quote(h.value)
		msg = hideIn(msg, quoted[1:len(quoted)-1], h.ref)
		msg = hideIn(msg, h.value, h.ref)
	}
	return msg
}

// hideIn replaces in msg every run of minHiddenLen or more characters of
// value with ref, the longest first: a check may quote only part of what
// it read (the number before an expiry's unit, one field of a schedule).
func hideIn(msg, value, ref string) string {
	for n := len(value); n >= minHiddenLen; n-- {
		for i := 0; i+n <= len(value); i++ {
			if part := value[i : i+n]; strings.Contains(msg, part) {
				msg = strings.ReplaceAll(msg, part, ref)
			}
		}
	}
	return msg
}

func (e *ConfigError) message() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.File != "" {
		b.WriteString(e.File + ": ")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

func keyErrorf(key, format string, args ...any) error {
	return &ConfigError{Key: key, Err: fmt.Errorf(format, args...)}
}

// LoadConfig reads and parses the file at path; it does not validate.
func LoadConfig(path string, getenv func(string) string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, &ConfigError{File: path, Err: withoutPath(err)}
	}
	c, err := parseConfig(data, getenv)
	nameFile(err, path)
	return c, err
}

// eachConfigError calls fn on every ConfigError in err. Decoding and
// Resolve return ConfigErrors and errors.Join of them, whose messages are
// made when read; a message fmt.Errorf has made is not reached, since it
// would not change.
func eachConfigError(err error, fn func(*ConfigError)) {
	switch e := err.(type) {
	case *ConfigError:
		fn(e)
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			eachConfigError(inner, fn)
		}
	}
}

// nameFile sets File on every ConfigError in err, so that a mistake found
// while decoding and one found by Resolve both say which file holds it.
func nameFile(err error, path string) { eachConfigError(err, func(e *ConfigError) { e.File = path }) }

// hideEnv makes every ConfigError in err name the values that ${NAME}
// references expanded to by their reference: a secret set in the
// environment (an HS256 secret, a key file's text given where its path
// belongs) must not reach a log through a message that quotes a value.
func hideEnv(err error, values []envValue) {
	eachConfigError(err, func(e *ConfigError) { e.hidden = values })
}

// readSecretFile reads the file a secret's key names. A value of several
// lines is the secret itself given where its path belongs (a key's PEM
// pasted into the file, or into the variable ${NAME} names): it is refused
// without being repeated, as "open -----BEGIN PRIVATE KEY-----…" would.
func readSecretFile(key, path string) ([]byte, error) {
	if strings.ContainsAny(path, "\r\n") {
		return nil, keyErrorf(key, "holds several lines, not a path: give the file that holds the secret, not its text")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, keyErrorf(key, "cannot read it: %w", err)
	}
	return data, nil
}

// withoutPath drops the path an *fs.PathError repeats ("open FILE: …",
// "read FILE: …"): a ConfigError names its file once, in front, as every
// config error does.
func withoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parseConfig decodes one YAML document over DefaultConfig. Unknown keys
// are errors. ${NAME} in a string value is replaced by getenv(NAME), so
// secrets can stay out of the file; an unset or empty variable is an error
// rather than a silently empty secret. Only the ${NAME} form is expanded,
// so a literal "$" needs no escaping.
func parseConfig(data []byte, getenv func(string) string) (Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Config{}, &ConfigError{Err: err}
	}
	if len(doc.Content) == 0 || doc.Content[0].Tag == "!!null" {
		return Config{}, &ConfigError{Err: errors.New("the document is empty")}
	}
	c := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return Config{}, decodeError(err, keyLines(doc.Content[0], "", map[int][]keyNode{}))
	}
	if err := dec.Decode(new(yaml.Node)); err != io.EOF {
		return Config{}, &ConfigError{Err: errors.New("want one YAML document, found more")}
	}
	if err := refuseDecimals(doc.Content[0], reflect.TypeOf(c), ""); err != nil {
		return Config{}, err
	}
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	err := expand(reflect.ValueOf(&c).Elem(), "", getenv, &c.fromEnv)
	hideEnv(err, c.fromEnv)
	return c, err
}

// refuseDecimals finds a decimal number given for a whole-number key (a
// tier's allowance, a pack's credits): yaml decodes 30.9 into an int as 30,
// without a word. n is the document's node for a value of type t at path.
func refuseDecimals(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for n.Kind == yaml.AliasNode { // *name: the anchored value, where it is used
		n = n.Alias
	}
	switch {
	case n.Kind == yaml.MappingNode && (t.Kind() == reflect.Struct || t.Kind() == reflect.Map):
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Tag == "!!merge" { // <<: its mapping's keys are this one's
				if err := refuseDecimalsMerged(n.Content[i+1], t, path); err != nil {
					return err
				}
				continue
			}
			ft, ok := t, true
			if t.Kind() == reflect.Struct {
				ft, ok = yamlField(t, n.Content[i].Value)
			} else {
				ft = t.Elem()
			}
			if !ok {
				continue // an unknown key: the decoder has refused it already
			}
			if err := refuseDecimals(n.Content[i+1], ft, joinKey(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
	case n.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for i, item := range n.Content {
			if err := refuseDecimals(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case n.Kind == yaml.ScalarNode && n.Tag == "!!float" && reflect.Int <= t.Kind() && t.Kind() <= reflect.Uint64:
		return keyErrorf(path, "%s: want a whole number", n.Value)
	}
	return nil
}

// refuseDecimalsMerged checks what a merge key (<<) brings into a mapping
// of type t: a mapping, or a list of them, perhaps through aliases.
func refuseDecimalsMerged(n *yaml.Node, t reflect.Type, path string) error {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.SequenceNode {
		return refuseDecimals(n, t, path)
	}
	for _, m := range n.Content {
		if err := refuseDecimals(m, t, path); err != nil {
			return err
		}
	}
	return nil
}

// yamlField is the type of t's field that yaml names key, looking into
// inline fields too.
func yamlField(t reflect.Type, key string) (reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" {
			if ft, ok := yamlField(f.Type, key); ok {
				return ft, true
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == key {
			return f.Type, true
		}
	}
	return nil, false
}

// keyNode is a key or a value the document holds on a line, with the
// dotted path that names it: yaml's "line 4: cannot unmarshal…" names a
// line, and one line can hold several (a flow mapping, a list item).
type keyNode struct {
	path  string
	tag   string // a value's resolved tag (!!seq, !!str, …); "" for the key itself
	value string // a scalar value's text
}

// keyLines maps each line to the keys and values on it, in document order.
func keyLines(n *yaml.Node, path string, lines map[int][]keyNode) map[int][]keyNode {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinKey(path, k.Value)
			lines[k.Line] = append(lines[k.Line], keyNode{path: p})
			lines[v.Line] = append(lines[v.Line], keyNode{path: p, tag: v.ShortTag(), value: v.Value})
			keyLines(v, p, lines)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			lines[item.Line] = append(lines[item.Line], keyNode{path: p, tag: item.ShortTag(), value: item.Value})
			keyLines(item, p, lines)
		}
	}
	return lines
}

// keyAt names what an error on line means: the last key or value there
// whose tag is tag ("" for a key) and whose text yaml's message quoted
// (shortened past 10 bytes to its first 7 and "..."; "" when it quoted
// none), else the last of that tag.
func keyAt(lines map[int][]keyNode, line int, tag, quoted string) string {
	nodes, found := lines[line], ""
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		if n.tag != tag {
			continue
		}
		prefix, cut := strings.CutSuffix(quoted, "...")
		if quoted == "" || n.value == quoted || cut && len(n.value) > 10 && strings.HasPrefix(n.value, prefix) {
			return n.path
		}
		if found == "" {
			found = n.path
		}
	}
	return found
}

var (
	// (?s): a value may hold newlines, and backticks, which yaml quotes
	// as they are; matched short, the value was kept in the message.
	yamlLine      = regexp.MustCompile(`(?s)^line (\d+): (.*)$`)
	yamlUnknown   = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	yamlWrongType = regexp.MustCompile("(?s)^cannot unmarshal !!(\\w+) (?:`(.*)` )?into (\\S+)$")
	yamlQuoted    = regexp.MustCompile("(?s)`.*`")
)

// decodeError turns yaml's type errors into ConfigErrors naming the key.
// It drops the offending value: it could be a misplaced secret.
func decodeError(err error, lines map[int][]keyNode) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return &ConfigError{Err: err}
	}
	var errs []error
	for _, msg := range te.Errors {
		ce := &ConfigError{Err: errors.New(msg)}
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			ce.Line, _ = strconv.Atoi(m[1])
			ce.Key, msg = keyAt(lines, ce.Line, "", ""), m[2]
			if u := yamlUnknown.FindStringSubmatch(msg); u != nil {
				msg = "unknown key " + u[1]
			} else if w := yamlWrongType.FindStringSubmatch(msg); w != nil {
				if k := keyAt(lines, ce.Line, "!!"+w[1], w[2]); k != "" {
					ce.Key = k // the value that is of the wrong type, not the line's last key
				}
				msg = fmt.Sprintf("want %s, got %s", yamlWant(w[3]), yamlGot(w[1]))
			} else {
				msg = yamlQuoted.ReplaceAllLiteralString(msg, "`…`") // a message of a shape not met before
			}
			ce.Err = errors.New(msg)
		}
		errs = append(errs, ce)
	}
	return errors.Join(errs...)
}

// yamlWant names a Go type of Config as the YAML it wants, not as Go
// spells it (main.ProductConfig means nothing in a config file).
func yamlWant(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "main."):
		return "a mapping of keys"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	}
	return goType
}

// yamlGot names the YAML tag of what the file gave.
func yamlGot(tag string) string {
	switch tag {
	case "str":
		return "a string"
	case "seq":
		return "a list"
	case "map":
		return "a mapping"
	case "int", "float":
		return "a number"
	case "bool":
		return "true or false"
	}
	return "!!" + tag
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${NAME} in every string field of v, naming the key of
// the first reference it cannot resolve, and notes in seen each value long
// enough to hide from messages.
func expand(v reflect.Value, key string, getenv func(string) string, seen *[]envValue) error {
	switch v.Kind() {
	case reflect.String:
		var missing string
		s := envRef.ReplaceAllStringFunc(v.String(), func(ref string) string {
			val := getenv(ref[2 : len(ref)-1])
			if val == "" && missing == "" {
				missing = ref
			}
			if len(val) >= minHiddenLen || strings.ContainsRune(val, '\n') {
				*seen = append(*seen, envValue{ref: ref, value: val})
			}
			return val
		})
		if missing != "" {
			return keyErrorf(key, "%s is not set in the environment", missing)
		}
		v.SetString(s)
	case reflect.Slice:
		for i := range v.Len() {
			if err := expand(v.Index(i), fmt.Sprintf("%s[%d]", key, i), getenv, seen); err != nil {
				return err
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			fieldKey := key // an inlined section's keys are its parent's
			if opts != "inline" {
				if name == "" {
					name = strings.ToLower(f.Name) // as yamlField reads it
				}
				fieldKey = joinKey(key, name)
			}
			if err := expand(v.Field(i), fieldKey, getenv, seen); err != nil {
				return err
			}
		}
	}
	return nil
}

func joinKey(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}
