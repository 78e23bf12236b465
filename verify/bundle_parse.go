package verify

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"
)

// parseBundlePayload reads a revocation payload in one streaming pass: a bundle may
// hold hundreds of thousands of entries, so it is not decoded into an intermediate
// tree. The rules are the same as everywhere: exact member names, no duplicates
// (jsontext rejects those), no unknown members, no nulls, integers only.
func parseBundlePayload(payload []byte, b *Bundle) error {
	dec := jsontext.NewDecoder(bytes.NewBuffer(payload))
	if err := expect(dec, '{'); err != nil {
		return err
	}
	var seen [6]bool
	for dec.PeekKind() != '}' {
		name, err := readName(dec)
		if err != nil {
			return err
		}
		i := -1
		switch name {
		case "schema":
			i = 0
			var v int64
			if v, err = readInt(dec, name); err == nil && v != 1 {
				err = errors.New("schema is not 1")
			}
		case "issuer":
			i = 1
			b.Issuer, err = readString(dec, name)
		case "sequence":
			i = 2
			b.Sequence, err = readInt(dec, name)
		case "issued_at":
			i = 3
			b.IssuedAt, err = readTime(dec, name)
		case "expires_at":
			i = 4
			b.ExpiresAt, err = readTime(dec, name)
		case "entries":
			i = 5
			err = readEntries(dec, b)
		default:
			return fmt.Errorf("unknown member %q", name)
		}
		if err != nil {
			return err
		}
		seen[i] = true
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	if _, err := dec.ReadToken(); err == nil {
		return errors.New("data after the payload object")
	}
	for i, ok := range seen {
		if !ok {
			return fmt.Errorf("%s is missing", []string{"schema", "issuer", "sequence", "issued_at", "expires_at", "entries"}[i])
		}
	}
	return nil
}

func readEntries(dec *jsontext.Decoder, b *Bundle) error {
	if err := expect(dec, '['); err != nil {
		return err
	}
	// An entry is at least ~110 bytes of JSON: size the slices once.
	if est := dec.UnreadBuffer(); len(est) > 0 && b.ids == nil {
		n := len(est) / 110
		b.ids, b.entries = make([]string, 0, n), make([]Entry, 0, n)
	}
	for dec.PeekKind() != ']' {
		id, e, err := readEntry(dec)
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

func readEntry(dec *jsontext.Decoder) (string, Entry, error) {
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

func expect(dec *jsontext.Decoder, kind jsontext.Kind) error {
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	if tok.Kind() != kind {
		return fmt.Errorf("expected %v, found %v", kind, tok.Kind())
	}
	return nil
}

func readName(dec *jsontext.Decoder) (string, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return "", err
	}
	return tok.String(), nil
}

func readString(dec *jsontext.Decoder, name string) (string, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return "", err
	}
	if tok.Kind() != '"' {
		return "", fmt.Errorf("%s: not a string", name)
	}
	return tok.String(), nil
}

func readInt(dec *jsontext.Decoder, name string) (int64, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return 0, err
	}
	if tok.Kind() != '0' {
		return 0, fmt.Errorf("%s: not a number", name)
	}
	v, err := strconv.ParseInt(tok.String(), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: not an integer", name)
	}
	return v, nil
}

func readTime(dec *jsontext.Decoder, name string) (t timeT, err error) {
	s, err := readString(dec, name)
	if err != nil {
		return t, err
	}
	return parseTime(name, s)
}

// internStatus returns the constant for a known status, so a million entries share
// three strings.
func internStatus(s string) string {
	switch s {
	case StatusRevoked:
		return StatusRevoked
	case StatusSuspended:
		return StatusSuspended
	case StatusSuperseded:
		return StatusSuperseded
	}
	return s
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
