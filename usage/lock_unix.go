//go:build unix

package usage

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive lock on the folder, so that two recorders (two router
// processes given one --usage-dir) can't both extend one chain, which the issuer
// would see as a fork. The kernel drops the lock when the process dies, however it
// dies.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "usage.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errors.New("usage: another recorder is using " + dir)
		}
		return nil, err
	}
	return f, nil
}
