package entitlements

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// checkNames refuses what encoding/json lets through into v although the
// API's bodies are exact: a member named in another case ("Credits" fills
// credits) and a member named twice ({"credits": 1, "credits": 100}, where
// the last would win). body has decoded into v already, so it is valid
// JSON and every name is one of v's, but for its case.
func checkNames(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // 1e400 is a number v may read exactly; a float64 would fail on it
	return walkNames(dec, namesOf(reflect.TypeOf(v)))
}

// walkNames reads one value from dec, checking the names of every object
// in it.
func walkNames(dec *json.Decoder, names map[string]bool) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			name, err := dec.Token()
			if err != nil {
				return err
			}
			if err := checkName(name.(string), names, seen); err != nil {
				return err
			}
			if err := walkNames(dec, names); err != nil {
				return err
			}
		}
	case json.Delim('['):
		for dec.More() {
			if err := walkNames(dec, names); err != nil {
				return err
			}
		}
	default:
		return nil // a string, number, bool or null
	}
	_, err = dec.Token() // the closing '}' or ']'
	return err
}

func checkName(name string, names, seen map[string]bool) error {
	if !names[name] {
		return fmt.Errorf("json: unknown field %q (names are case-sensitive)", name)
	}
	if seen[name] {
		return fmt.Errorf("json: field %q appears twice", name)
	}
	seen[name] = true
	return nil
}

// fieldNames caches namesOf by type: a body's type is one of a few.
var fieldNames sync.Map // reflect.Type → map[string]bool

// namesOf is every JSON member name t's fields (and their fields, and so
// on) are decoded from.
func namesOf(t reflect.Type) map[string]bool {
	if names, ok := fieldNames.Load(t); ok {
		return names.(map[string]bool)
	}
	names := map[string]bool{}
	addNames(t, names, map[reflect.Type]bool{})
	fieldNames.Store(t, names)
	return names
}

func addNames(t reflect.Type, names map[string]bool, visited map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || visited[t] {
		return
	}
	visited[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
			continue
		case f.Anonymous && name == "":
			addNames(f.Type, names, visited) // an embedded struct's fields are the outer's
			continue
		case name == "":
			name = f.Name
		}
		if f.IsExported() {
			names[name] = true
			addNames(f.Type, names, visited)
		}
	}
}
