package yamlfield

import (
	"reflect"
	"testing"
)

func TestByKey(t *testing.T) {
	var s struct {
		A int    `yaml:"a_key,omitempty"`
		B string `yaml:"b"`
		C bool
	}
	ByKey(reflect.ValueOf(&s).Elem(), "a_key").SetInt(3)
	ByKey(reflect.ValueOf(&s).Elem(), "b").SetString("x")
	if s.A != 3 || s.B != "x" {
		t.Errorf("set through ByKey: %+v", s)
	}
	if ByKey(reflect.ValueOf(s), "C").IsValid() || ByKey(reflect.ValueOf(s), "missing").IsValid() {
		t.Error("found a field with no such yaml key")
	}
}
