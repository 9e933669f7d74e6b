package sqlite

import (
	"bytes"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
	"time"
)

// stmtRows is a query's answer on a stmtConn, read as *sql.Rows reads it: Next,
// Scan, Err and Close, closed at its end or on an error. Unlike *sql.Rows it
// is read by the goroutine that holds the connection, so it takes no locks.
type stmtRows struct {
	dr     driver.Rows
	stmt   driverStmt     // closed with the rows: prepared outside the full cache
	vals   []driver.Value // the current row
	err    error          // what ended the rows early
	row    bool           // vals holds a row
	closed bool
}

// Next moves to the next row, and reports whether there is one.
func (r *stmtRows) Next() bool {
	if r.closed {
		return false
	}
	if err := r.dr.Next(r.vals); err != nil {
		if err != io.EOF {
			r.err = err
		}
		r.row = false
		_ = r.Close()
		return false
	}
	r.row = true
	return true
}

// Scan copies the current row's columns into dest, converting as
// (*sql.Rows).Scan does.
func (r *stmtRows) Scan(dest ...any) error {
	switch {
	case r.closed:
		return errors.New("sqlite: Scan on closed rows")
	case !r.row:
		return errors.New("sqlite: Scan without a row (call Next first)")
	case len(dest) != len(r.vals):
		return fmt.Errorf("sqlite: Scan of %d columns into %d destinations", len(r.vals), len(dest))
	}
	for i, v := range r.vals {
		if err := assign(dest[i], v); err != nil {
			return fmt.Errorf("sqlite: Scan of column %d (%s): %w", i, r.dr.Columns()[i], err)
		}
	}
	return nil
}

// Err is the error that ended the rows, if not their end.
func (r *stmtRows) Err() error { return r.err }

// Close ends the rows; it may be called more than once.
func (r *stmtRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.dr.Close()
	if r.stmt != nil {
		err = errors.Join(err, r.stmt.Close())
	}
	return err
}

// stmtRow is the answer of a query for one row, read as *sql.Row reads it.
type stmtRow struct {
	rows *stmtRows
	err  error // the query's own failure
}

// Scan copies the first row into dest, or reports sql.ErrNoRows.
func (r *stmtRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	return r.rows.Close()
}

// namedValues are args as database/sql hands them to the driver: by
// position, each converted by driver.DefaultParameterConverter (Valuers,
// named types and every integer kind to the driver's types).
func namedValues(args []any) ([]driver.NamedValue, error) {
	nv := make([]driver.NamedValue, len(args))
	for i, a := range args {
		v, err := driver.DefaultParameterConverter.ConvertValue(a)
		if err != nil {
			return nil, fmt.Errorf("sqlite: argument %d: %w", i+1, err)
		}
		nv[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return nv, nil
}

// assign stores v in dest. The two cases every query reads take no detour;
// the rest go through database/sql's own conversions (by way of its Null
// types, whose Scan is its convertAssign), so that NULL into a type that
// cannot hold it fails as it does there. Destinations are those *sql.Rows
// takes except sql.RawBytes and pointers to pointers: sql.Scanners, and
// pointers to string, int64, bool, float64, []byte, time.Time and any, to
// types v is assignable or convertible to within its kind, and to any type
// whose kind is a string, an integer or a float.
func assign(dest any, v driver.Value) error {
	switch d := dest.(type) {
	case *string:
		if s, ok := v.(string); ok && d != nil {
			*d = s
			return nil
		}
		return assignVia(d, v)
	case *int64:
		if n, ok := v.(int64); ok && d != nil {
			*d = n
			return nil
		}
		return assignVia(d, v)
	case sql.Scanner:
		return d.Scan(v)
	case *bool:
		return assignVia(d, v)
	case *float64:
		return assignVia(d, v)
	case *[]byte:
		return assignVia(d, v)
	case *time.Time:
		return assignVia(d, v)
	case *any:
		return assignVia(d, v)
	}
	return assignKind(dest, v)
}

// assignVia converts v into *dest by database/sql's rules.
func assignVia[T any](dest *T, v driver.Value) error {
	if dest == nil {
		return fmt.Errorf("Scan into a nil %T", dest)
	}
	var n sql.Null[T]
	if err := n.Scan(v); err != nil {
		return err
	}
	if !n.Valid {
		switch any(dest).(type) {
		case *any, *[]byte: // database/sql reads NULL into these as nil
			*dest = n.V
			return nil
		}
		return fmt.Errorf("converting NULL to %T is unsupported", n.V)
	}
	*dest = n.V
	return nil
}

// assignKind stores v in a pointer to another type, as database/sql's
// convertAssign does by reflection: v itself when the type takes it (a
// named []byte type, copied), or converted within its kind; else a named
// string from text only, a number parsed for the type's size, and NULL
// refused.
func assignKind(dest any, v driver.Value) error {
	rv := reflect.ValueOf(dest)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("unsupported Scan destination %T", dest)
	}
	e := rv.Elem()
	if setDirect(e, v) {
		return nil
	}
	switch e.Kind() {
	case reflect.String: // a string itself was set directly
		if b, ok := v.([]byte); ok {
			e.SetString(string(b))
			return nil
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return setNumber(e, v, e.OverflowInt, e.SetInt)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return setNumber(e, v, e.OverflowUint, e.SetUint)
	case reflect.Float32, reflect.Float64:
		return setNumber(e, v, e.OverflowFloat, e.SetFloat)
	}
	if v == nil {
		return fmt.Errorf("converting NULL to %s is unsupported", e.Type())
	}
	return fmt.Errorf("unsupported Scan, storing %T into %T", v, dest)
}

// setDirect sets e to v when e's type takes v as it is (a named []byte
// type, copied, as the driver's bytes may be reused) or converted within
// v's kind, and reports whether it did.
func setDirect(e reflect.Value, v driver.Value) bool {
	if v == nil {
		return false
	}
	sv := reflect.ValueOf(v)
	switch {
	case sv.Type().AssignableTo(e.Type()):
		if b, ok := v.([]byte); ok {
			sv = reflect.ValueOf(bytes.Clone(b))
		}
		e.Set(sv)
	case sv.Kind() == e.Kind() && sv.Type().ConvertibleTo(e.Type()):
		e.Set(sv.Convert(e.Type()))
	default:
		return false
	}
	return true
}

// setNumber reads v as a T by database/sql's rules and sets e to it,
// refusing a value e's type cannot hold.
func setNumber[T int64 | uint64 | float64](e reflect.Value, v driver.Value, overflows func(T) bool, set func(T)) error {
	var n T
	if err := assignVia(&n, v); err != nil {
		return err
	}
	if overflows(n) {
		return fmt.Errorf("converting %v to %s overflows", n, e.Type())
	}
	set(n)
	return nil
}
