package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/metrum/licensing/verify"
)

// tokenEnv is CoreSDK's license variable: the token when neither --license nor
// --token is given.
const tokenEnv = "CORESDK_LICENSE_TOKEN"

// checkFlags are the flags verify, install and status share (formats.md section 8).
type checkFlags struct {
	license, token, product, fp, bundle, lease, state, keyset, now string
	features                                                       multi
	limits                                                         limits
	requireCurrent, failClosed, asJSON                             bool
}

func (c *checkFlags) register(fs *flag.FlagSet) {
	c.limits = limits{}
	fs.StringVar(&c.license, "license", "", "license file (license.json or license.jwk)")
	fs.StringVar(&c.token, "token", "", "a CoreSDK license token itself, instead of --license (default: $"+tokenEnv+")")
	fs.StringVar(&c.product, "product", "", "expected product (absent: no product check)")
	fs.StringVar(&c.fp, "instance-fingerprint", "", "this host's instance fingerprint")
	fs.Var(&c.features, "feature", "a feature that must be licensed (repeatable)")
	fs.Var(c.limits, "limit", "NAME=VALUE: a value that must be within the licensed limit (repeatable)")
	fs.StringVar(&c.bundle, "revocation", "", "revocation bundle file (turns revocation mode to file)")
	fs.BoolVar(&c.requireCurrent, "require-current-bundle", false, "block unless a current revocation bundle is present (turns revocation mode to file)")
	fs.BoolVar(&c.failClosed, "fail-closed-on-bundle-error", false, "block when the bundle is malformed, expired, untrusted or rolled back")
	fs.StringVar(&c.lease, "lease", "", "lease file")
	fs.StringVar(&c.state, "state", "", "state file (clock-rollback, grace and bundle-rollback memory)")
	fs.StringVar(&c.keyset, "keyset", "", "trusted key set (default: the embedded release key set)")
	fs.StringVar(&c.now, "now", "", "evaluate at this time, RFC 3339 (default: the system clock)")
	fs.BoolVar(&c.asJSON, "json", false, "print one JSON object")
}

// options builds the verification: the license from --license, --token or the
// environment (exactly one), the keys, the time.
func (c *checkFlags) options() (verify.Options, time.Time, error) {
	o := verify.Options{Product: c.product, InstanceFingerprint: c.fp, Features: c.features, Limits: c.limits,
		BundlePath: c.bundle, RequireCurrent: c.requireCurrent, FailClosed: c.failClosed, LeasePath: c.lease, StatePath: c.state}
	switch {
	case c.license != "" && c.token != "":
		return o, time.Time{}, usageError{"give --license FILE or --token TOKEN, not both"}
	case c.license != "":
		o.LicensePath = c.license
	case c.token != "":
		o.License = []byte(c.token)
	case os.Getenv(tokenEnv) != "":
		o.License = []byte(os.Getenv(tokenEnv))
	default:
		return o, time.Time{}, usageError{"--license FILE or --token TOKEN (or $" + tokenEnv + ") is required"}
	}
	ks, err := loadKeySet(c.keyset, true)
	if err != nil {
		return o, time.Time{}, err
	}
	t, err := parseNow(c.now)
	if err != nil {
		return o, time.Time{}, err
	}
	// Revocation mode is file when --revocation or --require-current-bundle is given
	// (formats.md v1.2, section 8): Verify derives it from BundlePath and RequireCurrent.
	o.KeySet, o.Now = ks, t
	return o, t, nil
}

// licenseBytes is what install writes: the file's bytes, or the token and a newline
// (a license.jwk is the token on one line).
func licenseBytes(o verify.Options) ([]byte, error) {
	if o.LicensePath != "" {
		return readLimited(o.LicensePath, verify.MaxLicenseSize)
	}
	return append(append([]byte{}, o.License...), '\n'), nil
}

// expiresText is "2027-03-19 (365 days)": the date in layout and the calendar days
// from now to it (verify.DaysUntil), so the two always agree; past it, how long ago.
func expiresText(now, exp time.Time, layout string) string {
	date := exp.UTC().Format(layout)
	d := verify.DaysUntil(now, exp)
	switch {
	case !now.Before(exp) && d == 0:
		return date + " (expired today)"
	case !now.Before(exp) && d == -1:
		return date + " (expired 1 day ago)"
	case !now.Before(exp):
		return fmt.Sprintf("%s (expired %d days ago)", date, -d)
	case d == 0:
		return date + " (today)"
	case d == 1:
		return date + " (1 day)"
	}
	return fmt.Sprintf("%s (%d days)", date, d)
}

// dateOnly and dateTime are expiresText's layouts: CoreSDK's shape, and ours.
const (
	dateOnly = "2006-01-02"
	dateTime = "2006-01-02 15:04 UTC"
)
