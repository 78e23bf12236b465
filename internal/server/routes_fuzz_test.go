package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzRoutes drives the real handler, over a real database, with arbitrary route
// parameters and queries, as a signed-in admin and as nobody: bad input is a 4xx,
// never a 5xx.
func FuzzRoutes(f *testing.F) {
	e := mustServer(f)
	admin := client(f)
	e.mustLogin(f, admin, "admin@m.test", password)
	for _, seed := range [][3]string{
		{"staff/licenses", "%FF", "customer=%00&expiring=99999999999"},
		{"staff/audit", "", "before=99999999999999999999999&subject=lic_x"},
		{"staff/entitlements", "ent_01HZY3QK8Y0000000000000001", "state=draft"},
		{"v1/bundles", "genai-smart-router/9223372036854775807", ""},
		{"v1/bundles", "%00/latest", ""},
		{"staff/customers", "cus_" + strings.Repeat("Z", 26), "q=%25_&after=x"},
		{"v1/licenses", "lic_../file", "after=!!"},
		{"staff/keys", "", "product=\xff"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, area, param, query string) {
		u, err := url.Parse(e.ts.URL + "/" + strings.Trim(area, "/") + "/" + param + "?" + query)
		if err != nil || u.Host != strings.TrimPrefix(e.ts.URL, "http://") {
			return
		}
		for _, c := range []*http.Client{admin, http.DefaultClient} {
			resp, err := c.Get(u.String())
			if err != nil {
				return // the client refused the URL
			}
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Fatalf("GET %s: %d", u, resp.StatusCode)
			}
		}
	})
}
