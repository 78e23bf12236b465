package web

import (
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
