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

// Key lifecycle states, as keys/README.md names them.
const (
	KeyStandby  = "standby"  // in the key set, signing nothing yet: waiting for a verifier release
	KeyActive   = "active"   // the signer of one or more slots
	KeyRetiring = "retiring" // rotated away from, or stopped by a not-after: still trusted for what it signed
	// KeyRetired (above): out of the key set.
)

// KeyStates names each key's lifecycle state at now. A published key that signs for
// no slot is a standby when it is newer than every active key of its product and
// purposes, and retiring when it was rotated away from (older than the active key)
// or has a not-after; an active key past its not-after is retiring.
func KeyStates(keys []*KeyRecord, now time.Time) map[string]string {
	newestActive := map[string]time.Time{} // product/purpose → creation of its active key
	for _, k := range keys {
		for _, slot := range k.Active {
			if t, ok := newestActive[slot]; !ok || k.CreatedAt.After(t) {
				newestActive[slot] = k.CreatedAt
			}
		}
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		stopped := k.NotAfter != nil && !k.NotAfter.After(now)
		switch {
		case k.Status == KeyRetired:
			out[k.KID] = KeyRetired
		case len(k.Active) > 0 && !stopped:
			out[k.KID] = KeyActive
		case len(k.Active) > 0 || k.NotAfter != nil:
			out[k.KID] = KeyRetiring
		default:
			out[k.KID] = KeyStandby
			for _, p := range k.Purposes {
				if t, ok := newestActive[k.Product+"/"+p]; ok && k.CreatedAt.Before(t) {
					out[k.KID] = KeyRetiring
				}
			}
		}
	}
	return out
}
