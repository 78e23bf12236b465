package ui

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Itoa formats an int.
func Itoa(n int) string { return strconv.Itoa(n) }

// OptDay formats an optional time, or none.
func OptDay(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return Day(*t)
}

// Enabled says enabled or disabled.
func Enabled(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

// TokenState says a token is active or revoked.
func TokenState(revoked bool) string {
	if revoked {
		return "revoked"
	}
	return "active"
}

// IsLimitKey tells an override key of a limit (limits.NAME).
func IsLimitKey(k string) bool { return len(k) > 7 && k[:7] == "limits." }

// JoinComma joins with commas.
func JoinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

// Details shows audit details as k=v, sorted.
func Details(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := ""
	for _, k := range keys {
		out += k + "=" + m[k] + " "
	}
	return out
}

// OrAll is v, or all when v is empty.
func OrAll(v, all string) string {
	if v == "" {
		return all
	}
	return v
}

// Money formats an amount in a currency's minor unit: "USD 2,500.00"; 0 is "free".
func Money(minor int64, currency string) string {
	if minor == 0 {
		return "free"
	}
	return fmt.Sprintf("%s %s.%02d", strings.ToUpper(currency), Count(minor/100), minor%100)
}
