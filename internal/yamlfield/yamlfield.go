// Package yamlfield finds a struct's field by its yaml key, for settings
// that are named in files and grids by those keys.
package yamlfield

import (
	"reflect"
	"strings"
)

// ByKey returns the field of struct value v whose yaml key is key, or the
// zero Value. The field is settable when v is.
func ByKey(v reflect.Value, key string) reflect.Value {
	for i := range v.NumField() {
		if tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ","); tag == key {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}
