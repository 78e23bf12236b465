package usage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

type uploadStatus struct {
	lastOK  time.Time
	lastErr string
}

// sent names one report of an upload body: its chain and seq.
type sent struct {
	instance string
	seq      int64
}

// Upload sends the reports the issuer has not accepted yet, oldest first, in bodies of
// at most 1,000 reports and 4 MiB, until none is left or one is refused. It applies
// spec/usage.md section 3 to each answer: a 200 means every report sent was accepted
// or a duplicate, so all are dropped; a problem keeps the reports before its
// report_index (dropped here too) and says what went wrong with the one at it:
//   - usage-fork or usage-gap: that chain can't go on (the issuer holds other bytes
//     for one of its seqs, or lost reports it had accepted). The chain is retired and
//     its unaccepted reports are signed again, same periods and counts, as a new chain
//     with a new instance_id and host key, which the issuer records as a restart; the
//     license's counting goes on in the new chain;
//   - usage-invalid: the chain is left alone (kept for Export) and not sent again by
//     this recorder until it restarts.
//
// Only the active license's chains are sent, and those of the licenses it supersedes
// (the lease token is the active license's, and the issuer takes reports "for that
// license or one it supersedes"). Without an Uploader, Upload does nothing.
func (r *Recorder) Upload(ctx context.Context) error {
	if r.o.Uploader == nil {
		return nil
	}
	r.upMu.Lock()
	defer r.upMu.Unlock()
	for {
		r.mu.Lock()
		envs, ids, err := r.nextBody()
		r.mu.Unlock()
		if err != nil || len(envs) == 0 {
			return err
		}
		resp, err := r.o.Uploader.Upload(ctx, MarshalBatch(envs))
		if err != nil {
			r.failed(err)
			return err
		}
		_, aerr := ParseResponse(resp, len(envs))
		r.mu.Lock()
		err = r.apply(ids, aerr)
		r.mu.Unlock()
		if err != nil {
			r.failed(err)
			return err
		}
	}
}

func (r *Recorder) failed(err error) {
	r.mu.Lock()
	r.up.lastErr = err.Error()
	r.mu.Unlock()
	r.o.Logger.Warn("usage reports not uploaded; they are kept", "err", err)
}

// lineage is the active license and those it supersedes, as far as this host knows.
func (r *Recorder) lineage() []string {
	var out []string
	for id := r.st.active; id != "" && !slices.Contains(out, id); {
		l := r.st.licenses[id]
		if l == nil {
			break
		}
		out = append(out, id)
		id = l.Supersedes
	}
	slices.Reverse(out) // the oldest license's reports first
	return out
}

// nextBody is the first upload body of the reports to send.
func (r *Recorder) nextBody() ([][]byte, []sent, error) {
	var envs [][]byte
	var ids []sent
	for _, lid := range r.lineage() {
		for _, c := range r.chainsOf(lid) {
			if _, stuck := r.stuck[c.InstanceID]; stuck {
				continue
			}
			for _, rep := range c.pending {
				envs = append(envs, rep.Envelope)
				ids = append(ids, sent{c.InstanceID, rep.Seq})
			}
		}
	}
	if len(envs) == 0 {
		return nil, nil, nil
	}
	bodies, err := Split(envs)
	if err != nil {
		return nil, nil, err
	}
	return bodies[0], ids[:len(bodies[0])], nil
}

// chainsOf is the license's chains that have reports pending, in instance order.
func (r *Recorder) chainsOf(licenseID string) []*chain {
	var out []*chain
	for _, c := range r.st.chains {
		if c.LicenseID == licenseID && len(c.pending) > 0 {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *chain) int {
		if a.InstanceID < b.InstanceID {
			return -1
		}
		return 1
	})
	return out
}

// apply drops what the issuer kept and reacts to what it refused.
func (r *Recorder) apply(ids []sent, aerr error) error {
	kept := len(ids)
	var ue *UploadError
	if aerr != nil {
		if !errors.As(aerr, &ue) || ue.Code == "" {
			return aerr // nothing was kept that we know of: all stay
		}
		kept = ue.ReportIndex
	}
	for _, id := range ids[:kept] {
		c := r.st.chains[id.instance]
		c.pending = slices.DeleteFunc(c.pending, func(rep *Report) bool { return rep.Seq == id.seq })
	}
	if ue == nil {
		r.up.lastOK, r.up.lastErr = r.now(), ""
		return r.saveLocked()
	}
	bad := r.st.chains[ids[kept].instance]
	switch ue.Code {
	case CodeInvalid:
		r.stuck[bad.InstanceID] = ue.Error()
	case CodeFork, CodeGap:
		if err := r.rechain(bad); err != nil {
			return errors.Join(aerr, err)
		}
		r.o.Logger.Warn("usage chain restarted after the issuer refused it", "license_id", bad.LicenseID,
			"old_instance_id", bad.InstanceID, "new_instance_id", r.st.licenses[bad.LicenseID].Chain, "code", ue.Code)
	}
	if err := r.saveLocked(); err != nil {
		return errors.Join(aerr, err)
	}
	return aerr
}

// rechain retires c and signs its unaccepted reports again as a new chain of the same
// license (in memory; the caller saves). The new chain's reports cover the same
// periods with the same counts, so the issuer counts them once, in the new chain.
func (r *Recorder) rechain(c *chain) error {
	lic := r.st.licenses[c.LicenseID]
	nc, err := r.newChain(c.LicenseID)
	if err != nil {
		return err
	}
	for _, rep := range c.pending {
		if err := r.appendReport(nc, lic, rep.Start, rep.End, rep.Counters); err != nil {
			return fmt.Errorf("usage: re-signing report %d: %w", rep.Seq, err)
		}
	}
	c.Retired, c.pending = true, nil
	if lic.Chain == c.InstanceID {
		lic.Chain = nc.InstanceID
	}
	return nil
}

// Run closes periods on time, checkpoints the open one, and uploads (when an Uploader
// is set) after each close and, while reports are pending, with a growing pause
// after a failure, until ctx is done. It does not Close the recorder.
func (r *Recorder) Run(ctx context.Context) error {
	backoff := time.Duration(0)
	nextUpload := r.o.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if err := r.Tick(); err != nil {
			r.o.Logger.Error("usage period not closed", "err", err)
		}
		if err := r.Checkpoint(); err != nil {
			r.o.Logger.Error("usage checkpoint not written", "err", err)
		}
		now := r.o.Now()
		if r.o.Uploader != nil && !now.Before(nextUpload) && r.Status().Pending > 0 {
			uctx, cancel := context.WithTimeout(ctx, time.Minute)
			err := r.Upload(uctx)
			cancel()
			switch {
			case err == nil:
				backoff = 0
			case backoff == 0:
				backoff = 30 * time.Second
			default:
				backoff = min(2*backoff, time.Hour)
			}
			var ue *UploadError
			if errors.As(err, &ue) && ue.RetryAfter > backoff {
				backoff = ue.RetryAfter
			}
			nextUpload = now.Add(backoff)
		}
		wait := min(r.o.CheckpointEvery, r.untilBoundary(now))
		if r.o.Uploader != nil && backoff > 0 {
			wait = min(wait, max(nextUpload.Sub(now), time.Second))
		}
		t.Reset(wait)
	}
}

// untilBoundary is the time to the open period's next end.
func (r *Recorder) untilBoundary(now time.Time) time.Duration {
	p := r.cur.Load()
	if p == nil {
		return r.o.Period
	}
	return max(r.nextBoundary(now).Sub(now), time.Millisecond)
}
