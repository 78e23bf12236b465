package web

import (
	"sort"
	"strconv"
	"time"
)

func itoa(n int) string { return strconv.Itoa(n) }

func day(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func optDay(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return day(*t)
}

func enabled(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

func tokenState(revoked bool) string {
	if revoked {
		return "revoked"
	}
	return "active"
}

func isLimitKey(k string) bool { return len(k) > 7 && k[:7] == "limits." }

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

func details(m map[string]string) string {
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

func orAll(v, all string) string {
	if v == "" {
		return all
	}
	return v
}
