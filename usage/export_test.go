package usage

import "errors"

// CloseForTest releases the folder as a crash would: no period is closed.
func (r *Recorder) CloseForTest() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.cur.Store(nil)
	return errors.Join(r.lock.Close())
}

// SetHook sets the function called at the durable-write points.
func SetHook(f func(point string)) { hook = f }

// SetSplitReports lowers the reports per body for a test; it returns the undo.
func SetSplitReports(n int) func() {
	old := splitReports
	splitReports = n
	return func() { splitReports = old }
}
