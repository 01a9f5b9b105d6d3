package certify

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// FormatGeneral formats v as Python's format(v, '.P') with P = precision:
// the log's '{:.3}' for radii and the '{:.3}' of sigma in output paths. It is
// Python's general ('g') format with two differences that Python makes when
// the type letter is left out: the switch to exponent notation comes one
// digit earlier, at a decimal exponent >= P-1 (so 100.0 gives "1e+02" at
// P = 3), and fixed notation keeps at least one digit after the point
// ("2.0", "0.0"). Trailing zeros are dropped; exponent notation below 1e-4;
// "inf", "-inf" and "nan" as Python spells them. A precision below 1 counts
// as 1, as in Python.
func FormatGeneral(v float64, precision int) string {
	switch {
	case math.IsNaN(v):
		return "nan"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	precision = max(precision, 1)
	// The exponent after rounding to precision significant digits decides
	// the notation, as in Python's float formatting.
	sci := strconv.FormatFloat(v, 'e', precision-1, 64)
	mant, expStr, _ := strings.Cut(sci, "e")
	exp, err := strconv.Atoi(expStr)
	if err != nil {
		// strconv always writes a decimal exponent after 'e'.
		return sci
	}
	if exp < -4 || exp >= precision-1 {
		return trimFraction(mant) + "e" + expStr
	}
	fixed := trimFraction(strconv.FormatFloat(v, 'f', precision-1-exp, 64))
	if !strings.Contains(fixed, ".") {
		fixed += ".0"
	}
	return fixed
}

// trimFraction drops trailing zeros after a decimal point, and the point if
// nothing follows it.
func trimFraction(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// FormatTimedelta formats d as Python's str(datetime.timedelta(...)):
// "H:MM:SS", then ".ffffff" unless the microseconds are 0, preceded by
// "N day, " or "N days, " from one day on. Like timedelta, it rounds to whole
// microseconds, half to even, and keeps the days signed and the rest
// positive: -1 microsecond is "-1 day, 23:59:59.999999".
func FormatTimedelta(d time.Duration) string {
	us := roundHalfEven(int64(d), int64(time.Microsecond))
	const usPerDay = 86_400 * 1_000_000
	days := floorDiv(us, usPerDay)
	rest := us - days*usPerDay
	secs, micros := rest/1_000_000, rest%1_000_000
	s := fmt.Sprintf("%d:%02d:%02d", secs/3600, secs/60%60, secs%60)
	if micros != 0 {
		s += fmt.Sprintf(".%06d", micros)
	}
	if days != 0 {
		plural := "s"
		if days == 1 || days == -1 {
			plural = ""
		}
		s = fmt.Sprintf("%d day%s, %s", days, plural, s)
	}
	return s
}

// roundHalfEven returns n/unit rounded to the nearest integer, ties to even.
func roundHalfEven(n, unit int64) int64 {
	q := floorDiv(n, unit)
	r := n - q*unit // 0 <= r < unit
	if 2*r > unit || 2*r == unit && q%2 != 0 {
		q++
	}
	return q
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
