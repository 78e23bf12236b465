package metering

import (
	"context"
	"crypto/sha256"
	"slices"

	"github.com/metrum/licensing/internal/entitlements"
)

// Credential is who uploads reports (usage.md section 3), and for which licenses:
//   - a lease token: its license and those it supersedes, for hosts online;
//   - a customer API token or a signed-in portal user: any of the customer's
//     licenses, for files carried out of air-gapped sites.
type Credential struct {
	CustomerID string
	// Licenses, when set, are the only licenses the credential may report for.
	Licenses []string
	// Key names the credential for its rate limit and the logs: "lease:lic_…",
	// "token:ctk_…", "portal:email".
	Key string
}

// ErrBadToken is the one answer for a missing, unknown, expired or revoked token of
// either kind: nothing tells them apart.
var ErrBadToken = entitlements.Errorf(entitlements.EUNAUTHORIZED, "a lease token or a customer API token is required (Authorization: Bearer)")

// allows reports whether the credential may report for l: its customer's, and one of
// its licenses when it names them. A foreign license is refused exactly like a
// missing one.
func (c *Credential) allows(l *entitlements.UsageLicense) bool {
	if l == nil || l.CustomerID != c.CustomerID {
		return false
	}
	return c.Licenses == nil || slices.Contains(c.Licenses, l.ID)
}

// AuthenticateLease turns a lease token into its credential (the token is looked up
// by its SHA-256, as the lease API does).
func (s *Service) AuthenticateLease(ctx context.Context, token string) (*Credential, error) {
	if token == "" || len(token) > 128 {
		return nil, ErrBadToken
	}
	h := sha256.Sum256([]byte(token))
	cus, lics, err := s.store.UsageLeaseScope(ctx, h[:])
	if err != nil {
		return nil, err
	}
	if len(lics) == 0 {
		return nil, ErrBadToken
	}
	return &Credential{CustomerID: cus, Licenses: lics, Key: "lease:" + lics[0]}, nil
}

// CredentialOf is the credential of a customer's principal (a customer API token or a
// portal user): any of the customer's licenses. Staff on a customer's behalf don't
// upload.
func CredentialOf(p *entitlements.Principal) (*Credential, error) {
	switch {
	case p == nil:
		return nil, ErrBadToken
	case p.Kind == entitlements.PrincipalCustomerToken:
		return &Credential{CustomerID: p.CustomerID, Key: "token:" + p.Actor}, nil
	case p.Kind == entitlements.PrincipalPortalUser:
		return &Credential{CustomerID: p.CustomerID, Key: "portal:" + p.Actor}, nil
	}
	return nil, entitlements.Errorf(entitlements.EFORBIDDEN, "usage reports are uploaded by the customer's hosts, tokens and portal users")
}
