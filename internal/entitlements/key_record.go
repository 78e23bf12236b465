package entitlements

import (
	"time"

	"github.com/metrum/licensing/verify"
)

// Key statuses: a published key is in the exported key set (the active signer of a
// slot, or a standby waiting for a verifier release); a retired one is not.
const (
	KeyPublished = "published"
	KeyRetired   = "retired"
)

// KeyRecord is a signing key's public part and metadata.
type KeyRecord struct {
	KID        string
	Product    string
	Alg        string
	Purposes   []string
	PublicJWK  verify.JWK
	Backend    string
	BackendRef string
	Status     string
	CreatedAt  time.Time
	NotAfter   *time.Time
	RetiredAt  *time.Time
	// Active lists the product/purpose slots this key is the active signer of.
	Active []string
}
