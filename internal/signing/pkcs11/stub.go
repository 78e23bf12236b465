//go:build !pkcs11

package pkcs11

import (
	"errors"

	"github.com/metrum/licensing/internal/signing"
)

// Available reports whether this binary was built with PKCS#11 support.
const Available = false

// New fails: this binary was built without the pkcs11 tag.
func New(Config) (signing.Backend, func() error, error) {
	return nil, nil, errors.New("pkcs11: this issuer was built without PKCS#11 support; build it with `go build -tags pkcs11` (needs cgo)")
}
