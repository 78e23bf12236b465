package web

import (
	"strconv"
	"time"
)

func itoa(n int) string { return strconv.Itoa(n) }

func day(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
