package verify

import "time"

// Hand-written checks for the hot paths (a bundle checks one ID and one time per
// entry: a regexp each would dominate a million-entry bundle).

// isULID reports whether s is a 26-character Crockford base32 ULID whose first
// character keeps it within 128 bits.
func isULID[S ~string | ~[]byte](s S) bool {
	if len(s) != 26 || s[0] > '7' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'A' && c <= 'H', c == 'J', c == 'K', c == 'M', c == 'N', c >= 'P' && c <= 'T', c >= 'V' && c <= 'Z':
		default:
			return false
		}
	}
	return true
}

// isID reports whether s is prefix + ULID (prefix like "lic_").
func isID[S ~string | ~[]byte](prefix string, s S) bool {
	return len(s) == len(prefix)+26 && string(s[:len(prefix)]) == prefix && isULID(s[len(prefix):])
}

// parseTimeFast parses YYYY-MM-DDTHH:MM:SSZ exactly, with range checks.
func parseTimeFast[S ~string | ~[]byte](s S) (time.Time, bool) {
	if len(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) (int, bool) {
		v := 0
		for j := i; j < i+n; j++ {
			c := s[j]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	y, ok1 := num(0, 4)
	mo, ok2 := num(5, 2)
	d, ok3 := num(8, 2)
	h, ok4 := num(11, 2)
	mi, ok5 := num(14, 2)
	se, ok6 := num(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, se, 0, time.UTC)
	if t.Day() != d { // 31 February and friends
		return time.Time{}, false
	}
	return t, true
}

type timeT = time.Time
