package storage

import "strings"

// prefixed qualifies a comma-separated column list with a table alias.
func prefixed(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = alias + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// keyset is the order and the page condition of a sorted list paged by a cursor row:
// ORDER BY expr, id (both in the sort's direction), and the rows after the cursor's
// place in that order, read from the cursor row itself (cursorRow: a query of expr,
// id for the row whose ID is @after). The caller adds the condition only with a
// cursor. expr comes from a list's fixed table of sort expressions, never from input.
func keyset(expr, id string, desc bool, cursorRow string) (where, order string) {
	op, dir := ">", "ASC"
	if desc {
		op, dir = "<", "DESC"
	}
	return "(" + expr + ", " + id + ") " + op + " (" + cursorRow + ")", expr + " " + dir + ", " + id + " " + dir
}

// contractRefMatch is the entitlement IDs whose contract reference begins with @text,
// any case: a range scan of entitlements_contract_ref_idx (migration 00024).
const contractRefMatch = `SELECT id FROM entitlements WHERE contract_ref <> ''
	AND lower(contract_ref) ~>=~ lower(@text) AND lower(contract_ref) ~<~ (lower(@text) || chr(1114111))`

// The searches match by a UNION of such lookups, read once into an array (an
// InitPlan) that the outer query takes by its primary key: `id = ANY(ARRAY(…))`. As
// `id IN (…)` the planner may instead walk the whole table in the list's order,
// testing each row (60 ms at 100,000 entitlements, for ten matches).

// idShaped reports whether a search is an ID (or its beginning): then only the
// exact lookups run, never the scans of names.
func idShaped(text string) bool {
	for _, p := range []string{"lic_", "ent_", "cus_"} {
		if strings.HasPrefix(text, p) {
			return true
		}
	}
	return false
}
