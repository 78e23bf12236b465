package ui

import (
	"strings"

	"github.com/a-h/templ"
)

// Field is a form field's ARIA attributes: aria-describedby naming the hints shown
// ("" ones are left out) and, once the field was refused, its message (errID) with
// aria-invalid. A field with neither gets none, so no attribute names a missing
// element.
func Field(errID, errMsg string, hints ...string) templ.Attributes {
	var ids []string
	for _, h := range hints {
		if h != "" {
			ids = append(ids, h)
		}
	}
	a := templ.Attributes{}
	if errMsg != "" {
		ids = append(ids, errID)
		a["aria-invalid"] = "true"
	}
	if len(ids) > 0 {
		a["aria-describedby"] = strings.Join(ids, " ")
	}
	return a
}

// If is s when cond holds, "" otherwise (for Field's hints shown only sometimes).
func If(cond bool, s string) string {
	if cond {
		return s
	}
	return ""
}
