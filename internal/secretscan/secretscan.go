// Package secretscan finds secret bytes in text under the encodings a leak would use:
// raw, hex (either case), standard and URL base64 (padded or not), and PEM/DER
// wrappers around them. Tests use it to prove logs, responses, database rows and
// files never carry private key material.
package secretscan

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Find reports the first encoding under which secret occurs in haystack, or "".
// Secrets shorter than 16 bytes are refused (they would match by chance).
func Find(haystack []byte, secret []byte) string {
	if len(secret) < 16 {
		panic("secretscan: secret too short to search for")
	}
	low := bytes.ToLower(haystack)
	if bytes.Contains(haystack, secret) {
		return "raw"
	}
	if bytes.Contains(low, []byte(hex.EncodeToString(secret))) {
		return "hex"
	}
	// PEM breaks its base64 every 64 characters, and a PEM block inside a JSON string
	// or a log line carries its breaks escaped: search the base64 forms with every
	// line break (raw or escaped) taken out as well.
	unwrapped := unwrap(haystack)
	// A base64 encoding of a larger buffer that contains the secret only shows the
	// secret's encoding at one of three alignments: search each, trimmed at both ends
	// to the characters that do not depend on neighbouring bytes.
	for shift := 0; shift < 3; shift++ {
		buf := append(make([]byte, shift), secret...)
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			s := enc.EncodeToString(buf)
			s = strings.TrimRight(s, "=")
			lead := (shift*8 + 5) / 6
			if len(s) <= lead+4 {
				continue
			}
			core := s[lead : len(s)-2]
			if bytes.Contains(haystack, []byte(core)) {
				return "base64"
			}
			if bytes.Contains(unwrapped, []byte(core)) {
				return "base64 (line-wrapped, e.g. PEM)"
			}
		}
	}
	return ""
}

// unwrap removes line breaks, raw (CR, LF) and JSON/Go-escaped (\n, \r), so that
// wrapped base64 reads as one run.
func unwrap(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '\n' || b[i] == '\r':
			continue
		case b[i] == '\\' && i+1 < len(b) && (b[i+1] == 'n' || b[i+1] == 'r'):
			i++
			continue
		}
		out = append(out, b[i])
	}
	return out
}
