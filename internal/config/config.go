// Package config is the issuer's one typed configuration: a YAML file (optional) with
// environment overrides, validated once in main and passed down.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is everything the issuer reads at start.
type Config struct {
	Server   Server   `yaml:"server"`
	Database Database `yaml:"database"`
	Signing  Signing  `yaml:"signing"`
	Issuer   Issuer   `yaml:"issuer"`
	Leases   Leases   `yaml:"leases"`
	Mail     Mail     `yaml:"mail"`
	Customer Customer `yaml:"customer_api"`
	Stripe   Stripe   `yaml:"stripe"`
	Metrics  Metrics  `yaml:"metrics"`
	Releases Releases `yaml:"releases"`
	Usage    Usage    `yaml:"usage"`
}

// Releases is the verifier release customers download (the portal's Downloads page
// and `GET /v1/downloads`): the folder scripts/release-verifier --out wrote.
type Releases struct {
	// Dir (ISSUER_RELEASES_DIR): empty = no downloads published (`issuer dev` uses
	// .data/releases and builds it once).
	Dir string `yaml:"dir"`
}

// Stripe turns on self-service purchase. Without a secret key purchase is hidden
// everywhere and the portal says to contact sales.
type Stripe struct {
	// SecretKey (STRIPE_SECRET_KEY) and WebhookSecret (STRIPE_WEBHOOK_SECRET): better
	// from the environment than the file.
	SecretKey     string `yaml:"secret_key"`
	WebhookSecret string `yaml:"webhook_secret"`
	// APIURL (STRIPE_API_URL): empty = Stripe; tests point it at stripe-mock.
	APIURL string `yaml:"api_url"`
	// EvaluationDomainPeriod: one free evaluation per email domain within it.
	EvaluationDomainPeriod time.Duration `yaml:"evaluation_domain_period"`
	// Catalogue is what the portal sells; empty = DefaultCatalogue.
	Catalogue []CatalogueItem `yaml:"catalogue"`
}

// Enabled reports whether purchase is on.
func (s Stripe) Enabled() bool { return s.SecretKey != "" }

// CatalogueItem is one thing for sale: a template, its kind, price and currency.
type CatalogueItem struct {
	ID       string `yaml:"id"`
	Name     string `yaml:"name"`
	Kind     string `yaml:"kind"` // evaluation, purchase, renewal, top-up
	Template string `yaml:"template"`
	// Price in the currency's minor unit (cents); an evaluation is 0.
	Price    int64  `yaml:"price"`
	Currency string `yaml:"currency"`
}

// DefaultCatalogue is sold when stripe.catalogue is empty.
var DefaultCatalogue = []CatalogueItem{
	{ID: "evaluation", Name: "72-hour evaluation", Kind: "evaluation", Template: "eval-72h", Price: 0, Currency: "usd"},
	{ID: "pilot", Name: "30-day pilot", Kind: "purchase", Template: "pilot-30d", Price: 250000, Currency: "usd"},
	{ID: "renew-pilot", Name: "Pilot renewal (30 days)", Kind: "renewal", Template: "pilot-30d", Price: 250000, Currency: "usd"},
	{ID: "renew-enterprise", Name: "Enterprise annual renewal", Kind: "renewal", Template: "enterprise-annual", Price: 4800000, Currency: "usd"},
	{ID: "credit-pack-5m", Name: "Credit pack, 5M tokens", Kind: "top-up", Template: "credit-pack-5m", Price: 50000, Currency: "usd"},
	{ID: "credit-pack-25m", Name: "Credit pack, 25M tokens", Kind: "top-up", Template: "credit-pack-25m", Price: 200000, Currency: "usd"},
}

// Mail is the SMTP server the portal's sign-in links go through. Empty SMTPAddr:
// `issuer dev` prints links to its console; `issuer serve` can't send them (inviting a
// portal user then fails with a clear error).
type Mail struct {
	SMTPAddr string `yaml:"smtp_addr"` // host:port
	From     string `yaml:"from"`
	Username string `yaml:"username"`
	// The password is never in the file: ISSUER_SMTP_PASSWORD.
}

// Customer tunes the customer download API.
type Customer struct {
	// RatePerToken and BurstPerToken bound requests per customer API token per replica.
	RatePerToken  float64 `yaml:"rate_per_token"`
	BurstPerToken int     `yaml:"burst_per_token"`
}

