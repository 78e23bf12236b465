package entitlements

import (
	"fmt"
	"time"
)

// Usage metering (docs/spec/usage.md v1, docs/usage.md): the issuer's side of the
// signed usage reports router hosts send or carry out of air-gapped sites.

// Problem codes of refused uploads (usage.md section 3): each is the end of the
// problem's type, with report_index (and next_seq for a gap) as extension members.
const (
	// EUSAGEINVALID (HTTP 422): malformed, badly signed, unknown or foreign license, a
	// period or totals that don't add up.
	EUSAGEINVALID = "usage-invalid"
	// EUSAGEFORK (HTTP 409): the seq was accepted with other bytes, or prev is not the
	// accepted report before it.
	EUSAGEFORK = "usage-fork"
	// EUSAGEGAP (HTTP 409): the seq is more than one past the last accepted.
	EUSAGEGAP = "usage-gap"
)

// UsageRefusal is the refusal of the report at index (0-based in the upload body):
// the reports before it in the same body were kept.
func UsageRefusal(code string, index int, nextSeq int64, format string, args ...any) *Error {
	ext := map[string]any{"report_index": index}
	if code == EUSAGEGAP {
		ext["next_seq"] = nextSeq
	}
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Extensions: ext}
}

// Usage limits the spec leaves open (docs/usage.md, "Where the spec is silent").
const (
	// MaxUsageCounters is how many counter names one report may carry.
	MaxUsageCounters = 64
	// MaxUsageCounterName is the longest counter name.
	MaxUsageCounterName = 64
	// MaxUsageReporter is the longest reporter (display only).
	MaxUsageReporter = 200
	// UsageClockSkew: a report's period ends no later than the issuer's clock plus
	// this (usage.md section 2).
	UsageClockSkew = 300 * time.Second
)

// The counters the issuer knows (usage.md section 2); any other [a-z0-9_]+ name is
// kept too.
const (
	CounterTokens   = "tokens"
	CounterRequests = "requests"
)

// UsageThresholds are the shares of a budget (percent) that warn, once each per
// license (usage.md section 4).
var UsageThresholds = []int{80, 100}

// UsageReport is one verified report, as the issuer keeps it.
type UsageReport struct {
	LicenseID   string
	Product     string
	InstanceID  string
	Fingerprint string // instance_fingerprint, "" when absent
	Seq         int64
	Prev        string // hex SHA-256 of the previous envelope; "" for seq 1
	Start, End  time.Time
	Counters    map[string]int64
	Totals      map[string]int64
	Reporter    string
	KeyID       string
	// Key is the Ed25519 public key that verified it (the chain's host key).
	Key []byte
	// Envelope is the exact signed bytes; Hash their SHA-256.
	Envelope []byte
	Hash     [32]byte
}

// UsageChainKey names a host's chain: (license_id, instance_id).
type UsageChainKey struct{ LicenseID, InstanceID string }

// UsageHead is what the issuer keeps of a chain to check the next report: its bound
// key and its last accepted report.
type UsageHead struct {
	UsageChainKey
	Product   string
	KeyID     string
	Key       []byte
	Seq       int64
	Hash      [32]byte
	PeriodEnd time.Time
	Totals    map[string]int64
	// PeriodSeconds is the chain's report period as the issuer sees it (NextPeriod).
	PeriodSeconds int64
	// New: the chain's first report is in this batch.
	New bool
	// FirstStart, Fingerprint and Reporter are kept for the staff view.
	FirstStart  time.Time
	Fingerprint string
	Reporter    string
}

// UsageLicense is what ingestion needs of the license a report counts against.
type UsageLicense struct {
	ID          string
	CustomerID  string
	Product     string
	Fingerprint string // the license's instance binding, "" when unbound
	Budget      int64  // token_budget; 0: none
	Window      time.Duration
}

// UsageBudgetOf reads a license's token_budget and usage_window_seconds (0: none).
func UsageBudgetOf(limits map[string]int64) (budget int64, window time.Duration) {
	if b := limits["token_budget"]; b > 0 {
		budget = b
	}
	if w := limits["usage_window_seconds"]; w > 0 {
		window = time.Duration(w) * time.Second
	}
	return budget, window
}

// UsageIncident is a refused report kept for staff: a fork or a gap of a chain, by a
// report its bound key signed (nobody else can make one).
type UsageIncident struct {
	UsageChainKey
	Kind    string // fork or gap
	Seq     int64
	NextSeq int64 // gap: the seq the issuer needed
	// Hash is the refused envelope's SHA-256.
	Hash            [32]byte
	FirstAt, LastAt time.Time
	Count           int64
}

