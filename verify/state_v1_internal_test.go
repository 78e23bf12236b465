package verify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
)

// writeV1State writes a state file exactly as a v1 verifier did: schema 1, no
// expires_at in the observation, MAC over those members.
func writeV1State(t *testing.T, path string, w stateWire) {
	t.Helper()
	w.Schema = 1
	w.MAC = w.mac()
	b, err := json.Marshal(w, json.Deterministic(true))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestV1StateLoadsAndUpgrades(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	seen := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	writeV1State(t, path, stateWire{LatestSeen: FormatTime(seen), LastValidLicense: "lic_01HZY3QK8Y0000000000000001",
		LastValidAt: FormatTime(seen), LastValidGrace: 86400, BundleSequence: 3, BundleSHA256: strings.Repeat("ab", 32)})
	if raw, _ := os.ReadFile(path); strings.Contains(string(raw), "expires_at") {
		t.Fatalf("a v1 state file has no expires_at: %s", raw)
	}
	st, present, err := ReadState(path)
	if err != nil || !present {
		t.Fatalf("v1 state file did not load: %v", err)
	}
	if st.LastValidLicense == "" || st.LastValidGrace != 24*time.Hour || !st.LastValidExpiresAt.IsZero() || st.Legacy.Sequence != 3 {
		t.Fatalf("v1 state read wrong: %+v", st)
	}
	// The next write is schema 3 and still loads.
	st.LatestSeen = seen.Add(time.Minute)
	st.LastValidExpiresAt = seen.Add(48 * time.Hour)
	if err := WriteState(path, st); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if !strings.Contains(string(raw), `"schema":3`) || !strings.Contains(string(raw), `"last_valid_expires_at"`) {
		t.Fatalf("not upgraded: %s", raw)
	}
	st2, _, err := ReadState(path)
	if err != nil || !st2.LastValidExpiresAt.Equal(st.LastValidExpiresAt) {
		t.Fatalf("upgraded state: %+v %v", st2, err)
	}
}

func TestStateSchemaMismatchIsIntegrityFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	// A schema 1 file carrying schema 2 members, MAC valid: refused.
	writeV1State(t, path, stateWire{LatestSeen: "2026-06-01T12:00:00Z", LastValidExpiresAt: "2026-07-01T00:00:00Z"})
	if _, _, err := ReadState(path); err == nil {
		t.Fatal("schema 1 with an expires_at member loaded")
	}
	w := stateWire{Schema: 4, LatestSeen: "2026-06-01T12:00:00Z"}
	w.MAC = w.mac()
	b, _ := json.Marshal(w)
	os.WriteFile(path, b, 0o600)
	if _, _, err := ReadState(path); err == nil {
		t.Fatal("schema 4 loaded")
	}
}
