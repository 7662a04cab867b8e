package confparse

// Value syntax of nginx's configuration (numbers, sizes, offsets, times),
// re-implemented from nginx's documented behaviour (ngx_parse.c, ngx_string.c).

import (
	"math"
	"strings"
	"time"

	"mailgate/mail/ngx"
)

const maxInt = math.MaxInt64

// parseSize is ngx_parse_size: digits with an optional k/K or m/M suffix.
func parseSize(s string) (int64, bool) {
	return parseScaled(s, false)
}

// parseOffset is ngx_parse_offset: like parseSize plus g/G.
func parseOffset(s string) (int64, bool) {
	return parseScaled(s, true)
}

func parseScaled(s string, giga bool) (int64, bool) {
	if s == "" {
		return 0, false
	}
	scale := int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		scale = 1024
		s = s[:len(s)-1]
	case 'm', 'M':
		scale = 1024 * 1024
		s = s[:len(s)-1]
	case 'g', 'G':
		if giga {
			scale = 1024 * 1024 * 1024
			s = s[:len(s)-1]
		}
	}
	v, ok := ngx.Atoi(s)
	if !ok || v > maxInt/scale {
		return 0, false
	}
	return v * scale, true
}

// Steps of a time value: units must come from most to least significant,
// each at most once.
const (
	stStart = iota
	stYear
	stMonth
	stWeek
	stDay
	stHour
	stMin
	stSec
	stMsec
	stLast // a bare number followed by a space
)

// timeUnits are the unit letters of nginx's time syntax with their step and
// length in seconds ("ms" is handled apart).
var timeUnits = map[byte]struct {
	step    int
	seconds int64
}{
	'y': {stYear, 365 * 24 * 60 * 60},
	'M': {stMonth, 30 * 24 * 60 * 60},
	'w': {stWeek, 7 * 24 * 60 * 60},
	'd': {stDay, 24 * 60 * 60},
	'h': {stHour, 60 * 60},
	'm': {stMin, 60},
	's': {stSec, 1},
}

// parseTime is ngx_parse_time. With isSec it returns seconds and allows the
// y and M units but not ms; otherwise it returns milliseconds and allows ms
// but not y or M. A bare number is seconds.
func parseTime(s string, isSec bool) (int64, bool) {
	step := stStart
	if !isSec {
		step = stMonth // y and M are refused in milliseconds
	}
	var value, total int64
	valid := false
	cutoff, cutlim := int64(maxInt/10), int64(maxInt%10)
	for p := 0; p < len(s); p++ {
		ch := s[p]
		if ch >= '0' && ch <= '9' {
			d := int64(ch - '0')
			if value >= cutoff && (value > cutoff || d > cutlim) {
				return 0, false
			}
			value = value*10 + d
			valid = true
			continue
		}
		// unitStep is the step this unit needs to be past; scale turns
		// value into the result's unit.
		var unitStep, next int
		var scale int64
		switch u, ok := timeUnits[ch]; {
		case ch == 'm' && p+1 < len(s) && s[p+1] == 's':
			if isSec {
				return 0, false
			}
			p++
			unitStep, next, scale = stMsec, stMsec, 1
		case ch == ' ':
			// Seconds, after which only spaces may follow.
			unitStep, next, scale = stSec, stLast, 1
		case ok:
			unitStep, next, scale = u.step, u.step, u.seconds
		default:
			return 0, false
		}
		if step >= unitStep {
			return 0, false
		}
		step = next
		if step != stMsec && !isSec {
			scale *= 1000
		}
		if value > maxInt/scale {
			return 0, false
		}
		value *= scale
		if total > maxInt-value {
			return 0, false
		}
		total += value
		value = 0
		for p+1 < len(s) && s[p+1] == ' ' {
			p++
		}
	}
	if !valid {
		return 0, false
	}
	if !isSec {
		if value > maxInt/1000 {
			return 0, false
		}
		value *= 1000
	}
	if total > maxInt-value {
		return 0, false
	}
	return total + value, true
}

// msDuration converts milliseconds to a Duration, saturating.
func msDuration(ms int64) time.Duration {
	if ms > int64(math.MaxInt64/time.Millisecond) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(ms) * time.Millisecond
}

func secDuration(s int64) time.Duration {
	if s > int64(math.MaxInt64/time.Second) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(s) * time.Second
}

// flagValue is ngx_conf_set_flag_slot's parsing: on/off, case-insensitive.
func flagValue(name, v string) (bool, *Diag) {
	// nginx compares the value as a C string: "on" followed by a NUL
	// byte and anything is "on".
	v = cstr(v)
	switch {
	case strings.EqualFold(v, "on"):
		return true, nil
	case strings.EqualFold(v, "off"):
		return false, nil
	}
	return false, &Diag{Sev: SevEmerg, Msg: `invalid value "` + v + `" in "` + name + `" directive, it must be "on" or "off"`}
}
