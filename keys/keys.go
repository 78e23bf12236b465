// Package keys embeds the release public key set that the verifier (and a router) trusts
// by default. In the repository keys/public/keyset.json is empty; a release is built
// with scripts/release-verifier, which puts the set from `issuer keys export-keyset` in
// its place for that build only (go build -overlay); see keys/README.md. Only public
// keys live here.
package keys

import _ "embed"

// ReleaseKeySet is keys/public/keyset.json as it was at build time.
//
//go:embed public/keyset.json
var ReleaseKeySet []byte
