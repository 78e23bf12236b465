package verify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strconv"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Document formats of formats.md section 2.
const (
	FormatLicense    = "metrum.license.v1"
	FormatRevocation = "metrum.revocation.v1"
	FormatLease      = "metrum.lease.v1"
)

// Envelope algorithms.
const (
	EnvelopeEd25519 = "Ed25519"
	EnvelopeES256   = "ES256"
)

// Size caps of formats.md section 2.
const (
	MaxLicenseSize = 1 << 20
	MaxLeaseSize   = 1 << 20
	MaxBundleSize  = 64 << 20
)

// Envelope is the signed wrapper around every license, bundle and lease.
type Envelope struct {
	Format    string `json:"format"`
	KeyID     string `json:"key_id"`
	Algorithm string `json:"algorithm"`
	Payload   string `json:"payload"`
	Signature string `json:"signature"`
}

// PAE is the DSSE v1 pre-authentication encoding: the exact bytes that are signed.
func PAE(format string, payload []byte) []byte {
	b := make([]byte, 0, len(payload)+len(format)+32)
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(format)), 10)
	b = append(b, ' ')
	b = append(b, format...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	return append(b, payload...)
}

// decodePAE decodes the base64url payload straight into a PAE buffer, so a large
// bundle is not copied once more to build the signed message. It returns the whole
// message and the payload inside it.
func decodePAE(format string, b64payload []byte) (msg, payload []byte, err error) {
	if err := checkB64Bytes("payload", b64payload); err != nil {
		return nil, nil, err
	}
	n := b64.DecodedLen(len(b64payload))
	head := fmt.Sprintf("DSSEv1 %d %s %d ", len(format), format, n)
	msg = make([]byte, len(head)+n)
	copy(msg, head)
	if err := decodeB64Into(msg[len(head):], b64payload); err != nil {
		return nil, nil, err
	}
	return msg, msg[len(head):], nil
}

// parallelDecodeMin is the payload size from which decodeB64Into uses two cores.
const parallelDecodeMin = 4 << 20

// decodeB64Into decodes strict base64url into dst (exactly its decoded length). A
// large input is split at a multiple of 4 characters, which decodes to whole bytes on
// its own, and the halves are decoded at once; the strict end checks (no padding, no
// non-zero trailing bits) apply to the second half, where the end is.
func decodeB64Into(dst, src []byte) error {
	bad := errors.New("payload: not strict base64url")
	if len(src) < parallelDecodeMin {
		if got, err := b64.Decode(dst, src); err != nil || got != len(dst) {
			return bad
		}
		return nil
	}
	cut := len(src) / 2 &^ 3
	var first error
	done := make(chan struct{})
	go func() {
		defer close(done)
		if got, err := b64.Decode(dst[:cut/4*3], src[:cut]); err != nil || got != cut/4*3 {
			first = bad
		}
	}()
	got, err := b64.Decode(dst[cut/4*3:], src[cut:])
	<-done
	if err != nil || got != len(dst)-cut/4*3 || first != nil {
		return bad
	}
	return nil
}

var purposeOf = map[string]Purpose{
	FormatLicense:    PurposeLicense,
	FormatRevocation: PurposeRevocation,
	FormatLease:      PurposeLease,
}

// envelopeAlgOf is the key `alg` each envelope algorithm must be bound to.
var envelopeAlgOf = map[string]string{
	EnvelopeEd25519: AlgEdDSA,
	EnvelopeES256:   AlgES256,
}

// openEnvelope parses a signed envelope of the wanted format and checks its signature
// against ks. It returns the payload bytes exactly as signed and the signing key.
func openEnvelope(data []byte, format string, ks *KeySet) ([]byte, *Key, error) {
	env, err := readEnvelope(data, format, ks)
	if err != nil {
		return nil, nil, err
	}
	if err := env.verify(); err != nil {
		return nil, nil, err
	}
	return env.payload, env.key, nil
}

// envelope is a parsed envelope whose key was found and checked for algorithm and
// purpose, but whose signature is not verified yet.
type envelope struct {
	key          *Key
	msg, payload []byte // the signed message (DSSE PAE) and the payload inside it
	sig          []byte
}

func (e *envelope) verify() error {
	if !verifySignature(e.key, e.msg, e.sig) {
		return errors.New("envelope: bad signature")
	}
	return nil
}

