package verify

import "iter"

// All yields every entry of the bundle with its license ID, in license ID order (the
// issuer's recovery after a restore reads a published bundle's entries with it).
func (b *Bundle) All() iter.Seq2[string, Entry] {
	return func(yield func(string, Entry) bool) {
		for i := range b.ids {
			if !yield(string(b.ids[i][:]), b.entries[i]) {
				return
			}
		}
	}
}
