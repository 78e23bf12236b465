package enforce_test

import (
	"testing"
	"time"

	"github.com/metrum/licensing/enforce"
)

var sink bool

// BenchmarkAllow measures the per-request check against a bare map lookup of the same
// feature in the same run (run once; the machine is shared, so read the ratios):
//
//	go test ./enforce -run '^$' -bench Allow -benchmem
func BenchmarkAllow(b *testing.B) {
	k := newKit(b)
	e, err := enforce.New(enforce.Options{License: enforce.Bytes(k.license(payload(licA, time.Now()))), Product: router, KeySet: k.ks, NoSIGHUP: true})
	if err != nil || !e.Allow("routing") {
		b.Fatal("not serving", err)
	}
	features := map[string]bool{"admin_reports": true, "routing": true}
	name := "routing"
	b.Run("bare-map-lookup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = features[name]
		}
	})
	b.Run("Allow", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = e.Allow(name)
		}
	})
	b.Run("Allow-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				sink = e.Allow(name)
			}
		})
	})
	f := e.Feature(name)
	b.Run("Feature.Allow-counted", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = f.Allow()
		}
	})
	b.Run("Limit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, sink = e.Limit("max_concurrency")
		}
	})
	b.Run("Status", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = e.Status().Serving()
		}
	})
}
