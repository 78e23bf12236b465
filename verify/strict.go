package verify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// DecodeStrict parses a JSON document with the rules of formats.md section 2, for the
// project's other signed documents that follow them (spec/usage.md's reports): see
// decodeStrict.
func DecodeStrict(data []byte, v any) error { return decodeStrict(data, v) }

// DecodeB64 decodes strict base64url (formats.md section 2): no padding, no
// whitespace, no non-zero trailing bits.
func DecodeB64(name, s string) ([]byte, error) { return decodeB64(name, s) }

// ParseTime parses a time the only way the formats allow: RFC 3339, UTC with a Z,
// whole seconds.
func ParseTime(name, s string) (time.Time, error) { return parseTime(name, s) }

// decodeStrict parses data into v with the rules of formats.md section 2: the top
// level is an object, member names match exactly, duplicate and unknown members are
// rejected, and no value anywhere is null (no member of any document is nullable, and
// json v2 would otherwise read null as "absent").
func decodeStrict(data []byte, v any) error {
	if err := rejectNulls(data); err != nil {
		return err
	}
	return json.Unmarshal(data, v, json.RejectUnknownMembers(true))
}

// rejectNulls walks the token stream once: it checks the top level is an object and
// that no value is null. Duplicate names and invalid UTF-8 are rejected by jsontext.
func rejectNulls(data []byte) error {
	dec := jsontext.NewDecoder(bytes.NewBuffer(data)) // a Buffer is parsed in place
	first := true
	for {
		tok, err := dec.ReadToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if first {
			if tok.Kind() != '{' {
				return errors.New("top level is not a JSON object")
			}
			first = false
		}
		if tok.Kind() == 'n' {
			return fmt.Errorf("null value at %s", dec.StackPointer())
		}
	}
}

// parseTime accepts only RFC 3339 in UTC with a Z and whole seconds.
func parseTime(name, s string) (time.Time, error) {
	t, ok := parseTimeFast(s)
	if !ok {
		return time.Time{}, fmt.Errorf("%s: not an RFC 3339 UTC time with whole seconds", name)
	}
	return t, nil
}

// FormatTime renders t the only way the formats allow: UTC, Z, whole seconds.
func FormatTime(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05Z")
}

// decodeB64 decodes strict base64url: the URL alphabet only, no padding, no
// whitespace (Go's decoder would skip CR and LF), and zero trailing bits.
func decodeB64(name, s string) ([]byte, error) {
	if err := checkB64Alphabet(name, s); err != nil {
		return nil, err
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%s: not strict base64url", name)
	}
	return b, nil
}

// checkB64Bytes is checkB64Alphabet for large inputs: the strict decoder refuses every
// byte outside the alphabet except CR and LF, which it would skip, so those two are
// the only ones to look for (a vectorised search, not a byte loop).
func checkB64Bytes(name string, b []byte) error {
	if bytes.IndexByte(b, '\r') >= 0 || bytes.IndexByte(b, '\n') >= 0 {
		return fmt.Errorf("%s: not strict base64url", name)
	}
	return nil
}

// checkB64Alphabet refuses anything but the base64url alphabet.
func checkB64Alphabet(name, s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%s: not strict base64url", name)
		}
	}
	return nil
}

// safe renders an error for output: JSON syntax errors from the parser quote the input
// around the fault, and output must never carry payload bytes, so those keep only the
// position.
// SafeError renders an error for output without quoting input bytes.
func SafeError(err error) string { return safe(err) }

func safe(err error) string {
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		return fmt.Sprintf("malformed JSON at byte %d", se.ByteOffset)
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
