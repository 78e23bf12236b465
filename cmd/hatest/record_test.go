package main

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestLongestOutage(t *testing.T) {
	ok := func(ms int) record { return record{Kind: kindLease, Status: 200, End: at(ms)} }
	fail := func(ms, status int) record { return record{Kind: kindCustomer, Status: status, End: at(ms)} }
	cases := []struct {
		name string
		recs []record
		want time.Duration
	}{
		{"no failure: gaps between acknowledgements are no outage", []record{ok(0), ok(5000), ok(9000)}, 0},
		{"a refusal is an answer, not an outage", []record{ok(0), {Kind: kindLease, Status: 409, End: at(100)}, ok(5000)}, 0},
		{"failures between two acknowledgements", []record{ok(0), ok(1000), fail(1500, 503), fail(2000, 0), ok(4200), ok(4300)}, 3200 * time.Millisecond},
		{"the longest of two outages", []record{ok(0), fail(10, 503), ok(500), fail(600, 503), ok(2500)}, 2000 * time.Millisecond},
		{"never recovered: up to the end", []record{ok(0), ok(1000), fail(1100, 503)}, 9000 * time.Millisecond},
		{"failures before any acknowledgement are the start, not an outage", []record{fail(0, 0), ok(3000), ok(3100)}, 0},
		{"an invalid lease is a failure", []record{ok(0), {Kind: kindLease, Status: 200, Invalid: true, End: at(50)}, ok(700)}, 700 * time.Millisecond},
		{"a 2xx staff write acknowledges", []record{ok(0), fail(100, 503), {Kind: kindBundle, Status: 200, End: at(300)}}, 300 * time.Millisecond},
	}
	for _, c := range cases {
		if got := longestOutage(c.recs, at(10000)); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestMaxConcurrent(t *testing.T) {
	s := func(h string, from, to int) span { return span{h, at(from), at(to)} }
	if got := maxConcurrent(nil); got != 0 {
		t.Fatalf("none: %d", got)
	}
	// a hands its slot to b at 100: they don't overlap; c overlaps both.
	if got := maxConcurrent([]span{s("a", 0, 100), s("b", 100, 300), s("c", 50, 250)}); got != 2 {
		t.Fatalf("handover: %d, want 2", got)
	}
	// b starts a millisecond before a stops: three at once.
	if got := maxConcurrent([]span{s("a", 0, 101), s("b", 100, 300), s("c", 50, 250)}); got != 3 {
		t.Fatalf("overlap: %d, want 3", got)
	}
}

func TestMaxOccupied(t *testing.T) {
	exp := at(3_600_000)
	ev := func(ms int, host, outcome, reason string) leaseEvent {
		return leaseEvent{At: at(ms), Host: host, Outcome: outcome, Reason: reason, ExpiresAt: exp}
	}
	events := []leaseEvent{
		ev(0, "a", "granted", ""), ev(1, "b", "granted", ""), ev(2, "a", "renewed", ""),
		ev(3, "c", "refused", "license-limit-exceeded"),
		ev(4, "a", "released", slotsFreed), ev(5, "c", "granted", ""), // c takes a's freed slot
	}
	if got := maxOccupied(events); got != 2 {
		t.Fatalf("freed slot reused: %d, want 2", got)
	}
	held := append(events[:4:4], ev(4, "a", "released", "slot-held-until-expiry"), ev(5, "c", "granted", ""))
	if got := maxOccupied(held); got != 3 {
		t.Fatalf("a release beyond the budget keeps its slot: %d, want 3", got)
	}
	short := []leaseEvent{{At: at(0), Host: "a", Outcome: "granted", ExpiresAt: at(1000)}, ev(1000, "b", "granted", "")}
	if got := maxOccupied(short); got != 1 {
		t.Fatalf("an expired slot is free: %d, want 1", got)
	}
}

func TestLostWrites(t *testing.T) {
	exp := at(21_600_000).Truncate(time.Second)
	recs := []record{
		{Kind: kindLease, Status: 200, LeaseID: "lea_A", ExpiresAt: exp},
		{Kind: kindLease, Status: 200, LeaseID: "lea_A", ExpiresAt: exp}, // two renewals in one second: two rows needed
		{Kind: kindLease, Status: 503, LeaseID: "lea_B", ExpiresAt: exp}, // not acknowledged: not counted
		{Kind: kindRelease, Status: 204, LeaseID: "lea_C"},
		{Kind: kindCustomer, Status: 200, ID: "cus_1", Name: "One"},
		{Kind: kindCustomer, Status: 200, ID: "cus_2", Name: "Two"},
		{Kind: kindBundle, Status: 200, Sequence: 7, SHA256: []byte{1}},
		{Kind: kindBundle, Status: 200, Sequence: 8, SHA256: []byte{2}},
	}
	full := &dbState{
		leaseRows: map[leaseKey]int{{"lea_A", exp.Unix()}: 2},
		released:  map[string]bool{"lea_C": true},
		customers: map[string]string{"cus_1": "One", "cus_2": "Two"},
		bundles:   map[int64][]byte{7: {1}, 8: {2}},
	}
	if n, why := lostWrites(recs, full); n != 0 {
		t.Fatalf("nothing lost: %d %v", n, why)
	}
	holed := &dbState{
		leaseRows: map[leaseKey]int{{"lea_A", exp.Unix()}: 1}, // one renewal's row missing
		released:  map[string]bool{},                          // the release missing
		customers: map[string]string{"cus_1": "One", "cus_2": "Other"},
		bundles:   map[int64][]byte{7: {1}, 8: {9}}, // #8 is another file
	}
	if n, why := lostWrites(recs, holed); n != 4 {
		t.Fatalf("lost: %d, want 4: %v", n, why)
	}
}
