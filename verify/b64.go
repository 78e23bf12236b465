package verify

import "encoding/base64"

// b64 is unpadded base64url that also rejects non-zero trailing bits.
var b64 = base64.RawURLEncoding.Strict()

// EncodeB64 encodes b as unpadded base64url, the only encoding the formats use.
func EncodeB64(b []byte) string { return b64.EncodeToString(b) }
