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
	var seen [7]bool
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
			if v, err = readInt(dec, name); err == nil && v != BundleSchema {
				err = fmt.Errorf("schema %d is not %d", v, BundleSchema)
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
		case "product":
			i = 6
			b.Product, err = readString(dec, name)
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
			return fmt.Errorf("%s is missing", []string{"schema", "issuer", "sequence", "issued_at", "expires_at", "entries", "product"}[i])
		}
	}
	return nil
}

func readEntries(dec *jsontext.Decoder, b *Bundle) error {
	// The decoder validates the whole array in one call: well-formed JSON, valid
	// UTF-8, no duplicate member names in any entry. parseEntry then only reads
	// fields out of it.
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	if v.Kind() != '[' {
		return fmt.Errorf("entries: expected an array, found %v", v.Kind())
	}
	// An entry is at least ~110 bytes of JSON: size the slices once.
	n := len(v) / 110
	b.ids, b.entries = make([]licenseKey, 0, n), make([]Entry, 0, n)
	p := entryParser{reasons: map[string]string{}}
	i := skipWS(v, 1)
	for v[i] != ']' {
		id, e, next, err := p.parseEntry(v, i)
		if err != nil {
			return fmt.Errorf("entry %d: %w", len(b.ids), err)
		}
		if n := len(b.ids); n > 0 && bytes.Compare(b.ids[n-1][:], id[:]) >= 0 {
			return fmt.Errorf("entry %d: entries not sorted by unique license_id", n)
		}
		b.ids = append(b.ids, id)
		b.entries = append(b.entries, e)
		if i = skipWS(v, next); v[i] == ',' {
			i = skipWS(v, i+1)
		}
	}
	return nil
}

// entryParser reads bundle entries out of JSON the decoder has already validated.
type entryParser struct {
	// reasons interns reason texts: a million entries share a handful of reasons.
	reasons map[string]string
	scratch []byte
}

// maxInterned bounds the reason table; past it, reasons are allocated each.
const maxInterned = 4096

// parseEntry reads the entry object at v[i]: exactly license_id, status, reason,
// effective_at and, only with superseded, superseded_by; every value a string. v is
// valid JSON with unique names (the decoder checked), so this only walks it. It
// returns the index after the object.
func (p *entryParser) parseEntry(v []byte, i int) (licenseKey, Entry, int, error) {
	var id licenseKey
	var e Entry
	if v[i] != '{' {
		return id, e, i, errors.New("entry is not an object")
	}
	i++
	var have [5]bool
	for {
		i = skipWS(v, i)
		if v[i] == '}' {
			i++
			break
		}
		if v[i] == ',' {
			i = skipWS(v, i+1)
		}
		name, next, err := p.str(v, i)
		if err != nil {
			return id, e, i, err
		}
		i = skipWS(v, next)
		i = skipWS(v, i+1) // the colon
		if v[i] != '"' {
			return id, e, i, fmt.Errorf("%s: not a string", name)
		}
		val, next, err := p.str(v, i)
		if err != nil {
			return id, e, i, err
		}
		i = next
		switch string(name) {
		case "license_id":
			have[0] = true
			if !isID(string(licenseID), val) {
				return id, e, i, errors.New("license_id is not lic_ + ULID")
			}
			copy(id[:], val)
		case "status":
			have[1] = true
			e.Status = internStatus(val)
		case "reason":
			have[2] = true
			e.Reason = p.intern(val)
		case "effective_at":
			have[3] = true
			t, ok := parseTimeFast(val)
			if !ok {
				return id, e, i, errors.New("effective_at: not an RFC 3339 UTC time with whole seconds")
			}
			e.EffectiveAt = t
		case "superseded_by":
			have[4] = true
			if e.SupersededBy = string(val); !licenseID.MatchString(e.SupersededBy) {
				return id, e, i, errors.New("superseded_by is not lic_ + ULID")
			}
		default:
			return id, e, i, fmt.Errorf("unknown member %q", name)
		}
	}
	if !have[0] || !have[1] || !have[2] || !have[3] {
		return id, e, i, errors.New("license_id, status, reason and effective_at are required")
	}
	switch e.Status {
	case StatusRevoked, StatusSuspended:
		if have[4] {
			return id, e, i, errors.New("superseded_by only goes with superseded")
		}
	case StatusSuperseded:
		if !have[4] {
			return id, e, i, errors.New("superseded needs superseded_by")
		}
	default:
		return id, e, i, fmt.Errorf("unknown status %q", e.Status)
	}
	return id, e, i, nil
}

// str reads the JSON string starting at v[i] (a quote) and returns its unescaped
// contents (valid until the next call) and the index after it.
func (p *entryParser) str(v []byte, i int) ([]byte, int, error) {
	if i >= len(v) || v[i] != '"' {
		return nil, i, errors.New("expected a string")
	}
	// Fast path: the next quote, with no backslash before it (IDs, times, most
	// reasons), found with vectorised searches.
	if k := bytes.IndexByte(v[i+1:], '"'); k >= 0 && bytes.IndexByte(v[i+1:i+1+k], '\\') < 0 {
		return v[i+1 : i+1+k], i + 2 + k, nil
	}
	esc := false
	j := i + 1
	for j < len(v) && v[j] != '"' {
		if v[j] == '\\' {
			esc = true
			j++ // the escaped byte can't end the string (\u escapes are hex digits)
		}
		j++
	}
	if j >= len(v) {
		return nil, j, errors.New("unterminated string")
	}
	if !esc {
		return v[i+1 : j], j + 1, nil
	}
	out, err := jsontext.AppendUnquote(p.scratch[:0], v[i:j+1])
	if err != nil {
		return nil, j, err
	}
	p.scratch = out
	return out, j + 1, nil
}

func (p *entryParser) intern(b []byte) string {
	if s, ok := p.reasons[string(b)]; ok { // no allocation for the lookup
		return s
	}
	s := string(b)
	if len(p.reasons) < maxInterned {
		p.reasons[s] = s
	}
	return s
}

func skipWS(v []byte, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r') {
		i++
	}
	return i
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
func internStatus[S ~string | ~[]byte](s S) string {
	switch string(s) {
	case StatusRevoked:
		return StatusRevoked
	case StatusSuspended:
		return StatusSuspended
	case StatusSuperseded:
		return StatusSuperseded
	}
	return string(s)
}
