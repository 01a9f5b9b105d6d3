// Package jsonerr says what is wrong with a hand-edited JSON record in the
// file's terms, not Go's ("json: cannot unmarshal string into Go struct
// field RunParams.sigma of type float64").
package jsonerr

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// kinds are the JSON kinds Go's types want.
var kinds = map[string]string{
	"float64": "a number", "float32": "a number", "int": "a whole number", "int64": "a whole number",
	"uint64": "a whole number >= 0", "string": "a string", "bool": "true or false",
}

// Describe rewrites a decoding error of encoding/json; other errors pass.
func Describe(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		want := kinds[typeErr.Type.String()]
		if want == "" {
			want = "another kind of value"
		}
		return fmt.Errorf("%q holds %s, want %s", typeErr.Field, typeErr.Value, want)
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("not valid JSON (at byte %d: %s)", syntaxErr.Offset, strings.TrimPrefix(syntaxErr.Error(), "json: "))
	case err != nil && strings.HasPrefix(err.Error(), "json: unknown field "):
		return fmt.Errorf("unknown key %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return err
}
