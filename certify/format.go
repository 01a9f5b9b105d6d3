package certify

import (
	"fmt"
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
