package verify

import (
	"bytes"
	"errors"

	"fmt"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// The token-at-a-time entry parser that readEntries replaced, kept as the reference
// for FuzzEntriesMatchReference: both must accept and reject the same inputs and
// read the same entries.

type refBundle struct {
	ids     []string
	entries []Entry
}

func refReadEntries(dec *jsontext.Decoder, b *refBundle) error {
	if err := expect(dec, '['); err != nil {
		return err
	}
	for dec.PeekKind() != ']' {
		id, e, err := refReadEntry(dec)
		if err != nil {
			return fmt.Errorf("entry %d: %w", len(b.ids), err)
		}
		if n := len(b.ids); n > 0 && b.ids[n-1] >= id {
			return fmt.Errorf("entry %d: entries not sorted by unique license_id", n)
		}
		b.ids = append(b.ids, id)
		b.entries = append(b.entries, e)
	}
	_, err := dec.ReadToken()
	return err
}

func refReadEntry(dec *jsontext.Decoder) (string, Entry, error) {
	var e Entry
	var id string
	if err := expect(dec, '{'); err != nil {
		return "", e, err
	}
	var have [5]bool
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return "", e, err
		}
		// Switching on tok.String() directly lets the compiler skip the string copy.
		i := -1
		switch tok.String() {
		case "license_id":
			i = 0
			if id, err = readString(dec, "license_id"); err == nil && !licenseID.MatchString(id) {
				err = errors.New("license_id is not lic_ + ULID")
			}
		case "status":
			i = 1
			if e.Status, err = readString(dec, "status"); err == nil {
				e.Status = internStatus(e.Status)
			}
		case "reason":
			i = 2
			e.Reason, err = readString(dec, "reason")
		case "effective_at":
			i = 3
			e.EffectiveAt, err = readTimeNoCopy(dec, "effective_at")
		case "superseded_by":
			i = 4
			if e.SupersededBy, err = readString(dec, "superseded_by"); err == nil && !licenseID.MatchString(e.SupersededBy) {
				err = errors.New("superseded_by is not lic_ + ULID")
			}
		default:
			return "", e, fmt.Errorf("unknown member %q", tok.String())
		}
		if err != nil {
			return "", e, err
		}
		have[i] = true
	}
	if _, err := dec.ReadToken(); err != nil {
		return "", e, err
	}
	if !have[0] || !have[1] || !have[2] || !have[3] {
		return "", e, errors.New("license_id, status, reason and effective_at are required")
	}
	switch e.Status {
	case StatusRevoked, StatusSuspended:
		if have[4] {
			return "", e, errors.New("superseded_by only goes with superseded")
		}
	case StatusSuperseded:
		if !have[4] {
			return "", e, errors.New("superseded needs superseded_by")
		}
	default:
		return "", e, fmt.Errorf("unknown status %q", e.Status)
	}
	return id, e, nil
}

func parseBoth(data []byte) (*Bundle, *refBundle, error, error) {
	b, rb := &Bundle{}, &refBundle{}
	err := readEntries(jsontext.NewDecoder(bytes.NewReader(data)), b)
	rerr := refReadEntries(jsontext.NewDecoder(bytes.NewReader(data)), rb)
	return b, rb, err, rerr
}

func FuzzEntriesMatchReference(f *testing.F) {
	e := func(id, status, extra string) string {
		return `{"license_id":"` + id + `","status":"` + status + `","reason":"r","effective_at":"2026-01-01T00:00:00Z"` + extra + `}`
	}
	a, b := "lic_01HZY3QK8Y0000000000000001", "lic_01HZY3QK8Y0000000000000002"
	for _, seed := range []string{
		`[]`, `[` + e(a, "revoked", "") + `]`, `[` + e(a, "revoked", "") + `,` + e(b, "suspended", "") + `]`,
		`[` + e(b, "revoked", "") + `,` + e(a, "revoked", "") + `]`,
		`[` + e(a, "superseded", `,"superseded_by":"`+b+`"`) + `]`,
		`[` + e(a, "revoked", `,"superseded_by":"`+b+`"`) + `]`,
		`[` + e(a, "revoked", `,"status":"revoked"`) + `]`,
		`[` + e(a, "revoked", `,"x":1`) + `]`,
		`[{"license_id":"lic_01HZY3QK8Y000000000000000\u0031","st\u0061tus":"revoked","reason":"\u00e9\"\\","effective_at":"2026-01-01T00:00:00Z"}]`,
		`[ { "license_id" : "` + a + `" , "status":"revoked","reason":"","effective_at":"2026-01-01T00:00:00Z" } ]`,
		`[{"license_id":null,"status":"revoked","reason":"r","effective_at":"2026-01-01T00:00:00Z"}]`,
		`[{"license_id":"` + a + `","status":"revoked","reason":1,"effective_at":"2026-01-01T00:00:00Z"}]`,
		`[1]`, `[{}]`, `[` + e(a, "revoked", "") + `,]`, "[\"\xff\"]",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, want, err, rerr := parseBoth(data)
		if (err == nil) != (rerr == nil) {
			t.Fatalf("new parser err=%v, reference err=%v", err, rerr)
		}
		if err != nil {
			return
		}
		if len(got.ids) != len(want.ids) {
			t.Fatalf("%d entries, reference %d", len(got.ids), len(want.ids))
		}
		for i := range got.ids {
			if string(got.ids[i][:]) != want.ids[i] || fmt.Sprint(got.entries[i]) != fmt.Sprint(want.entries[i]) {
				t.Fatalf("entry %d: %s %+v, reference %s %+v", i, got.ids[i][:], got.entries[i], want.ids[i], want.entries[i])
			}
		}
	})
}

// TestEntriesParserRefusesWhatTheSpecRefuses spells out verdicts both parsers share.
func TestEntriesParserRefusesWhatTheSpecRefuses(t *testing.T) {
	ok := `{"license_id":"lic_01HZY3QK8Y0000000000000001","status":"revoked","reason":"r","effective_at":"2026-01-01T00:00:00Z"`
	for name, c := range map[string]struct {
		data string
		ok   bool
	}{
		"plain":          {`[` + ok + `}]`, true},
		"escaped names":  {`[{"license_\u0069d":"lic_01HZY3QK8Y0000000000000001","status":"revoked","reason":"\u00e9","effective_at":"2026-01-01T00:00:00Z"}]`, true},
		"duplicate name": {`[` + ok + `,"reason":"again"}]`, false},
		"unknown member": {`[` + ok + `,"note":"x"}]`, false},
		"null value":     {`[` + ok + `,"superseded_by":null}]`, false},
		"number reason":  {`[{"license_id":"lic_01HZY3QK8Y0000000000000001","status":"revoked","reason":7,"effective_at":"2026-01-01T00:00:00Z"}]`, false},
		"bad utf-8":      {"[" + ok + ",\"reason\":\"\xff\"}]", false},
		"trailing comma": {`[` + ok + `},]`, false},
	} {
		_, _, err, rerr := parseBoth([]byte(c.data))
		if (err == nil) != c.ok || (rerr == nil) != c.ok {
			t.Errorf("%s: new err=%v, reference err=%v, want ok=%v", name, err, rerr, c.ok)
		}
	}
}

// readTimeNoCopy parses a time token without keeping its text.
func readTimeNoCopy(dec *jsontext.Decoder, name string) (timeT, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return timeT{}, err
	}
	if tok.Kind() == '"' {
		if t, ok := parseTimeFast(tok.String()); ok {
			return t, nil
		}
	}
	return timeT{}, fmt.Errorf("%s: not an RFC 3339 UTC time with whole seconds", name)
}
