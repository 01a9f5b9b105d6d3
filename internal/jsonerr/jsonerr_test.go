package jsonerr

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	var v struct {
		Sigma float64 `json:"sigma"`
		Seed  uint64  `json:"seed"`
		Inner struct {
			Kind string `json:"kind"`
		} `json:"attack"`
	}
	for in, want := range map[string]string{
		`{"sigma": "0.25"}`:           `"sigma" holds string, want a number`,
		`{"seed": -1}`:                `"seed" holds number -1, want a whole number >= 0`,
		`{"attack": {"kind": 3}}`:     `"attack.kind" holds number, want a string`,
		`{"sigma": 0.25,}`:            "not valid JSON (at byte 16",
		`{"sigma": 0.25, "extra": 1}`: `unknown key "extra"`,
	} {
		dec := json.NewDecoder(bytes.NewReader([]byte(in)))
		dec.DisallowUnknownFields()
		err := Describe(dec.Decode(&v))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "Go struct") {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}
