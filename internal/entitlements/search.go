package entitlements

import (
	"slices"
	"strings"
	"time"
)

// The console's lists: each takes a text search, filters, one of a few sort keys and
// a keyset cursor (the last row's ID: the next page starts after that row's place in
// the sort, with the ID as the tiebreak).

// Sort keys of the console's lists. Storage maps each to its SQL expression; any
// other key is refused.
var (
	LicenseSorts     = []string{"issued", "expires", "customer", "sku", "status"}
	EntitlementSorts = []string{"created", "customer", "template", "state"}
	CustomerSorts    = []string{"name", "created"}
)

// Sort is a list's order: a key of the list's sorts, and the direction.
type Sort struct {
	Key  string
	Desc bool
}

// ParseSort reads a sort parameter ("expires", "-issued": descending) against a
// list's keys; "" is def. An unknown key is invalid (a field error for "sort").
func ParseSort(param string, keys []string, def Sort) (Sort, error) {
	if param == "" {
		return def, nil
	}
	s := Sort{Key: strings.TrimPrefix(param, "-"), Desc: strings.HasPrefix(param, "-")}
	if !slices.Contains(keys, s.Key) {
		return def, Invalid(map[string]string{"sort": "sort by one of " + strings.Join(keys, ", ")})
	}
	return s, nil
}

// Param is the sort as a query parameter.
func (s Sort) Param() string {
	if s.Desc {
		return "-" + s.Key
	}
	return s.Key
}

// LicenseQuery is a search of the license list.
type LicenseQuery struct {
	// Text matches a customer's name (a case-insensitive substring, % and _ taken
	// literally), an entitlement's contract reference by its beginning (any case), or
	// a license, entitlement or customer ID (exactly).
	Text       string
	CustomerID string
	Product    string
	SKU        string
	// Status is a status of the one status truth (License.StateAt): active, expired,
	// suspended, revoked or superseded; "" any.
	Status string
	// ExpiringBefore keeps active licenses that end between Now and it.
	ExpiringBefore time.Time
	Sort           Sort
	// After is the ID of the previous page's last license ("" for the first page).
	After string
	Limit int
	// Now is the moment statuses are read at (the service's clock).
	Now time.Time
}

// LicenseStatuses are the statuses a license list filters by.
var LicenseStatuses = []string{LicenseActive, "expired", LicenseSuspended, LicenseRevoked, LicenseSuperseded}

// Validate checks the filters that are not free text.
func (q *LicenseQuery) Validate() error {
	f := map[string]string{}
	if q.Status != "" && !slices.Contains(LicenseStatuses, q.Status) {
		f["status"] = "one of " + strings.Join(LicenseStatuses, ", ")
	}
	if q.Product != "" && !ValidProduct(q.Product) {
		f["product"] = "genai-smart-router or coresdk"
	}
	if q.After != "" && !ValidID(PrefixLicense, q.After) {
		f["after"] = "not a page cursor"
	}
	if q.CustomerID != "" && !ValidID(PrefixCustomer, q.CustomerID) {
		f["customer"] = "not a customer ID (cus_…)"
	}
	if !slices.Contains(LicenseSorts, q.Sort.Key) {
		f["sort"] = "sort by one of " + strings.Join(LicenseSorts, ", ")
	}
	return Invalid(f)
}

// CustomerQuery is a search of the customer list.
type CustomerQuery struct {
	// Text matches a name or email (a case-insensitive substring, % and _ taken
	// literally), a contract reference of one of the customer's entitlements (by its
	// beginning), or a customer, license or entitlement ID (exactly, or a customer ID
	// by its beginning).
	Text  string
	Sort  Sort
	After string // the previous page's last customer ID
	Limit int
}

// Validate checks the cursor and sort.
func (q *CustomerQuery) Validate() error {
	f := map[string]string{}
	if q.After != "" && !ValidID(PrefixCustomer, q.After) {
		f["after"] = "not a page cursor"
	}
	if !slices.Contains(CustomerSorts, q.Sort.Key) {
		f["sort"] = "sort by one of " + strings.Join(CustomerSorts, ", ")
	}
	return Invalid(f)
}
