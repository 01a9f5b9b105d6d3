package certify

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

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

var errTimedelta = errors.New(`want Python's timedelta string "[D day[s], ]H:MM:SS[.ffffff]"`)

// ParseTimedelta parses str(datetime.timedelta), as FormatTimedelta writes
// it and as the time column of the reference's logs holds it:
// "0:00:14.172309", "2:03:04", "1 day, 0:00:01.5", "-1 day, 23:59:59.999999".
// Minutes and seconds must have two digits and be at most 59; a fraction
// may have 1 to 9 digits.
func ParseTimedelta(s string) (time.Duration, error) {
	var days int64
	if before, after, ok := strings.Cut(s, ", "); ok {
		n, unit, _ := strings.Cut(before, " ")
		d, err := strconv.ParseInt(n, 10, 64)
		if err != nil || (unit != "day" && unit != "days") {
			return 0, errTimedelta
		}
		days, s = d, after
	}
	clock, frac, hasFrac := strings.Cut(s, ".")
	parts := strings.Split(clock, ":")
	if len(parts) != 3 || len(parts[1]) != 2 || len(parts[2]) != 2 {
		return 0, errTimedelta
	}
	var hms [3]int64
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil || (i > 0 && v > 59) {
			return 0, errTimedelta
		}
		hms[i] = int64(v)
	}
	var nanos int64
	if hasFrac {
		if len(frac) == 0 || len(frac) > 9 {
			return 0, errTimedelta
		}
		v, err := strconv.ParseUint(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
		if err != nil {
			return 0, errTimedelta
		}
		nanos = int64(v)
	}
	seconds := ((days*24+hms[0])*60+hms[1])*60 + hms[2]
	return time.Duration(seconds)*time.Second + time.Duration(nanos), nil
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
