//go:build !unix

package usage

import (
	"os"
	"path/filepath"
)

// lockDir on systems without flock only creates the lock file: one recorder per
// folder is then the operator's to ensure (the reference router runs on Linux).
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "usage.lock"), os.O_CREATE|os.O_RDWR, 0o600)
}
