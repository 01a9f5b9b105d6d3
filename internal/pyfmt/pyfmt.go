// Package pyfmt formats floats exactly as Python's str.format and repr do, so
// that tables and logs written in Go compare byte for byte with the reference
// Python code's output.
package pyfmt

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// G formats v as Python's '{:.<prec>}' (a precision and no type): like 'g'
// with prec significant digits, except that fixed-point output always keeps
// at least one digit after the point and scientific notation starts at
// exponent prec-1 instead of prec. Examples: G(2, 3) = "2.0",
// G(0.377, 3) = "0.377", G(100, 3) = "1e+02".
func G(v float64, prec int) string {
	if s, ok := special(v); ok {
		return s
	}
	if prec < 1 {
		prec = 1 // Python treats a precision of 0 as 1
	}
	digits, exp := scientific(strconv.FormatFloat(v, 'e', prec-1, 64))
	if exp >= -4 && exp < prec-1 {
		return withPoint(trimZeros(strconv.FormatFloat(v, 'f', prec-1-exp, 64)))
	}
	return trimZeros(digits) + exponent(exp)
}

// F formats v as Python's '{:.<prec>f}'.
func F(v float64, prec int) string {
	if s, ok := special(v); ok {
		return s
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// Repr formats v as Python's repr(float) (also str and '{}'): the shortest
// string that round-trips, in fixed point for exponents -4 to 15 with at
// least one digit after the point, otherwise in scientific notation.
func Repr(v float64) string {
	if s, ok := special(v); ok {
		return s
	}
	digits, exp := scientific(strconv.FormatFloat(v, 'e', -1, 64))
	if exp >= -4 && exp < 16 {
		return withPoint(strconv.FormatFloat(v, 'f', -1, 64))
	}
	return digits + exponent(exp)
}

func special(v float64) (string, bool) {
	switch {
	case math.IsNaN(v):
		return "nan", true
	case math.IsInf(v, 1):
		return "inf", true
	case math.IsInf(v, -1):
		return "-inf", true
	}
	return "", false
}

// scientific splits Go's 'e' output ("-1.23e+02") into mantissa and exponent.
func scientific(s string) (mantissa string, exp int) {
	i := strings.IndexByte(s, 'e')
	exp, _ = strconv.Atoi(s[i+1:]) // Go always writes a valid exponent here
	return s[:i], exp
}

// exponent writes exp as Python does: a sign and at least two digits.
func exponent(exp int) string {
	sign := "+"
	if exp < 0 {
		sign, exp = "-", -exp
	}
	d := strconv.Itoa(exp)
	if len(d) < 2 {
		d = "0" + d
	}
	return "e" + sign + d
}

// trimZeros drops trailing zeros after a decimal point, and the point itself
// if nothing is left after it.
func trimZeros(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

func withPoint(s string) string {
	if strings.ContainsAny(s, ".e") {
		return s
	}
	return s + ".0"
}

// decimal is a number as Python's repr and format write it, and as the
// reference's readers take it: no hex floats, no digit separators.
var decimal = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)

// ParseFloat reads a number written in decimal notation (or inf, nan),
// refusing what strconv.ParseFloat would also take but Python's writers
// never produce and the reference's readers reject ("0x1p-1", "0.6_0").
// Out-of-range values are errors too.
func ParseFloat(s string) (float64, error) {
	switch strings.ToLower(strings.TrimLeft(s, "+-")) {
	case "inf", "infinity", "nan":
	default:
		if !decimal.MatchString(s) {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	return strconv.ParseFloat(s, 64)
}
