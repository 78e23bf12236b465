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
