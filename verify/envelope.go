package verify

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"strconv"

	"github.com/go-json-experiment/json"
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
func decodePAE(format, b64payload string) (msg, payload []byte, err error) {
	if err := checkB64Alphabet("payload", b64payload); err != nil {
		return nil, nil, err
	}
	n := b64.DecodedLen(len(b64payload))
	head := fmt.Sprintf("DSSEv1 %d %s %d ", len(format), format, n)
	msg = make([]byte, len(head)+n)
	copy(msg, head)
	got, err := b64.Decode(msg[len(head):], []byte(b64payload))
	if err != nil || got != n {
		return nil, nil, errors.New("payload: not strict base64url")
	}
	return msg, msg[len(head):], nil
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
	var env struct {
		Format    *string `json:"format"`
		KeyID     *string `json:"key_id"`
		Algorithm *string `json:"algorithm"`
		Payload   *string `json:"payload"`
		Signature *string `json:"signature"`
	}
	if err := decodeStrict(data, &env); err != nil {
		return nil, nil, fmt.Errorf("envelope: %w", err)
	}
	if env.Format == nil || env.KeyID == nil || env.Algorithm == nil || env.Payload == nil || env.Signature == nil {
		return nil, nil, errors.New("envelope: a member is missing")
	}
	if *env.Format != format {
		return nil, nil, fmt.Errorf("envelope: format %q, want %q", *env.Format, format)
	}
	keyAlg, ok := envelopeAlgOf[*env.Algorithm]
	if !ok {
		return nil, nil, fmt.Errorf("envelope: algorithm %q is not allowed", *env.Algorithm)
	}
	key := ks.Lookup(*env.KeyID)
	if key == nil {
		return nil, nil, fmt.Errorf("envelope: unknown key_id %q", *env.KeyID)
	}
	if key.Alg != keyAlg {
		return nil, nil, fmt.Errorf("envelope: algorithm %s does not match key %s (%s)", *env.Algorithm, key.KID, key.Alg)
	}
	if !key.Has(purposeOf[format]) {
		return nil, nil, fmt.Errorf("envelope: key %s lacks the %s purpose", key.KID, purposeOf[format])
	}
	msg, payload, err := decodePAE(format, *env.Payload)
	if err != nil {
		return nil, nil, err
	}
	sig, err := decodeB64("signature", *env.Signature)
	if err != nil {
		return nil, nil, err
	}
	if !verifySignature(key, msg, sig) {
		return nil, nil, errors.New("envelope: bad signature")
	}
	return payload, key, nil
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