// Incident kinds.
const (
	IncidentFork = "fork"
	IncidentGap  = "gap"
)

// UsageChain is one host's chain as staff and the customer see it.
type UsageChain struct {
	UsageChainKey
	KeyID         string
	Fingerprint   string
	Reporter      string
	FirstStart    time.Time
	LastEnd       time.Time
	LastSeq       int64
	PeriodSeconds int64
	CreatedAt     time.Time
	LastReportAt  time.Time
	Tokens        int64 // the chain's totals.tokens
	Requests      int64
	// RestartOf names the chain this one restarted (docs/usage.md, "Restarts");
	// RestartedBy the one that restarted it.
	RestartOf, RestartedBy string
	Forks, Gaps            int64
}

// Stale: the chain has been silent for more than three report periods (usage.md
// section 4), and no newer chain restarted it.
func (c UsageChain) Stale(now time.Time) bool {
	p := time.Duration(max(c.PeriodSeconds, 1)) * time.Second
	return c.RestartedBy == "" && now.Sub(c.LastEnd) > 3*p
}

// UsageDay is one day of a license's usage, all its chains together.
type UsageDay struct {
	Day      time.Time // 00:00 UTC
	Tokens   int64
	Requests int64
	Reports  int64
}

// UsageWarning is a threshold a license's budget crossed: one per license and
// threshold, ever.
type UsageWarning struct {
	LicenseID    string
	CustomerID   string
	CustomerName string
	Threshold    int
	CrossedAt    time.Time
	Used, Budget int64
}

// UsageTotals is a license's consumption as the issuer last computed it.
type UsageTotals struct {
	LicenseID  string
	CustomerID string
	// Tokens and Requests are over the license's whole term, all chains.
	Tokens, Requests, Reports int64
	Budget                    int64
	Window                    time.Duration
	// Used is what counts against the budget: Tokens for a term budget, the window's
	// days for a rolling window (docs/usage.md, "Consumption").
	Used         int64
	FirstReport  *time.Time
	LastReportAt *time.Time
}

// Share is Used as a share of the budget, in per mille (0 without a budget).
func (t *UsageTotals) Share() int64 { return UsagePermille(t.Used, t.Budget) }

// UsagePermille is used/budget in per mille, capped at 10,000 (0 without a budget).
func UsagePermille(used, budget int64) int64 {
	if budget <= 0 || used <= 0 {
		return 0
	}
	if used >= budget*10 {
		return 10_000
	}
	return used * 1000 / budget
}

// UsageOverview is one license's usage page: consumption against the budget, per
// day and per instance, with the flags of usage.md section 4.
type UsageOverview struct {
	License   *License
	Totals    UsageTotals
	Days      []UsageDay // oldest first, every day of the range (zeros included)
	Chains    []UsageChain
	Incidents []UsageIncident
	Warnings  []UsageWarning
	Now       time.Time
}

// Flags are the license's flags: a fork or a gap recorded, a chain that restarted
// another, a chain gone stale.
func (o *UsageOverview) Flags() (fork, gap, restart, stale bool) {
	for i := range o.Chains {
		c := &o.Chains[i]
		fork = fork || c.Forks > 0
		gap = gap || c.Gaps > 0
		restart = restart || c.RestartOf != ""
		stale = stale || c.Stale(o.Now)
	}
	return
}

// UsageLicenseRow is a license in the list of those past a threshold.
type UsageLicenseRow struct {
	LicenseID, CustomerID, CustomerName, SKU string
	Used, Budget, Permille                   int64
	LastReportAt                             *time.Time
}

// UsageAlerts is the staff dashboard's usage line: how many licenses are past 80 %
// and 100 % of their budget, the first of them, and the latest warnings.
type UsageAlerts struct {
	Past80, Past100 int64
	Top             []UsageLicenseRow
	Recent          []UsageWarning
}

// UsageChainState is one chain of an upload's answer: the issuer's last accepted seq.
type UsageChainState struct {
	LicenseID  string `json:"license_id"`
	InstanceID string `json:"instance_id"`
	LastSeq    int64  `json:"last_seq"`
}

// UsageAnswer is the 200 answer to an upload (usage.md section 3).
type UsageAnswer struct {
	Accepted   int64             `json:"accepted"`
	Duplicates int64             `json:"duplicates"`
	Chains     []UsageChainState `json:"chains"`
}
