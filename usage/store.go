package usage

import (
	"cmp"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/metrum/licensing/verify"
)

// Files in a recorder's folder. The state file is the one record of every chain and
// every report not yet accepted: each change is one atomic rename of it, so a crash
// leaves the state before the change or after, never half of one. The checkpoint
// holds the open period's counts; it counts only while its period is the state's open
// one, so it can never add a period twice. Host keys sit beside them.
const (
	stateName      = "usage-state.json"
	checkpointName = "usage-open.json"
	keysDir        = "keys"
)

// stateWire is the state file (schema 1).
type stateWire struct {
	Schema   int64         `json:"schema"`
	Active   string        `json:"active_license_id,omitempty"`
	Licenses []licenseWire `json:"licenses"`
	Chains   []chainWire   `json:"chains"`
}

// licenseWire is what the host counted for one license, over all its chains.
type licenseWire struct {
	LicenseID   string `json:"license_id"`
	Product     string `json:"product"`
	Fingerprint string `json:"instance_fingerprint,omitempty"`
	Supersedes  string `json:"supersedes,omitempty"`
	ExpiresAt   string `json:"expires_at"`
	// TokenBudget and WindowSeconds are the license's token_budget (absent: none) and
	// usage_window_seconds, kept so that counting after a restart is never unlimited
	// before the license is checked again.
	TokenBudget   *int64 `json:"token_budget,omitempty"`
	WindowSeconds int64  `json:"usage_window_seconds,omitempty"`
	// Chain is the instance_id of the chain that gets this license's next report.
	Chain string `json:"chain"`
	// OpenStart is when the license's open period began: its chain's last period_end.
	OpenStart string `json:"open_start"`
	// Tokens is the sum of tokens over every closed period: the term's consumption.
	Tokens int64 `json:"tokens"`
	// Window holds the closed periods' tokens, kept while a rolling usage window may
	// still include them.
	Window []windowWire `json:"window,omitempty"`
}

func (l *licenseWire) budget() (int64, time.Duration) {
	b := int64(-1)
	if l.TokenBudget != nil {
		b = *l.TokenBudget
	}
	return b, time.Duration(l.WindowSeconds) * time.Second
}

func (l *licenseWire) setBudget(budget int64, window time.Duration) {
	l.TokenBudget = nil
	if budget >= 0 {
		l.TokenBudget = &budget
	}
	l.WindowSeconds = int64(window / time.Second)
}

type windowWire struct {
	End    string `json:"end"`
	Tokens int64  `json:"tokens"`
}

// chainWire is one chain: its head and the reports the issuer has not accepted yet.
type chainWire struct {
	LicenseID  string           `json:"license_id"`
	InstanceID string           `json:"instance_id"`
	KeyID      string           `json:"key_id"`
	Seq        int64            `json:"seq"`
	Last       string           `json:"last,omitempty"`
	LastEnd    string           `json:"last_end,omitempty"`
	Totals     map[string]int64 `json:"totals"`
	// Retired: given up after the issuer answered usage-fork or usage-gap; its
	// unaccepted reports went on in a new chain. Kept so its instance is never reused.
	Retired bool `json:"retired,omitempty"`
	// Pending are the exact envelopes, oldest first, not yet accepted.
	Pending []string `json:"pending"`
}

// checkpointWire is the open period's counts.
type checkpointWire struct {
	LicenseID   string           `json:"license_id"`
	PeriodStart string           `json:"period_start"`
	Counters    map[string]int64 `json:"counters"`
}

// chain is a chain in memory: its wire form, its key and its parsed pending reports.
type chain struct {
	chainWire
	key     ed25519.PrivateKey // nil for a retired chain without its key
	pending []*Report
}

// state is the recorder's durable state in memory.
type state struct {
	active   string
	licenses map[string]*licenseWire
	chains   map[string]*chain // by instance_id
}

func (s *state) wire() *stateWire {
	w := &stateWire{Schema: 1, Active: s.active, Licenses: []licenseWire{}, Chains: []chainWire{}}
	for _, l := range s.licenses {
		w.Licenses = append(w.Licenses, *l)
	}
	slices.SortFunc(w.Licenses, func(a, b licenseWire) int { return cmp.Compare(a.LicenseID, b.LicenseID) })
	for _, c := range s.chains {
		cw := c.chainWire
		cw.Pending = make([]string, len(c.pending))
		for i, r := range c.pending {
			cw.Pending[i] = string(r.Envelope)
		}
		w.Chains = append(w.Chains, cw)
	}
	slices.SortFunc(w.Chains, func(a, b chainWire) int {
		return cmp.Or(cmp.Compare(a.LicenseID, b.LicenseID), cmp.Compare(a.InstanceID, b.InstanceID))
	})
	return w
}

