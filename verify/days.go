package verify

import "time"

// DaysUntil is the number of days from now until t as a person counts them on a
// calendar: t's date minus now's date, both in UTC. So "Expires: 2027-03-19 (365
// days)" always adds up (now's date plus the count is the date shown), a 365-day
// license issued today says 365 rather than the 364 that truncating a duration a few
// milliseconds short of 365 days gives, and a license that expires later today says
// 0. Past t it is zero or negative: the days since.
func DaysUntil(now, t time.Time) int {
	n, e := now.UTC(), t.UTC()
	a := time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, time.UTC)
	b := time.Date(e.Year(), e.Month(), e.Day(), 0, 0, 0, 0, time.UTC)
	// Whole UTC days are exactly 24 h, so the division is exact.
	return int(b.Sub(a) / (24 * time.Hour))
}
