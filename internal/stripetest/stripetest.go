// Package stripetest runs stripe-mock (installed by scripts/setup --test with go
// install) on loopback for tests. stripe-mock keeps no state and sends no webhooks:
// tests sign their own events with stripe-go's webhook.GenerateTestSignedPayload.
package stripetest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Version is the stripe-mock that speaks stripe-go v76's API version (2023-10-16).
const Version = "v0.183.0"

// PaidFixtures is the project's copy of stripe-mock's bundled fixtures with the
// Checkout Session edited to paid and complete, amount_total 250000 usd (the default
// catalogue's pilot), so the success page sees a paid session.
func PaidFixtures() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata", "fixtures-paid.json")
}

// Start runs stripe-mock, with fixtures replacing its bundled ones when not "", and
// returns its http URL. Without the binary the test fails in CI (CI=true) and is
// skipped elsewhere, saying how to install it.
func Start(t testing.TB, fixtures string) string {
	t.Helper()
	bin := find()
	if bin == "" {
		msg := "stripe-mock not installed: run scripts/setup --test (go install github.com/stripe/stripe-mock@" + Version + ")"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	httpAddr, httpsAddr := freeAddr(t), freeAddr(t)
	args := []string{"-http-addr", httpAddr, "-https-addr", httpsAddr}
	if fixtures != "" {
		args = append(args, "-fixtures", fixtures)
	}
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", httpAddr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return "http://" + httpAddr
		}
		if time.Now().After(deadline) {
			t.Fatalf("stripe-mock did not start on %s", httpAddr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func find() string {
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p
	}
	var dirs []string
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		f := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(f) == 2 {
			if f[0] != "" {
				dirs = append(dirs, f[0])
			}
			for _, p := range filepath.SplitList(f[1]) {
				dirs = append(dirs, filepath.Join(p, "bin"))
			}
		}
	}
	for _, d := range dirs {
		if p := filepath.Join(d, "stripe-mock"); fileExists(p) {
			return p
		}
	}
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
