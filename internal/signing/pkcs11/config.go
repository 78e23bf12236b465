// Package pkcs11 keeps signing keys in a PKCS#11 token (an HSM, a cloud HSM's PKCS#11
// library, or SoftHSM2 in tests): keys are generated on the token as sensitive and
// non-extractable, and every signature is made by the token. It signs ES256, which
// HSMs support widely (Ed25519 rarely). The backend needs cgo and is compiled only
// with `-tags pkcs11`; without the tag, New explains how to get it.
package pkcs11

// Name is the backend name key records use.
const Name = "pkcs11"

// Config selects the token. The PIN comes from the environment or a secret file,
// never from the YAML config.
type Config struct {
	Module     string // path of the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so
	TokenLabel string
	Pin        string
}