// load reads the state and verifies every pending report against its chain: a state
// whose reports don't verify or don't continue their chain is refused, not repaired,
// since starting over would forget what was counted. withKeys also loads the private
// keys of the chains that will write again (export needs none).
func load(dir string, withKeys bool) (*state, error) {
	s := &state{licenses: map[string]*licenseWire{}, chains: map[string]*chain{}}
	data, err := os.ReadFile(filepath.Join(dir, stateName))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	var w stateWire
	if err := verify.DecodeStrict(data, &w); err != nil {
		return nil, fmt.Errorf("usage state %s: %s", filepath.Join(dir, stateName), verify.SafeError(err))
	}
	if w.Schema != 1 {
		return nil, fmt.Errorf("usage state: schema %d is not 1", w.Schema)
	}
	s.active = w.Active
	for i := range w.Licenses {
		l := w.Licenses[i]
		s.licenses[l.LicenseID] = &l
	}
	for _, cw := range w.Chains {
		c := &chain{chainWire: cw}
		pub, err := c.publicKey(dir, withKeys && !cw.Retired)
		if err != nil {
			return nil, err
		}
		if c.pending, err = verifyPending(cw, pub); err != nil {
			return nil, fmt.Errorf("usage state: chain %s: %w", cw.InstanceID, err)
		}
		c.Pending = nil // the parsed reports are the truth from here; wire() writes them back
		s.chains[cw.InstanceID] = c
	}
	for _, l := range s.licenses {
		if c := s.chains[l.Chain]; c == nil || c.Retired || c.LicenseID != l.LicenseID {
			return nil, fmt.Errorf("usage state: license %s has no active chain", l.LicenseID)
		}
	}
	if _, ok := s.licenses[s.active]; s.active != "" && !ok {
		return nil, errors.New("usage state: the active license is not in it")
	}
	return s, nil
}

// publicKey returns the chain's public key: from the private key file when it is
// needed (and then kept on c), otherwise from its first pending report, if any.
func (c *chain) publicKey(dir string, needPrivate bool) (ed25519.PublicKey, error) {
	if needPrivate {
		k, err := readKey(dir, c.KeyID)
		if err != nil {
			return nil, fmt.Errorf("usage state: chain %s: host key: %w", c.InstanceID, err)
		}
		c.key = k
		return k.Public().(ed25519.PublicKey), nil
	}
	if len(c.chainWire.Pending) == 0 {
		return nil, nil
	}
	// The key bound at seq 1 signs every report; without the private key at hand, the
	// first pending one names it only when it is seq 1, else the key file does.
	if k, err := readKey(dir, c.KeyID); err == nil {
		return k.Public().(ed25519.PublicKey), nil
	}
	r, err := Parse([]byte(c.chainWire.Pending[0]), nil)
	if err != nil {
		return nil, fmt.Errorf("usage state: chain %s: its host key file is missing", c.InstanceID)
	}
	return r.Key, nil
}

func verifyPending(cw chainWire, pub ed25519.PublicKey) ([]*Report, error) {
	var out []*Report
	for _, e := range cw.Pending {
		r, err := Parse([]byte(e), pub)
		if err != nil {
			return nil, err
		}
		if r.LicenseID != cw.LicenseID || r.InstanceID != cw.InstanceID || r.KeyID != cw.KeyID {
			return nil, errors.New("a pending report of another chain")
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, nil
	}
	// The reports before the first pending one were accepted and dropped; the rules
	// between the pending ones still hold, and the last is the head.
	if err := CheckChain(out[0], out[1:]); err != nil {
		return nil, err
	}
	last := out[len(out)-1]
	if last.Seq != cw.Seq || last.Hash() != cw.Last || verify.FormatTime(last.End) != cw.LastEnd || !maps.Equal(last.Totals, cw.Totals) {
		return nil, errors.New("the head does not match its last pending report")
	}
	return out, nil
}

// save writes the state atomically (temp file, fsync, rename, fsync of the folder).
func save(dir string, s *state) error {
	data, err := json.Marshal(s.wire(), json.Deterministic(true))
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, stateName), append(data, '\n'))
}

// hook is called at the named points of a durable write; tests set it to kill the
// process there and prove that a crash loses and doubles nothing.
var hook = func(point string) {}

// writeAtomic is verify.WriteFileAtomic with the hook between writing and renaming.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	hook("before-rename:" + filepath.Base(path))
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // the rename itself is durable only once the folder is synced
		d.Close()
	}
	hook("after-rename:" + filepath.Base(path))
	return nil
}

// removeTemps deletes the temp files of writes a crash interrupted.
func removeTemps(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), ".tmp-") {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

func readCheckpoint(dir string) (*checkpointWire, error) {
	data, err := os.ReadFile(filepath.Join(dir, checkpointName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c checkpointWire
	if err := verify.DecodeStrict(data, &c); err != nil {
		return nil, fmt.Errorf("usage checkpoint: %s", verify.SafeError(err))
	}
	for k, v := range c.Counters {
		if !counterName.MatchString(k) || v < 0 {
			return nil, errors.New("usage checkpoint: a counter is malformed")
		}
	}
	return &c, nil
}

func writeCheckpoint(dir string, c *checkpointWire) error {
	data, err := json.Marshal(c, json.Deterministic(true))
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, checkpointName), append(data, '\n'))
}

// newKey makes a host key and writes it, 0600, before anything it signs exists.
func newKey(dir string) (ed25519.PrivateKey, string, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, "", err
	}
	kid := KeyID(priv.Public().(ed25519.PublicKey))
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, "", err
	}
	kd := filepath.Join(dir, keysDir)
	if err := os.MkdirAll(kd, 0o700); err != nil {
		return nil, "", err
	}
	if err := writeAtomic(filepath.Join(kd, kid+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return nil, "", err
	}
	return priv, kid, nil
}

func readKey(dir, kid string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(filepath.Join(dir, keysDir, kid+".key"))
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	priv, ok := k.(ed25519.PrivateKey)
	if err != nil || !ok || KeyID(priv.Public().(ed25519.PublicKey)) != kid {
		return nil, errors.New("not the Ed25519 key its name says")
	}
	return priv, nil
}
