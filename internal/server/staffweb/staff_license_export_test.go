package staffweb

import (
	"bytes"
	"encoding/csv"
	"testing"

	"github.com/metrum/licensing/internal/templates"
	"github.com/metrum/licensing/web/ui"
)

// TestSafeCell: a cell a spreadsheet would run as a formula gets a leading quote;
// anything else is left as it is, and encoding/csv quotes what RFC 4180 needs.
func TestSafeCell(t *testing.T) {
	for in, want := range map[string]string{"=1+1": "'=1+1", "+1-555": "'+1-555", "-2": "'-2", "@SUM(A1)": "'@SUM(A1)",
		"\tx": "'\tx", "\rx": "'\rx", "Acme Corp": "Acme Corp", "": "", "PO-2026-0042": "PO-2026-0042", "a=b": "a=b"} {
		if got := safeCell(in); got != want {
			t.Errorf("safeCell(%q) = %q, want %q", in, got, want)
		}
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.UseCRLF = true
	_ = w.Write([]string{safeCell(`=HYPERLINK("http://x","y"), Inc`), "plain"})
	w.Flush()
	if got, want := b.String(), "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\"), Inc\",plain\r\n"; got != want {
		t.Fatalf("CSV line %q, want %q", got, want)
	}
}

// TestEveryTermHasAName: each feature and limit a template can grant has a name for
// people in web/ui's tables.
func TestEveryTermHasAName(t *testing.T) {
	for _, tp := range templates.All() {
		terms := append(append([]string{}, tp.Features...), tp.AllowedFeatures...)
		terms = append(terms, tp.OverridableLimits...)
		for l := range tp.Limits {
			terms = append(terms, l)
		}
		for _, w := range terms {
			if !ui.Named(w) {
				t.Errorf("%s of %s has no name for people", w, tp.Key())
			}
		}
	}
	if ui.Named("max_widgets") {
		t.Fatal("an unknown term is named")
	}
}
