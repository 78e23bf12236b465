package verify

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"
)

var featureRe = regexp.MustCompile(`^[a-z0-9_]+$`)

// idRule checks one kind of identifier.
type idRule string

// MatchString reports whether s is the prefix and a ULID.
func (p idRule) MatchString(s string) bool { return isID(string(p), s) }

const (
	licenseID idRule = "lic_"
	custID    idRule = "cus_"
	leaseID   idRule = "lea_"
)

// LeasePolicy is the optional `lease` member of a license payload.
type LeasePolicy struct {
	Required   bool   `json:"required"`
	TTLSeconds int64  `json:"ttl_seconds"`
	RenewURL   string `json:"renew_url"`
}

// LicensePayload is the wire form of a `metrum.license.v1` payload, member for member.
// The issuer marshals it; the verifier parses into licenseWire and converts.
type LicensePayload struct {
	Schema              int64            `json:"schema"`
	LicenseID           string           `json:"license_id"`
	Product             string           `json:"product"`
	Issuer              string           `json:"issuer"`
	CustomerID          string           `json:"customer_id"`
	CustomerName        string           `json:"customer_name"`
	SKU                 string           `json:"sku"`
	TemplateVersion     int64            `json:"template_version"`
	IssuedAt            string           `json:"issued_at"`
	NotBefore           string           `json:"not_before"`
	ExpiresAt           string           `json:"expires_at"`
	Features            []string         `json:"features"`
	Limits              map[string]int64 `json:"limits"`
	GracePeriodSeconds  int64            `json:"grace_period_seconds"`
	InstanceFingerprint string           `json:"instance_fingerprint,omitempty"`
	Supersedes          string           `json:"supersedes,omitempty"`
	Lease               *LeasePolicy     `json:"lease,omitempty"`
}

// licenseWire mirrors LicensePayload with pointers, so absence is visible.
type licenseWire struct {
	Schema              *int64            `json:"schema"`
	LicenseID           *string           `json:"license_id"`
	Product             *string           `json:"product"`
	Issuer              *string           `json:"issuer"`
	CustomerID          *string           `json:"customer_id"`
	CustomerName        *string           `json:"customer_name"`
	SKU                 *string           `json:"sku"`
	TemplateVersion     *int64            `json:"template_version"`
	IssuedAt            *string           `json:"issued_at"`
	NotBefore           *string           `json:"not_before"`
	ExpiresAt           *string           `json:"expires_at"`
	Features            *[]string         `json:"features"`
	Limits              *map[string]int64 `json:"limits"`
	GracePeriodSeconds  *int64            `json:"grace_period_seconds"`
	InstanceFingerprint *string           `json:"instance_fingerprint"`
	Supersedes          *string           `json:"supersedes"`
	Lease               *struct {
		Required   *bool   `json:"required"`
		TTLSeconds *int64  `json:"ttl_seconds"`
		RenewURL   *string `json:"renew_url"`
	} `json:"lease"`
}

// License is a verified license of either form, in the terms the checks use.
type License struct {
	Form                string // "envelope" or "jws"
	LicenseID           string
	Product             string
	Issuer              string
	CustomerID          string
	CustomerName        string
	SKU                 string
	Plan                string // CoreSDK JWS only
	TemplateVersion     int64
	IssuedAt            time.Time
	NotBefore           time.Time // zero: no lower bound (a JWS without nbf)
	ExpiresAt           time.Time
	Features            []string
	Limits              map[string]int64 // absent name = unlimited
	GracePeriod         time.Duration
	InstanceFingerprint string
	Supersedes          string
	Lease               *LeasePolicy
	KeyID               string
	Algorithm           string
}

func missing(name string) error { return fmt.Errorf("payload: %s is missing", name) }

