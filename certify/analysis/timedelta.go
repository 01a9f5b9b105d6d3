package analysis

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

var errTimedelta = errors.New(`want Python's timedelta string "[D day[s], ]H:MM:SS[.ffffff]"`)

// parseTimedelta parses str(datetime.timedelta), the time column of the
// reference's logs: "0:00:14.172309", "2:03:04", "1 day, 0:00:01.5".
func parseTimedelta(s string) (time.Duration, error) {
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
