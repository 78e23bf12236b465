package ui

import (
	"net/url"
	"strings"
)

// ListNav makes the links of a sortable, paged list: its path, its filters (kept by
// every link, so sorting and paging never lose a search), and its sort parameter
// ("expires", "-issued": descending).
type ListNav struct {
	Path    string
	Filters url.Values
	Sort    string
}

// URL is the list with its filters, sort and extra parameters (k, v pairs).
func (n ListNav) URL(sort string, extra ...string) string {
	q := url.Values{}
	for k, vs := range n.Filters {
		for _, v := range vs {
			if v != "" {
				q.Add(k, v)
			}
		}
	}
	if sort != "" {
		q.Set("sort", sort)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	if len(q) == 0 {
		return n.Path
	}
	return n.Path + "?" + q.Encode()
}

// SortURL is the link of a column header: sorted by key, the other way round when it
// is the current sort, descending first when firstDesc (newest, latest first).
func (n ListNav) SortURL(key string, firstDesc bool) string {
	cur, desc := strings.TrimPrefix(n.Sort, "-"), strings.HasPrefix(n.Sort, "-")
	next := firstDesc
	if cur == key {
		next = !desc
	}
	if next {
		return n.URL("-" + key)
	}
	return n.URL(key)
}

// AriaSort is a column's aria-sort: ascending, descending or none.
func (n ListNav) AriaSort(key string) string {
	switch n.Sort {
	case key:
		return "ascending"
	case "-" + key:
		return "descending"
	}
	return "none"
}

// sortMark is the arrow beside a sorted column's name.
func (n ListNav) sortMark(key string) string {
	switch n.AriaSort(key) {
	case "ascending":
		return " ▲"
	case "descending":
		return " ▼"
	}
	return ""
}

// Page is where a list's page is: its first page and next page links ("" none), and
// how many rows it shows.
type Page struct {
	First, Next string
	Shown       int
}

// Plural is "1 license", "3 licenses".
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return Itoa(n) + " " + many
}

// PageOf trims a list read with one row more than size (the sign of a next page) and
// returns it with its Page: Next after its last row's ID (the list's cursor, keeping
// its filters and sort), First when this page began after a cursor.
func PageOf[T any](list []T, size int, nav ListNav, after string, id func(T) string) ([]T, Page) {
	var p Page
	if len(list) > size {
		list = list[:size]
		p.Next = nav.URL(nav.Sort, "after", id(list[size-1]))
	}
	if after != "" {
		p.First = nav.URL(nav.Sort)
	}
	p.Shown = len(list)
	return list, p
}