// Leases tunes the online lease API.
type Leases struct {
	// RatePerLicense and BurstPerLicense bound requests per authenticated license per
	// replica (lease-api.md v1.1: never keyed on an unverified token). All hosts of a
	// license share it: size the rate for the largest fleet's renewals (hosts ×
	// renewals per second). 0 turns the limit off.
	RatePerLicense  float64 `yaml:"rate_per_license"`
	BurstPerLicense int     `yaml:"burst_per_license"`
	// MaxBatch caps lease requests decided per transaction; Workers is how many
	// batches may be in flight.
	MaxBatch int `yaml:"max_batch"`
	Workers  int `yaml:"workers"`
}

// Server is the HTTP listener.
type Server struct {
	// Addr to listen on; loopback by default.
	Addr string `yaml:"addr"`
	// BaseURL is how users reach the issuer (links, cookie Secure flag when https).
	BaseURL string `yaml:"base_url"`
	// TrustedProxies are CIDRs whose X-Forwarded-For is believed for the client
	// address (sign-in throttling, download records, logs). Empty: the TCP peer.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// AllowInsecureHTTP lets `serve` listen beyond loopback with an http:// base URL
	// (a TLS-terminating proxy in front that the issuer can't see is the usual
	// reason; the cookies then lack Secure). Refused without it.
	AllowInsecureHTTP bool `yaml:"allow_insecure_http"`
	// Lifecycle: drain on SIGTERM and request deadlines (ops.go).
	Lifecycle `yaml:",inline"`
}

// Database is the Postgres connection.
type Database struct {
	// URL of the database; empty in dev = the private cluster under DataDir.
	URL string `yaml:"url"`
	// DataDir holds the dev cluster, dev keys and KEK.
	DataDir string `yaml:"data_dir"`
}

// Signing is where keys live.
type Signing struct {
	// KeyDir holds the sealed file keys (0700).
	KeyDir string `yaml:"key_dir"`
	// KEKFile holds the key-encryption key; METRUM_KEK (base64) overrides it.
	KEKFile string `yaml:"kek_file"`
	// PKCS11 is the optional hardware backend (issuer built with -tags pkcs11).
	PKCS11 PKCS11 `yaml:"pkcs11"`
}

// PKCS11 selects a PKCS#11 token. Its PIN is never in the file: METRUM_PKCS11_PIN, or
// the file named by pin_file.
type PKCS11 struct {
	Module     string `yaml:"module"`
	TokenLabel string `yaml:"token_label"`
	PinFile    string `yaml:"pin_file"`
}

// Enabled reports whether a token is configured.
func (p PKCS11) Enabled() bool { return p.Module != "" }

// Issuer is the issuing policy.
type Issuer struct {
	// Name is the `issuer` member of payloads.
	Name string `yaml:"name"`
	// LeaseRenewURL is written into licenses that require an online lease.
	LeaseRenewURL string `yaml:"lease_renew_url"`
	// MakerChecker requires the approver of an entitlement not to be its creator.
	MakerChecker bool `yaml:"maker_checker"`
	// BundleTTL is how long a revocation bundle is current; it is re-published at half.
	BundleTTL time.Duration `yaml:"bundle_ttl"`
	// BundleRetention: bundles stop listing licenses that expired longer ago.
	BundleRetention time.Duration `yaml:"bundle_retention"`
	// BundleCheckInterval is how often the running issuer checks whether a bundle is due.
	BundleCheckInterval time.Duration `yaml:"bundle_check_interval"`
	// Changeover is how long a replaced license keeps working after its successor is
	// issued, unless the successor sets its own.
	Changeover time.Duration `yaml:"changeover"`
	// CoreSDKIssuer is the `iss` claim of CoreSDK tokens.
	CoreSDKIssuer string `yaml:"coresdk_issuer"`
}

// Default is the configuration with nothing set.
func Default() *Config {
	return &Config{
		Server:   Server{Addr: "127.0.0.1:8080", Lifecycle: DefaultLifecycle},
		Database: Database{DataDir: ".data"},
		Leases:   Leases{RatePerLicense: 50, BurstPerLicense: 500, MaxBatch: 256, Workers: 2},
		Mail:     Mail{From: "Metrum licensing <licensing@metrum.local>"},
		Customer: Customer{RatePerToken: 10, BurstPerToken: 100},
		Stripe:   Stripe{EvaluationDomainPeriod: 90 * 24 * time.Hour},
		Usage:    DefaultUsage,
		Issuer: Issuer{Name: "metrum", MakerChecker: true, BundleTTL: 7 * 24 * time.Hour, BundleRetention: 90 * 24 * time.Hour,
			BundleCheckInterval: time.Minute, Changeover: 72 * time.Hour, CoreSDKIssuer: "https://licensing.coresdk.io"},
	}
}

