package usage

import (
	"cmp"
	"slices"
)

// Export reads a recorder's folder, without taking it over (a running router may hold
// it: every state write is one atomic rename, so a reader sees a whole state), and
// returns the upload bodies ({"reports": […]}, spec/usage.md section 3) of the reports
// not yet accepted, with seq > since, in chain order: one body unless more are pending
// than one body holds (1,000 reports, 4 MiB). Every report is verified against its
// chain's key and the chain rules before it is exported, so a damaged folder is an
// error here rather than a refusal at the issuer.
func Export(dir string, since int64) (bodies [][]byte, reports int, err error) {
	st, err := load(dir, false)
	if err != nil {
		return nil, 0, err
	}
	chains := make([]*chain, 0, len(st.chains))
	for _, c := range st.chains {
		chains = append(chains, c)
	}
	slices.SortFunc(chains, func(a, b *chain) int {
		return cmp.Or(cmp.Compare(a.LicenseID, b.LicenseID), cmp.Compare(a.InstanceID, b.InstanceID))
	})
	var envs [][]byte
	for _, c := range chains {
		for _, r := range c.pending {
			if r.Seq > since {
				envs = append(envs, r.Envelope)
			}
		}
	}
	if len(envs) == 0 {
		return nil, 0, nil
	}
	parts, err := Split(envs)
	if err != nil {
		return nil, 0, err
	}
	for _, p := range parts {
		bodies = append(bodies, MarshalBatch(p))
	}
	return bodies, len(envs), nil
}
