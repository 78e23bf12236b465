package verify

import (
	"os"

	"github.com/go-json-experiment/json"
)

// StateWire lets the external tests write state files of older schemas, as an older
// verifier did, with a valid MAC.
type StateWire = stateWire

// WriteStateWire writes w as a state file with its MAC, exactly as given otherwise.
func WriteStateWire(path string, w StateWire) error {
	w.MAC = w.mac()
	b, err := json.Marshal(w, json.Deterministic(true))
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