// Load reads path (if not empty) over the defaults, then the environment:
// ISSUER_ADDR, ISSUER_BASE_URL, DATABASE_URL, ISSUER_DATA_DIR, ISSUER_KEY_DIR,
// ISSUER_KEK_FILE, ISSUER_NAME, ISSUER_LEASE_RENEW_URL, ISSUER_MAKER_CHECKER, ISSUER_SMTP_ADDR,
// ISSUER_SMTP_FROM, ISSUER_SMTP_USERNAME (and ISSUER_SMTP_PASSWORD, read where used), ISSUER_RELEASES_DIR.
// Unknown YAML keys are an error, so a typo can't silently fall back to a default.
func Load(path string, getenv func(string) string) (*Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	set := func(dst *string, key string) {
		if v := getenv(key); v != "" {
			*dst = v
		}
	}
	set(&c.Server.Addr, "ISSUER_ADDR")
	set(&c.Server.BaseURL, "ISSUER_BASE_URL")
	set(&c.Database.URL, "DATABASE_URL")
	set(&c.Database.DataDir, "ISSUER_DATA_DIR")
	set(&c.Signing.KeyDir, "ISSUER_KEY_DIR")
	set(&c.Signing.KEKFile, "ISSUER_KEK_FILE")
	set(&c.Signing.PKCS11.Module, "ISSUER_PKCS11_MODULE")
	set(&c.Signing.PKCS11.TokenLabel, "ISSUER_PKCS11_TOKEN")
	set(&c.Signing.PKCS11.PinFile, "ISSUER_PKCS11_PIN_FILE")
	set(&c.Issuer.Name, "ISSUER_NAME")
	set(&c.Issuer.LeaseRenewURL, "ISSUER_LEASE_RENEW_URL")
	if v := getenv("ISSUER_ALLOW_INSECURE_HTTP"); v == "1" || v == "true" {
		c.Server.AllowInsecureHTTP = true
	}
	set(&c.Stripe.SecretKey, "STRIPE_SECRET_KEY")
	set(&c.Stripe.WebhookSecret, "STRIPE_WEBHOOK_SECRET")
	set(&c.Stripe.APIURL, "STRIPE_API_URL")
	if c.Stripe.Enabled() && len(c.Stripe.Catalogue) == 0 {
		c.Stripe.Catalogue = DefaultCatalogue
	}
	set(&c.Releases.Dir, "ISSUER_RELEASES_DIR")
	set(&c.Mail.SMTPAddr, "ISSUER_SMTP_ADDR")
	set(&c.Mail.From, "ISSUER_SMTP_FROM")
	set(&c.Mail.Username, "ISSUER_SMTP_USERNAME")
	loadOps(c, getenv)
	if v := getenv("ISSUER_MAKER_CHECKER"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("config: ISSUER_MAKER_CHECKER=%q is not true or false", v)
		}
		c.Issuer.MakerChecker = b
	}
	if c.Signing.KeyDir == "" {
		c.Signing.KeyDir = c.Database.DataDir + "/keys"
	}
	if c.Signing.KEKFile == "" && getenv("METRUM_KEK") == "" {
		c.Signing.KEKFile = c.Database.DataDir + "/kek"
	}
	if c.Server.BaseURL == "" {
		c.Server.BaseURL = "http://" + c.Server.Addr
	}
	if c.Issuer.LeaseRenewURL == "" && strings.HasPrefix(c.Server.BaseURL, "https://") {
		c.Issuer.LeaseRenewURL = strings.TrimSuffix(c.Server.BaseURL, "/") + "/v1/leases"
	}
	return c, nil
}