// readEnvelope does all of openEnvelope but the signature check.
//
// The envelope is read in one pass of a strict JSON decoder (duplicate names and
// invalid UTF-8 are refused by it; exactly the five members, each a string, by us),
// and the payload's base64 is decoded from the decoder's buffer straight into the
// signed message: a 64 MiB bundle is scanned once and copied once.
func readEnvelope(data []byte, format string, ks *KeySet) (*envelope, error) {
	var fields [5][]byte // format, key_id, algorithm, payload (still base64), signature
	var msg, payload []byte
	dec := jsontext.NewDecoder(bytes.NewBuffer(data))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, errors.New("envelope: not a JSON object")
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return nil, fmt.Errorf("envelope: %w", err)
		}
		i := slices.Index(envelopeMembers[:], name.String())
		if i < 0 {
			return nil, fmt.Errorf("envelope: unknown member %q", name.String())
		}
		v, err := dec.ReadValue()
		if err != nil {
			return nil, fmt.Errorf("envelope: %w", err)
		}
		raw, ok := rawString(v)
		if !ok {
			return nil, fmt.Errorf("envelope: %s is not a plain string", envelopeMembers[i])
		}
		if i == 3 { // decode now: v is only valid until the next read
			if msg, payload, err = decodePAE(format, raw); err != nil {
				return nil, err
			}
			raw = []byte{}
		}
		fields[i] = bytes.Clone(raw)
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, fmt.Errorf("envelope: %w", err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, errors.New("envelope: data after the envelope object")
	}
	for i, f := range fields {
		if f == nil {
			return nil, fmt.Errorf("envelope: %s is missing", envelopeMembers[i])
		}
	}
	if string(fields[0]) != format {
		return nil, fmt.Errorf("envelope: format %q, want %q", fields[0], format)
	}
	keyAlg, ok := envelopeAlgOf[string(fields[2])]
	if !ok {
		return nil, fmt.Errorf("envelope: algorithm %q is not allowed", fields[2])
	}
	key := ks.Lookup(string(fields[1]))
	if key == nil {
		return nil, fmt.Errorf("envelope: unknown key_id %q", fields[1])
	}
	if key.Alg != keyAlg {
		return nil, fmt.Errorf("envelope: algorithm %s does not match key %s (%s)", fields[2], key.KID, key.Alg)
	}
	if !key.Has(purposeOf[format]) {
		return nil, fmt.Errorf("envelope: key %s lacks the %s purpose", key.KID, purposeOf[format])
	}
	if len(key.Products) == 0 {
		return nil, fmt.Errorf("envelope: key %s has no products: it trusts nothing", key.KID)
	}
	sig, err := decodeB64("signature", string(fields[4]))
	if err != nil {
		return nil, err
	}
	return &envelope{key: key, msg: msg, payload: payload, sig: sig}, nil
}

// envelopeMembers are the only members of an envelope, in the order of fields.
var envelopeMembers = [5]string{"format", "key_id", "algorithm", "payload", "signature"}

// rawString returns the contents of a JSON string value that has no escapes. Every
// envelope member is printable ASCII (base64url, identifiers), so an escape there can
// only be an attempt to smuggle something past a byte-level check: refused.
func rawString(v jsontext.Value) ([]byte, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil, false
	}
	in := v[1 : len(v)-1]
	if bytes.IndexByte(in, '\\') >= 0 {
		return nil, false
	}
	return in, true
}

func verifySignature(key *Key, msg, sig []byte) bool {
	switch pub := key.Public.(type) {
	case ed25519.PublicKey:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, msg, sig)
	case *ecdsa.PublicKey:
		if len(sig) != 64 {
			return false
		}
		h := sha256.Sum256(msg)
		r := new(big.Int).SetBytes(sig[:32])
		s := new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(pub, h[:], r, s)
	}
	return false
}

// Sniff names what a file looks like, before any check: "jws" for a compact JWS, the
// envelope's `format` for a JSON envelope, "" when neither. Nothing it returns is
// trusted; it only chooses which parser to run.
func Sniff(data []byte) string {
	if isJWS(data) {
		return "jws"
	}
	var e struct {
		Format string `json:"format"`
	}
	if json.Unmarshal(data, &e) != nil {
		return ""
	}
	return e.Format
}
