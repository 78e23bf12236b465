package metering

import (
	"cmp"
	"crypto/ed25519"
	"crypto/sha256"
	"slices"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/storage"
	"github.com/metrum/licensing/usage"
)

// decideBatch checks every upload of a batch, in order, each report in body order,
// over the state read under the chains' locks (usage.md section 3): the license
// exists and is the credential's; the envelope and signature, with the key bound to
// the chain (or, for a chain's first report, the host_key it carries); then seq,
// prev, period and totals against the chain's head as this batch has moved it. An
// upload stops at its first refusal; what came before in it is kept. Two uploads of
// one chain in one batch see each other: the second's copies are duplicates.
func decideBatch(st *storage.UsageState, batch []*upload) (*storage.UsageDecision, []result) {
	d := &storage.UsageDecision{}
	heads := map[entitlements.UsageChainKey]*entitlements.UsageHead{}
	head := func(k entitlements.UsageChainKey) *entitlements.UsageHead {
		if h, ok := heads[k]; ok {
			return h
		}
		return st.Heads[k]
	}
	hashes := map[storage.UsageSeq][32]byte{} // accepted in this batch
	var changed []entitlements.UsageChainKey
	results := make([]result, len(batch))
	for i, p := range batch {
		ans := &entitlements.UsageAnswer{Chains: []entitlements.UsageChainState{}}
		var touched []entitlements.UsageChainKey
		var refusal error
		for j, in := range p.reports {
			refuse := func(code string, next int64, why string) {
				refusal = entitlements.UsageRefusal(code, j, next, "report %d: %s", j, why)
			}
			lic := st.Licenses[in.key.LicenseID]
			if !p.cred.allows(lic) {
				// Unknown and foreign answer alike, before anything of the chain is read.
				refuse(entitlements.EUSAGEINVALID, 0, "license "+in.key.LicenseID+" is unknown, or not one this credential may report for")
				break
			}
			h := head(in.key)
			rep := in.rep
			if h != nil && (rep == nil || !h.SameKey(rep.Key)) {
				var err error
				if rep, err = usage.Parse(in.env, ed25519.PublicKey(h.Key)); err != nil {
					refuse(entitlements.EUSAGEINVALID, 0, safe(err))
					break
				}
			}
			if rep == nil {
				// A seq after 1 of a chain the issuer holds nothing of: no key to check it
				// with, and nothing recorded; the host needs to start from seq 1.
				refuse(entitlements.EUSAGEGAP, 1, "the issuer holds no report of chain "+in.key.InstanceID+": it needs seq 1")
				break
			}
			r := reportOf(rep)
			if err := entitlements.CheckUsageReport(r, lic, st.Now); err != nil {
				refuse(entitlements.EUSAGEINVALID, 0, err.Error())
				break
			}
			var acc *[32]byte
			if h != nil && r.Seq <= h.Seq {
				if a, ok := hashes[storage.UsageSeq{UsageChainKey: in.key, Seq: r.Seq}]; ok {
					acc = &a
				} else {
					acc = st.Accepted(in.key, r.Seq)
				}
			}
			step := entitlements.NextUsage(h, r, acc)
			switch step.Outcome {
			case entitlements.UsageAccept:
				if _, ok := heads[in.key]; !ok {
					changed = append(changed, in.key)
				}
				heads[in.key] = h.Advance(r)
				hashes[storage.UsageSeq{UsageChainKey: in.key, Seq: r.Seq}] = r.Hash
				d.Accepted = append(d.Accepted, r)
				ans.Accepted++
			case entitlements.UsageDuplicate:
				ans.Duplicates++
			case entitlements.UsageForked:
				d.Incidents = append(d.Incidents, &entitlements.UsageIncident{UsageChainKey: in.key, Kind: entitlements.IncidentFork, Seq: r.Seq, Hash: r.Hash})
				refuse(entitlements.EUSAGEFORK, 0, step.Why)
			case entitlements.UsageGapped:
				if h != nil {
					d.Incidents = append(d.Incidents, &entitlements.UsageIncident{UsageChainKey: in.key, Kind: entitlements.IncidentGap, Seq: r.Seq, NextSeq: step.NextSeq, Hash: r.Hash})
				}
				refuse(entitlements.EUSAGEGAP, step.NextSeq, step.Why)
			default:
				refuse(entitlements.EUSAGEINVALID, 0, step.Why)
			}
			if refusal != nil {
				break
			}
			if !slices.Contains(touched, in.key) {
				touched = append(touched, in.key)
			}
		}
		if refusal == nil {
			refusal = p.tail
		}
		if refusal != nil {
			results[i] = result{err: refusal}
			continue
		}
		slices.SortFunc(touched, func(a, b entitlements.UsageChainKey) int {
			return cmp.Or(cmp.Compare(a.LicenseID, b.LicenseID), cmp.Compare(a.InstanceID, b.InstanceID))
		})
		for _, k := range touched {
			ans.Chains = append(ans.Chains, entitlements.UsageChainState{LicenseID: k.LicenseID, InstanceID: k.InstanceID, LastSeq: head(k).Seq})
		}
		results[i] = result{answer: ans}
	}
	for _, k := range changed {
		d.Heads = append(d.Heads, heads[k])
	}
	return d, results
}

// reportOf is the domain's view of a verified report.
func reportOf(r *usage.Report) *entitlements.UsageReport {
	return &entitlements.UsageReport{LicenseID: r.LicenseID, Product: r.Product, InstanceID: r.InstanceID,
		Fingerprint: r.InstanceFingerprint, Seq: r.Seq, Prev: r.Prev, Start: r.Start, End: r.End, Counters: r.Counters,
		Totals: r.Totals, Reporter: r.Reporter, KeyID: r.KeyID, Key: r.Key, Envelope: r.Envelope, Hash: sha256.Sum256(r.Envelope)}
}
