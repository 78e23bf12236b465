// Package keys embeds the release public key set that the verifier trusts by default.
// Release engineering writes keys/public/keyset.json with `issuer keys export-keyset`
// before building a verifier release; see keys/README.md. Only public keys live here.
package keys

import _ "embed"

// ReleaseKeySet is keys/public/keyset.json as it was at build time.
//
//go:embed public/keyset.json
var ReleaseKeySet []byte
