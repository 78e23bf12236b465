package signing

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/metrum/licensing/verify"
)

// SignJWS signs claims as a CoreSDK license token (formats.md section 7): a compact JWS
// whose protected header is exactly alg, kid and typ. The claims bytes are signed as
// given. The header is built here rather than by a JOSE library because the spec
// allows no other member, and a library may add some.
func SignJWS(s Signer, claims []byte) (string, error) {
	if !hasPurpose(s, verify.PurposeLicense) {
		return "", fmt.Errorf("%w: JWS licenses need the license purpose", ErrPurpose)
	}
	header := fmt.Sprintf(`{"alg":%q,"kid":%q,"typ":%q}`, s.Algorithm(), s.KeyID(), verify.JWSType)
	input := verify.EncodeB64([]byte(header)) + "." + verify.EncodeB64(claims)
	var sig []byte
	var err error
	switch s.Algorithm() {
	case verify.AlgEdDSA:
		sig, err = s.Sign(rand.Reader, []byte(input), crypto.Hash(0))
	case verify.AlgES256:
		sig, err = signES256(s, []byte(input))
	case verify.AlgRS256:
		h := sha256.Sum256([]byte(input))
		sig, err = s.Sign(rand.Reader, h[:], crypto.SHA256)
	default:
		return "", fmt.Errorf("signing: unsupported JWS algorithm %q", s.Algorithm())
	}
	if err != nil {
		return "", fmt.Errorf("signing: %w", err)
	}
	return input + "." + verify.EncodeB64(sig), nil
}

func hasPurpose(s Signer, p verify.Purpose) bool {
	for _, q := range s.Purposes() {
		if q == p {
			return true
		}
	}
	return false
}
