package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/staffapi"
	"github.com/metrum/licensing/verify"
)

// load is the traffic of one run: simulated router hosts renewing leases, new hosts
// trying to take slots, hosts shutting down (releasing), and staff writes, spread
// round-robin over the issuer replicas as a load balancer would.
type load struct {
	o       driveOptions
	issuers []string
	client  *http.Client
	rr      atomic.Uint64
	keys    *verify.KeySet
	token   string // the license's lease token
	maker   string // staff tokens: an issuer (customers) and an approver (bundles)
	checker string

	mu      sync.Mutex
	records []record
	spans   []span
	holders map[string]chan struct{} // hosts holding a lease → tell it to release
	spawned int
	wg      sync.WaitGroup
}

func (l *load) issuer() string { return l.issuers[l.rr.Add(1)%uint64(len(l.issuers))] }

func (l *load) add(r record) {
	l.mu.Lock()
	l.records = append(l.records, r)
	l.mu.Unlock()
}

// snapshot returns a copy of the records so far.
func (l *load) snapshot() []record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]record(nil), l.records...)
}

// do sends one request and returns the status and body (status 0: no answer).
func (l *load) do(ctx context.Context, method, url, token string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, b, nil
}

// lease asks for (or renews) host's lease and records the answer. A 200 counts only
// if its body is a lease signed by a key trusted for the product, for this license
// and this host.
func (l *load) lease(ctx context.Context, host string) record {
	body, _ := json.Marshal(map[string]string{"license_id": l.o.license, "instance_fingerprint": host})
	r := record{Kind: kindLease, Host: host, Start: time.Now()}
	status, b, err := l.do(ctx, http.MethodPost, l.issuer()+"/v1/leases", l.token, body)
	r.End, r.Status = time.Now(), status
	if err != nil {
		r.Err = err.Error()
	} else if status == http.StatusOK {
		ls, err := verify.ParseLeaseFile(b, l.keys)
		switch {
		case err != nil:
			r.Invalid, r.Err = true, err.Error()
		case ls.LicenseID != l.o.license || ls.InstanceFingerprint != host || !ls.KeyTrusts(l.o.product):
			r.Invalid, r.Err = true, fmt.Sprintf("lease for %s/%s", ls.LicenseID, ls.InstanceFingerprint)
		default:
			r.LeaseID, r.ExpiresAt = ls.LeaseID, ls.ExpiresAt
		}
	}
	if ctx.Err() == nil { // a request cut off by the end of the run is no answer of the issuer's
		l.add(r)
	}
	return r
}

// release sends host's clean-shutdown release until it is acknowledged or the run ends.
func (l *load) release(ctx context.Context, host, leaseID string) {
	for ctx.Err() == nil {
		r := record{Kind: kindRelease, Host: host, LeaseID: leaseID, Start: time.Now()}
		status, _, err := l.do(ctx, http.MethodDelete, l.issuer()+"/v1/leases/"+leaseID, l.token, nil)
		r.End, r.Status = time.Now(), status
		if err != nil {
			r.Err = err.Error()
		}
		if ctx.Err() != nil {
			return
		}
		l.add(r)
		if r.acknowledged() {
			return
		}
		sleep(ctx, l.o.retryEvery)
	}
}

// host is one router host: it asks for a slot until it gets one (retrying every
// joinEvery), then renews every renewEvery (±20 %) until told to release or the run
// ends. It holds the lease from the first signed one it receives until it sends its
// release: that is its span.
func (l *load) host(ctx context.Context, name string, joinEvery time.Duration, joined func()) {
	defer l.wg.Done()
	var r record
	for {
		if r = l.lease(ctx, name); r.acknowledged() {
			break
		}
		if !sleep(ctx, joinEvery) {
			return
		}
	}
	from, leaseID := r.End, r.LeaseID
	stop := make(chan struct{}, 1)
	l.mu.Lock()
	l.holders[name] = stop
	l.mu.Unlock()
	if joined != nil {
		joined()
	}
	for {
		wait := time.Duration(float64(l.o.renewEvery) * (0.8 + 0.4*rand.Float64()))
		select {
		case <-ctx.Done():
			l.addSpan(span{name, from, time.Now()})
			return
		case <-stop:
			l.addSpan(span{name, from, time.Now()}) // the host stops using its lease, then says so
			l.release(ctx, name, leaseID)
			return
		case <-time.After(wait):
			if r := l.lease(ctx, name); r.acknowledged() {
				leaseID = r.LeaseID
			}
		}
	}
}

