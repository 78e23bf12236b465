package main

import (
	"crypto/subtle"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/metrum/licensing/enforce"
	"github.com/metrum/licensing/usage"
	"github.com/metrum/licensing/verify"
)

type server struct {
	e          *enforce.Enforcer
	rec        *usage.Recorder
	adminToken string
	log        *slog.Logger
	routing    *enforce.Feature
	reg        *prometheus.Registry
}

func newServer(e *enforce.Enforcer, rec *usage.Recorder, adminToken string, log *slog.Logger) *server {
	reg := prometheus.NewRegistry()
	// The license gauges only: the Go runtime collector's package links database/sql,
	// which nothing a router embeds for licensing should.
	reg.MustRegister(e.Collector())
	return &server{e: e, rec: rec, adminToken: adminToken, log: log, routing: e.Feature("routing"), reg: reg}
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /admin/license/status", s.admin(http.HandlerFunc(s.status)))
	mux.Handle("GET /metrics", s.metricsAuth(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})))
	mux.Handle("POST /v1/chat", s.routing.Gate(http.HandlerFunc(s.chat)))
	return enforce.WithRequestID(s.logRequests(mux))
}

// readyz is 200 while the license serves (valid or grace) and 503 when it blocks, so
// a load balancer takes a blocked replica out. Status and reason are safe fields.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	st := s.e.Status()
	code := http.StatusOK
	if !st.Serving() {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{"status": st.State, "reason": st.Reason})
}

// status is /admin/license/status: the safe status fields, for an admin.
func (s *server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.e.Status())
}

// admin lets through a request with the admin bearer token; with none configured the
// admin surface is off (404), as the router document's "when enabled".
func (s *server) admin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.adminToken == "" {
			http.NotFound(w, r)
			return
		}
		if !s.authorized(r) {
			unauthorized(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// metricsAuth asks for the admin token on /metrics when one is set (metrics-admin):
// the gauges carry the license and customer IDs.
func (s *server) metricsAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.adminToken != "" && !s.authorized(r) {
			unauthorized(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(tok), []byte(s.adminToken)) == 1
}

func unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="router admin"`)
	(&enforce.Problem{Type: enforce.ProblemBase + "unauthorized", Title: "Unauthorized", Status: http.StatusUnauthorized}).Write(w, r)
}

// chatRequest is the body of POST /v1/chat in this reference router: only the token
// count that the license's budget meters.
type chatRequest struct {
	Tokens *int64 `json:"tokens"`
}

// chat counts the request's tokens against the license's token budget; the routing
// gate in front of it has already checked the license serves and has the feature.
func (s *server) chat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	body := http.MaxBytesReader(w, r.Body, 64<<10)
	data, err := io.ReadAll(body)
	if err == nil {
		err = verify.DecodeStrict(data, &req)
	}
	if err != nil || req.Tokens == nil || *req.Tokens < 0 {
		(&enforce.Problem{Type: enforce.ProblemBase + "invalid", Title: "Bad Request", Status: http.StatusBadRequest,
			Detail: `the body is {"tokens": N}, N a non-negative integer`}).Write(w, r)
		return
	}
	if p := s.e.Spend(*req.Tokens); p != nil {
		p.Write(w, r)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"routed": true, "tokens": *req.Tokens})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.MarshalWrite(w, v, json.Deterministic(true))
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

// WriteHeader records the status for the access log.
func (sw *statusWriter) WriteHeader(code int) {
	sw.code = code
	sw.ResponseWriter.WriteHeader(code)
}

// logRequests logs each request with its ID (safe fields only: never a body or a
// token), and a refused one with the license status, so usage rows can tell license
// refusals from others.
func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		st := s.e.Status()
		s.log.Info("http", "request_id", enforce.RequestID(r), "method", r.Method, "path", r.URL.Path, "status", sw.code,
			"duration_ms", time.Since(start).Milliseconds(), "license_status", st.State, "license_reason", st.Reason)
	})
}