func parseLicensePayload(payload []byte) (*License, error) {
	var w licenseWire
	if err := decodeStrict(payload, &w); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	req := []struct {
		name string
		ok   bool
	}{
		{"schema", w.Schema != nil}, {"license_id", w.LicenseID != nil}, {"product", w.Product != nil},
		{"issuer", w.Issuer != nil}, {"customer_id", w.CustomerID != nil}, {"customer_name", w.CustomerName != nil},
		{"sku", w.SKU != nil}, {"template_version", w.TemplateVersion != nil}, {"issued_at", w.IssuedAt != nil},
		{"not_before", w.NotBefore != nil}, {"expires_at", w.ExpiresAt != nil}, {"features", w.Features != nil},
		{"limits", w.Limits != nil}, {"grace_period_seconds", w.GracePeriodSeconds != nil},
	}
	for _, r := range req {
		if !r.ok {
			return nil, missing(r.name)
		}
	}
	if *w.Schema != 1 {
		return nil, fmt.Errorf("payload: schema %d is not 1", *w.Schema)
	}
	l := &License{
		Form: "envelope", LicenseID: *w.LicenseID, Product: *w.Product, Issuer: *w.Issuer,
		CustomerID: *w.CustomerID, CustomerName: *w.CustomerName, SKU: *w.SKU,
		TemplateVersion: *w.TemplateVersion, Features: *w.Features, Limits: *w.Limits,
	}
	if !licenseID.MatchString(l.LicenseID) {
		return nil, errors.New("payload: license_id is not lic_ + ULID")
	}
	if !custID.MatchString(l.CustomerID) {
		return nil, errors.New("payload: customer_id is not cus_ + ULID")
	}
	if l.Product == "" || l.Issuer == "" || l.SKU == "" {
		return nil, errors.New("payload: product, issuer and sku must not be empty")
	}
	if l.TemplateVersion < 1 {
		return nil, errors.New("payload: template_version must be ≥ 1")
	}
	var err error
	if l.IssuedAt, err = parseTime("issued_at", *w.IssuedAt); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if l.NotBefore, err = parseTime("not_before", *w.NotBefore); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if l.ExpiresAt, err = parseTime("expires_at", *w.ExpiresAt); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if !l.NotBefore.Before(l.ExpiresAt) {
		return nil, errors.New("payload: not_before must be before expires_at")
	}
	if err := checkFeatures(l.Features, true); err != nil {
		return nil, err
	}
	if err := checkLimits(l.Limits); err != nil {
		return nil, err
	}
	if *w.GracePeriodSeconds < 0 {
		return nil, errors.New("payload: grace_period_seconds must be ≥ 0")
	}
	l.GracePeriod = time.Duration(*w.GracePeriodSeconds) * time.Second
	if w.InstanceFingerprint != nil {
		if *w.InstanceFingerprint == "" {
			return nil, errors.New("payload: instance_fingerprint is present but empty")
		}
		l.InstanceFingerprint = *w.InstanceFingerprint
	}
	if w.Supersedes != nil {
		if !licenseID.MatchString(*w.Supersedes) || *w.Supersedes == l.LicenseID {
			return nil, errors.New("payload: supersedes is not another license_id")
		}
		l.Supersedes = *w.Supersedes
	}
	if w.Lease != nil {
		lw := w.Lease
		if lw.Required == nil || lw.TTLSeconds == nil || lw.RenewURL == nil {
			return nil, errors.New("payload: lease needs required, ttl_seconds and renew_url")
		}
		if *lw.TTLSeconds <= 0 {
			return nil, errors.New("payload: lease.ttl_seconds must be > 0")
		}
		if u, err := url.Parse(*lw.RenewURL); err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, errors.New("payload: lease.renew_url must be an https:// URL")
		}
		l.Lease = &LeasePolicy{Required: *lw.Required, TTLSeconds: *lw.TTLSeconds, RenewURL: *lw.RenewURL}
	}
	return l, nil
}

// checkFeatures enforces unique names matching [a-z0-9_]+; the envelope form also
// requires them sorted, so a given set has exactly one encoding.
func checkFeatures(fs []string, sorted bool) error {
	for i, f := range fs {
		if !featureRe.MatchString(f) {
			return fmt.Errorf("payload: feature %q is not [a-z0-9_]+", f)
		}
		if sorted && i > 0 && fs[i-1] >= f {
			return errors.New("payload: features are not unique and sorted")
		}
	}
	if !sorted {
		c := slices.Clone(fs)
		slices.Sort(c)
		if len(slices.Compact(c)) != len(fs) {
			return errors.New("payload: features are not unique")
		}
	}
	return nil
}

func checkLimits(m map[string]int64) error {
	for k, v := range m {
		if k == "" {
			return errors.New("payload: a limit has an empty name")
		}
		if v < 0 {
			return fmt.Errorf("payload: limit %s is negative", k)
		}
	}
	return nil
}

// ParseLicenseFile verifies the signature and shape of a license in either form (the
// signed envelope or the CoreSDK compact JWS) and returns it; the signing key must be
// trusted for the license's product (a JWS license's is coresdk). It checks nothing
// that depends on time, host or revocation: Check does that, in the order of the spec.
func ParseLicenseFile(data []byte, ks *KeySet) (*License, error) {
	if len(data) > MaxLicenseSize {
		return nil, fmt.Errorf("license file larger than %d bytes", MaxLicenseSize)
	}
	if isJWS(data) {
		return parseJWS(data, ks)
	}
	payload, key, err := openEnvelope(data, FormatLicense, ks)
	if err != nil {
		return nil, err
	}
	l, err := parseLicensePayload(payload)
	if err != nil {
		return nil, err
	}
	if !key.Trusts(l.Product) {
		// formats.md v1.2: an unknown key_id, for this product.
		return nil, fmt.Errorf("license of product %q signed by key %s, which is not trusted for it", l.Product, key.KID)
	}
	if !key.NotAfter.IsZero() && l.IssuedAt.After(key.NotAfter) {
		return nil, fmt.Errorf("license issued at %s by key %s, past its not_after", FormatTime(l.IssuedAt), key.KID)
	}
	l.KeyID, l.Algorithm = key.KID, envelopeAlgName(key)
	return l, nil
}

func envelopeAlgName(k *Key) string {
	if k.Alg == AlgEdDSA {
		return EnvelopeEd25519
	}
	return k.Alg
}
