package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadFileAndEnv(t *testing.T) {
	p := filepath.Join(t.TempDir(), "issuer.yaml")
	os.WriteFile(p, []byte("server:\n  addr: 127.0.0.1:9000\nissuer:\n  name: acme-issuer\n  maker_checker: false\n"), 0o600)
	c, err := Load(p, env(map[string]string{"DATABASE_URL": "postgres://x/y", "ISSUER_NAME": "from-env"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Addr != "127.0.0.1:9000" || c.Database.URL != "postgres://x/y" || c.Issuer.Name != "from-env" || c.Issuer.MakerChecker {
		t.Fatalf("%+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownKeyAndBadValues(t *testing.T) {
	p := filepath.Join(t.TempDir(), "issuer.yaml")
	os.WriteFile(p, []byte("server:\n  adr: 1\n"), 0o600)
	if _, err := Load(p, env(nil)); err == nil || !strings.Contains(err.Error(), "adr") {
		t.Fatalf("typo not reported: %v", err)
	}
	c, _ := Load("", env(map[string]string{"ISSUER_ADDR": "nope", "ISSUER_LEASE_RENEW_URL": "http://plain"}))
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "server.addr") || !strings.Contains(err.Error(), "lease_renew_url") {
		t.Fatalf("want both problems reported, got %v", err)
	}
	if _, err := Load("", env(map[string]string{"ISSUER_MAKER_CHECKER": "maybe"})); err == nil {
		t.Fatal("bad bool accepted")
	}
}