func (l *load) addSpan(s span) {
	l.mu.Lock()
	l.spans = append(l.spans, s)
	l.mu.Unlock()
}

// start launches the whole load; it runs until ctx ends (then wait for it).
func (l *load) start(ctx context.Context) {
	l.holders = map[string]chan struct{}{}
	for i := range l.o.hosts {
		l.spawn(ctx, fmt.Sprintf("ha-host-%03d", i), l.o.retryEvery, nil)
	}
	// New hosts: newcomers of them are always waiting for a slot; each that gets one
	// is replaced by another.
	waiting := make(chan struct{}, l.o.newcomers)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case waiting <- struct{}{}:
			}
			if !l.spawn(ctx, fmt.Sprintf("ha-new-%04d", n), l.o.joinEvery, func() { <-waiting }) {
				return
			}
		}
	}()
	// Shutdowns: now and then a holder releases its lease and goes away.
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for sleep(ctx, l.o.releaseEvery) {
			l.mu.Lock()
			for name, stop := range l.holders { // map order: a random holder
				delete(l.holders, name)
				stop <- struct{}{}
				break
			}
			l.mu.Unlock()
		}
	}()
	for i := range l.o.customerWriters {
		l.wg.Add(1)
		go l.customers(ctx, i)
	}
	l.wg.Add(1)
	go l.bundles(ctx)
}

// spawn starts a host unless the run's bound on hosts is reached.
func (l *load) spawn(ctx context.Context, name string, joinEvery time.Duration, joined func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.spawned >= l.o.maxHosts {
		return false
	}
	l.spawned++
	l.wg.Add(1)
	go l.host(ctx, name, joinEvery, joined)
	return true
}

// staff posts one staff API call as token and records it.
func (l *load) staff(ctx context.Context, kind, path, token string, req any, resp any) record {
	body, _ := json.Marshal(req)
	r := record{Kind: kind, Start: time.Now()}
	status, b, err := l.do(ctx, http.MethodPost, l.issuer()+staffapi.Prefix+path, token, body)
	r.End, r.Status = time.Now(), status
	if err != nil {
		r.Err = err.Error()
	} else if r.acknowledged() {
		if err := json.Unmarshal(b, resp); err != nil {
			r.Status, r.Err = 0, "unreadable answer: "+err.Error()
		}
	}
	return r
}

// customers creates customers one after another, each with a name unique to the run.
func (l *load) customers(ctx context.Context, writer int) {
	defer l.wg.Done()
	for n := 0; ctx.Err() == nil; n++ {
		name := fmt.Sprintf("HA %s w%d #%d", l.o.runID, writer, n)
		var c entitlements.Customer
		r := l.staff(ctx, kindCustomer, staffapi.CustomerCreate, l.maker, &entitlements.Customer{Name: name}, &c)
		r.ID, r.Name = c.ID, name
		if ctx.Err() != nil {
			return
		}
		l.add(r)
		sleep(ctx, l.o.customerEvery)
	}
}

// bundles publishes the product's revocation bundle every publishEvery.
func (l *load) bundles(ctx context.Context) {
	defer l.wg.Done()
	for sleep(ctx, l.o.publishEvery) {
		var b struct {
			Sequence   int64
			FileSHA256 []byte
		}
		r := l.staff(ctx, kindBundle, staffapi.BundlePublish, l.checker, &staffapi.BundleRequest{Product: l.o.product}, &b)
		r.Sequence, r.SHA256 = b.Sequence, b.FileSHA256
		if ctx.Err() != nil {
			return
		}
		l.add(r)
	}
}

// sleep waits d or until ctx ends; it reports whether the full d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
