package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/metrum/licensing/cmd/internal/benchkit"
	"github.com/metrum/licensing/internal/storage"
)

// measurePages requests the console's usage pages as a signed-in staff member: a
// license's usage page over random seeded licenses (each its 90 days of rollups, its
// chain, warnings), the list of licenses past 80 %, the dashboard with its usage line,
// a license's billing CSV; and the dashboard of a console without usage metering (bare),
// for comparison. One unmeasured request per page first (a warm issuer).
func measurePages(ctx context.Context, store *storage.Store, base, bare, email string, o options, out io.Writer) error {
	c, err := benchkit.SignIn(base, email)
	if err != nil {
		return err
	}
	cb, err := benchkit.SignIn(bare, email)
	if err != nil {
		return err
	}
	var past80 int64
	store.Pool().QueryRow(ctx, `SELECT count(*) FROM usage_licenses WHERE permille >= 800`).Scan(&past80)
	fmt.Fprintf(out, "pages over %d licenses, %d days of rollups each, %d past 80 %%:\n", o.licenses, o.days, past80)
	fmt.Fprintf(out, "%-58s %9s %9s\n", "page", "p50 ms", "p99 ms")
	rnd := rand.New(rand.NewPCG(1, 2))
	license := func() string { return licenseID(o.hosts + 1 + rnd.IntN(o.licenses-o.hosts)) }
	pages := []struct {
		name string
		c    *http.Client
		base string
		path func() string
	}{
		{"/staff/licenses/{random}/usage", c, base, func() string { return "/staff/licenses/" + license() + "/usage" }},
		{"/staff/licenses/{random}/usage.csv", c, base, func() string { return "/staff/licenses/" + license() + "/usage.csv" }},
		{"/staff/usage", c, base, func() string { return "/staff/usage" }},
		{"/staff/ (dashboard, with the usage line)", c, base, func() string { return "/staff/" }},
		{"/staff/ (dashboard, usage metering off)", cb, bare, func() string { return "/staff/" }},
	}
	for _, pg := range pages {
		if err := getOK(pg.c, pg.base+pg.path()); err != nil {
			return err
		}
		var ds []time.Duration
		for range o.rounds {
			t0 := time.Now()
			if err := getOK(pg.c, pg.base+pg.path()); err != nil {
				return err
			}
			ds = append(ds, time.Since(t0))
		}
		slices.Sort(ds)
		fmt.Fprintf(out, "%-58s %9.1f %9.1f\n", pg.name, benchkit.MS(pct(ds, 50)), benchkit.MS(pct(ds, 99)))
	}
	return nil
}

func getOK(c *http.Client, u string) error {
	resp, err := c.Get(u)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %d", u, resp.StatusCode)
	}
	return nil
}

func pct(ds []time.Duration, p int) time.Duration { return ds[min(len(ds)-1, len(ds)*p/100)] }