// Validate checks the whole configuration and reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Server.Addr); err != nil {
		errs = append(errs, fmt.Errorf("server.addr %q: want host:port", c.Server.Addr))
	}
	if u, err := url.Parse(c.Server.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("server.base_url %q: want an http(s) URL", c.Server.BaseURL))
	}
	for _, p := range c.Server.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil {
			errs = append(errs, fmt.Errorf("server.trusted_proxies: %q is not a CIDR", p))
		}
	}
	if c.Issuer.Name == "" {
		errs = append(errs, errors.New("issuer.name must not be empty"))
	}
	if c.Issuer.LeaseRenewURL != "" {
		if u, err := url.Parse(c.Issuer.LeaseRenewURL); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Errorf("issuer.lease_renew_url %q: licenses only carry https:// renew URLs", c.Issuer.LeaseRenewURL))
		}
	}
	if c.Issuer.BundleTTL < time.Hour {
		errs = append(errs, errors.New("issuer.bundle_ttl must be at least 1h"))
	}
	if c.Leases.RatePerLicense < 0 || c.Leases.BurstPerLicense < 0 || c.Leases.MaxBatch < 1 || c.Leases.Workers < 1 {
		errs = append(errs, errors.New("leases: rate_per_license and burst_per_license must be ≥ 0, max_batch and workers ≥ 1"))
	}
	if c.Mail.SMTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.Mail.SMTPAddr); err != nil {
			errs = append(errs, fmt.Errorf("mail.smtp_addr %q: want host:port", c.Mail.SMTPAddr))
		}
	}
	if !strings.Contains(c.Mail.From, "@") || strings.ContainsAny(c.Mail.From, "\r\n") {
		errs = append(errs, fmt.Errorf("mail.from %q: want an address", c.Mail.From))
	}
	if c.Stripe.Enabled() {
		if c.Stripe.WebhookSecret == "" {
			errs = append(errs, errors.New("stripe.webhook_secret (STRIPE_WEBHOOK_SECRET) is required with a secret key: webhooks are how payments are confirmed"))
		}
		if c.Stripe.APIURL != "" {
			if u, err := url.Parse(c.Stripe.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fmt.Errorf("stripe.api_url %q: want an http(s) URL", c.Stripe.APIURL))
			}
		}
		if c.Stripe.EvaluationDomainPeriod < 0 {
			errs = append(errs, errors.New("stripe.evaluation_domain_period must not be negative"))
		}
		seen := map[string]bool{}
		for _, it := range c.Stripe.Catalogue {
			if err := it.validate(); err != nil {
				errs = append(errs, err)
			}
			if seen[it.ID] {
				errs = append(errs, fmt.Errorf("stripe.catalogue: %q is listed twice", it.ID))
			}
			seen[it.ID] = true
		}
	}
	if c.Customer.RatePerToken < 0 || c.Customer.BurstPerToken < 0 {
		errs = append(errs, errors.New("customer_api: rate_per_token and burst_per_token must be ≥ 0"))
	}
	if c.Issuer.BundleRetention < 0 || c.Issuer.Changeover < 0 {
		errs = append(errs, errors.New("issuer.bundle_retention and issuer.changeover must not be negative"))
	}
	if c.Issuer.BundleCheckInterval < time.Second || c.Issuer.BundleCheckInterval > c.Issuer.BundleTTL/4 {
		errs = append(errs, errors.New("issuer.bundle_check_interval must be between 1s and a quarter of issuer.bundle_ttl"))
	}
	if c.Signing.KeyDir == "" {
		errs = append(errs, errors.New("signing.key_dir must be set"))
	}
	if p := c.Signing.PKCS11; p.Enabled() && p.TokenLabel == "" {
		errs = append(errs, errors.New("signing.pkcs11.token_label must be set when signing.pkcs11.module is"))
	}
	errs = append(errs, c.validateOps()...)
	errs = append(errs, c.validateUsage()...)
	return errors.Join(errs...)
}

// TrustedProxyNets parses TrustedProxies (Validate has checked them).
func (s Server) TrustedProxyNets() []*net.IPNet {
	var out []*net.IPNet
	for _, p := range s.TrustedProxies {
		if _, n, err := net.ParseCIDR(p); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func (it CatalogueItem) validate() error {
	switch {
	case it.ID == "" || it.Name == "" || it.Template == "":
		return fmt.Errorf("stripe.catalogue: every item needs id, name and template (%+v)", it)
	case it.Kind != "evaluation" && it.Kind != "purchase" && it.Kind != "renewal" && it.Kind != "top-up":
		return fmt.Errorf("stripe.catalogue %s: kind is evaluation, purchase, renewal or top-up", it.ID)
	case it.Price < 0 || (it.Kind == "evaluation") != (it.Price == 0):
		return fmt.Errorf("stripe.catalogue %s: an evaluation is free, everything else has a positive price", it.ID)
	case len(it.Currency) != 3 || strings.ToLower(it.Currency) != it.Currency:
		return fmt.Errorf("stripe.catalogue %s: currency is a lower-case ISO 4217 code such as usd", it.ID)
	}
	return nil
}
