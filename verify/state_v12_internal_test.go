package verify

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"
)

func fullState() *State {
	t := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	return &State{LatestSeen: t, LastValidLicense: "lic_01HZY3QK8Y0000000000000001", LastValidAt: t, LastValidGrace: time.Hour,
		LastValidExpiresAt: t.Add(48 * time.Hour), LastValidFile: []byte(`{"format":"metrum.license.v1"}`),
		EndedLicense: "lic_01HZY3QK8Y0000000000000002", EndedReason: ReasonExpired, EndedAt: t.Add(-time.Hour),
		Bundles: map[BundleScope]BundleMark{
			{"metrum", "genai-smart-router"}: {7, strings.Repeat("ab", 32)},
			{"metrum", "coresdk"}:            {2, strings.Repeat("cd", 32)},
		},
		Legacy:  BundleMark{3, strings.Repeat("ef", 32)},
		Revoked: map[string]time.Time{"lic_01HZY3QK8Y0000000000000003": t.Add(time.Hour), "lic_01HZY3QK8Y0000000000000004": {}},
	}
}

func TestStateV12RoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	want := fullState()
	if err := WriteState(path, want); err != nil {
		t.Fatal(err)
	}
	got, present, err := ReadState(path)
	if err != nil || !present || !got.Equal(want) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, got, want)
	}
	raw, _ := os.ReadFile(path)
	// Deterministic: the same state is the same bytes, whatever the map order.
	again, _ := MarshalState(got)
	if !bytes.Equal(raw, again) {
		t.Fatal("state file not deterministic")
	}
	for _, m := range []string{`"schema":3`, `"bundles":[{"issuer":"metrum","product":"coresdk"`, `"revoked":[`, `"last_valid_license_file":"`} {
		if !bytes.Contains(raw, []byte(m)) {
			t.Errorf("missing %s in %s", m, raw)
		}
	}
}

// Every new member is covered by the MAC; files a verifier would never write are
// refused even with a valid MAC.
func TestStateV12Refused(t *testing.T) {
	good, _ := MarshalState(fullState())
	edits := map[string][]byte{
		"sequence edited":     bytes.Replace(good, []byte(`"sequence":7`), []byte(`"sequence":1`), 1),
		"revoked ID dropped":  bytes.Replace(good, []byte(`{"license_id":"lic_01HZY3QK8Y0000000000000003","expires_at":"2026-06-01T13:00:00Z"},`), nil, 1),
		"kept license edited": bytes.Replace(good, []byte(`"last_valid_license_file":"ey`), []byte(`"last_valid_license_file":"ez`), 1),
	}
	for name, b := range edits {
		if bytes.Equal(b, good) {
			t.Fatalf("%s: edit did not apply", name)
		}
		if _, err := ParseState(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	macd := func(w stateWire) []byte {
		w.MAC = w.mac()
		b, _ := json.Marshal(w, json.Deterministic(true))
		return b
	}
	base := stateWire{Schema: 3, LatestSeen: "2026-06-01T12:00:00Z"}
	sha := strings.Repeat("ab", 32)
	for name, w := range map[string]stateWire{
		"schema 2 with bundles": func() stateWire {
			w := base
			w.Schema, w.Bundles = 2, []bundleMarkWire{{"metrum", "coresdk", 1, sha}}
			return w
		}(),
		"schema 2 with a kept license": func() stateWire { w := base; w.Schema, w.LastValidFile = 2, "e30"; return w }(),
		"schema 1 with revoked": func() stateWire {
			w := base
			w.Schema, w.Revoked = 1, []revokedWire{{LicenseID: "lic_01HZY3QK8Y0000000000000003"}}
			return w
		}(),
		"bundles unsorted": func() stateWire {
			w := base
			w.Bundles = []bundleMarkWire{{"metrum", "genai-smart-router", 1, sha}, {"metrum", "coresdk", 1, sha}}
			return w
		}(),
		"bundles twice": func() stateWire {
			w := base
			w.Bundles = []bundleMarkWire{{"metrum", "coresdk", 1, sha}, {"metrum", "coresdk", 2, sha}}
			return w
		}(),
		"bundle hash not hex":   func() stateWire { w := base; w.Bundles = []bundleMarkWire{{"metrum", "coresdk", 1, "xy"}}; return w }(),
		"bundle sequence zero":  func() stateWire { w := base; w.Bundles = []bundleMarkWire{{"metrum", "coresdk", 0, sha}}; return w }(),
		"bundle without issuer": func() stateWire { w := base; w.Bundles = []bundleMarkWire{{"", "coresdk", 1, sha}}; return w }(),
		"revoked not an ID":     func() stateWire { w := base; w.Revoked = []revokedWire{{LicenseID: "lic_1"}}; return w }(),
		"revoked twice": func() stateWire {
			w := base
			w.Revoked = []revokedWire{{LicenseID: "lic_01HZY3QK8Y0000000000000003"}, {LicenseID: "lic_01HZY3QK8Y0000000000000003"}}
			return w
		}(),
		"kept license not base64url": func() stateWire { w := base; w.LastValidFile = "e30="; return w }(),
		"schema 4":                   func() stateWire { w := base; w.Schema = 4; return w }(),
	} {
		if _, err := ParseState(macd(w)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ParseState(macd(base)); err != nil {
		t.Fatalf("the base case is refused: %v", err)
	}
	big := filepath.Join(t.TempDir(), "state.json")
	os.WriteFile(big, append(good, bytes.Repeat([]byte(" "), MaxStateSize)...), 0o600)
	if _, _, err := ReadState(big); err == nil {
		t.Error("an oversized state file loaded")
	}
}

func TestStateV11UpgradeKeepsItsSequenceAsLegacy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	writeV1State(t, path, stateWire{LatestSeen: "2026-06-01T12:00:00Z", BundleSequence: 4, BundleSHA256: strings.Repeat("ab", 32)})
	st, _, err := ReadState(path)
	if err != nil || st.Legacy.Sequence != 4 || len(st.Bundles) != 0 {
		t.Fatalf("%+v %v", st, err)
	}
	// Any scope without its own entry is held to the legacy mark; one with its own
	// entry is held to that.
	if m := st.mark(BundleScope{"metrum", "coresdk"}); m != st.Legacy {
		t.Fatalf("mark %+v", m)
	}
	st.Bundles = map[BundleScope]BundleMark{{"metrum", "coresdk"}: {9, strings.Repeat("cd", 32)}}
	if m := st.mark(BundleScope{"metrum", "coresdk"}); m.Sequence != 9 {
		t.Fatalf("mark %+v", m)
	}
	if err := WriteState(path, st); err != nil {
		t.Fatal(err)
	}
	back, _, err := ReadState(path)
	if err != nil || !back.Equal(st) {
		t.Fatalf("%+v %v", back, err)
	}
}
