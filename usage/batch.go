package usage

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/metrum/licensing/verify"
)

// Upload body limits of spec/usage.md section 3.
const (
	MaxBatchReports = 1000
	MaxBatchBytes   = 4 << 20
)

// MarshalBatch is the upload body {"reports": [envelope, …]}. The envelopes go in as
// their exact bytes, never re-encoded, so that what the issuer hashes for prev is
// what the host hashed.
func MarshalBatch(envelopes [][]byte) []byte {
	var b bytes.Buffer
	b.WriteString(`{"reports":[`)
	for i, e := range envelopes {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(e)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// splitReports is MaxBatchReports; tests lower it to prove a long backlog goes up in
// several bodies without writing a thousand reports.
var splitReports = MaxBatchReports

// batchOverhead is the size of an empty body; each envelope after the first adds a
// comma.
var batchOverhead = len(MarshalBatch(nil))

// Split cuts envelopes, in order, into bodies of at most MaxBatchReports reports and
// MaxBatchBytes bytes. An envelope too large for any body is an error: a report is a
// few hundred bytes, so one that large is not ours.
func Split(envelopes [][]byte) ([][][]byte, error) {
	var out [][][]byte
	var cur [][]byte
	size := batchOverhead
	for _, e := range envelopes {
		if batchOverhead+len(e) > MaxBatchBytes {
			return nil, errors.New("usage: a report larger than an upload body may be")
		}
		if len(cur) == splitReports || size+len(e)+1 > MaxBatchBytes {
			out = append(out, cur)
			cur, size = nil, batchOverhead
		}
		cur = append(cur, e)
		size += len(e) + 1
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out, nil
}

// ParseBatch reads an upload body, either form (one envelope, or {"reports": […]}),
// and returns each envelope's exact bytes as they appear in it. It checks the body's
// limits, not the reports (Parse does).
func ParseBatch(body []byte) ([][]byte, error) {
	if len(body) > MaxBatchBytes {
		return nil, fmt.Errorf("usage: body larger than %d bytes", MaxBatchBytes)
	}
	var probe map[string]jsontext.Value
	if err := json.Unmarshal(body, &probe); err != nil {
		return nil, fmt.Errorf("usage: body: %s", verify.SafeError(err))
	}
	if _, single := probe["format"]; single {
		return [][]byte{bytes.TrimSpace(body)}, nil
	}
	if len(probe) != 1 || probe["reports"] == nil {
		return nil, errors.New(`usage: body is neither an envelope nor {"reports": […]}`)
	}
	var raw []jsontext.Value
	if err := json.Unmarshal(probe["reports"], &raw); err != nil {
		return nil, fmt.Errorf("usage: reports: %s", verify.SafeError(err))
	}
	if len(raw) == 0 || len(raw) > MaxBatchReports {
		return nil, fmt.Errorf("usage: a body holds 1 to %d reports, not %d", MaxBatchReports, len(raw))
	}
	out := make([][]byte, len(raw))
	for i, v := range raw {
		out[i] = []byte(v)
	}
	return out, nil
}

// Response is the issuer's answer to one upload, as an Uploader received it.
type Response struct {
	Status      int
	ContentType string
	RetryAfter  string // the Retry-After header, if any
	Body        []byte
}

// Answer is the issuer's 200 answer: every report accepted or an exact duplicate.
type Answer struct {
	Accepted   int64        `json:"accepted"`
	Duplicates int64        `json:"duplicates"`
	Chains     []ChainState `json:"chains"`
}

// ChainState is the issuer's last accepted seq of one chain.
type ChainState struct {
	LicenseID  string `json:"license_id"`
	InstanceID string `json:"instance_id"`
	LastSeq    int64  `json:"last_seq"`
}

// Problem codes of spec/usage.md section 3 (the end of the problem's `type`).
const (
	CodeInvalid = "usage-invalid"
	CodeFork    = "usage-fork"
	CodeGap     = "usage-gap"
)

// UploadError is an upload the issuer did not take whole: an RFC 9457 problem
// (usage-invalid, usage-fork, usage-gap with report_index and, for a gap, next_seq),
// or another refusal (401, 429, 5xx) or an answer that could not be read.
type UploadError struct {
	Status      int
	Code        string // usage-invalid, usage-fork, usage-gap, or "" for others
	ReportIndex int    // of the first report that failed; the ones before were kept
	NextSeq     int64  // usage-gap: the seq the issuer needs next
	RetryAfter  time.Duration
	RequestID   string
	Detail      string
}

// Error names the status, the problem and the report it is about.
func (e *UploadError) Error() string {
	s := fmt.Sprintf("usage upload: HTTP %d", e.Status)
	if e.Code != "" {
		s += fmt.Sprintf(" %s at report %d", e.Code, e.ReportIndex)
	}
	if e.NextSeq > 0 {
		s += fmt.Sprintf(" (next_seq %d)", e.NextSeq)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	return s
}

// ParseResponse reads the issuer's answer. Answers are parsed with names matched
// exactly and duplicates refused, but unknown members are allowed: an answer can't
// make the host accept anything, only drop reports the issuer says it has, and an
// extension member (a problem's instance, say) must not make the host resend forever.
// The members acted on are required and typed.
func ParseResponse(resp *Response, sent int) (*Answer, error) {
	lenient := json.RejectUnknownMembers(false)
	if resp.Status == 200 {
		var a struct {
			Accepted   *int64        `json:"accepted"`
			Duplicates *int64        `json:"duplicates"`
			Chains     *[]ChainState `json:"chains"`
		}
		if err := json.Unmarshal(resp.Body, &a, lenient); err != nil || a.Accepted == nil || a.Duplicates == nil || a.Chains == nil {
			return nil, &UploadError{Status: 200, Detail: "the answer is not {accepted, duplicates, chains}"}
		}
		if *a.Accepted < 0 || *a.Duplicates < 0 || *a.Accepted+*a.Duplicates != int64(sent) {
			return nil, &UploadError{Status: 200, Detail: fmt.Sprintf("the answer counts %d accepted and %d duplicates of %d sent", *a.Accepted, *a.Duplicates, sent)}
		}
		return &Answer{Accepted: *a.Accepted, Duplicates: *a.Duplicates, Chains: *a.Chains}, nil
	}
	e := &UploadError{Status: resp.Status, RetryAfter: retryAfter(resp.RetryAfter)}
	var p struct {
		Type        string `json:"type"`
		Detail      string `json:"detail"`
		RequestID   string `json:"request_id"`
		ReportIndex *int   `json:"report_index"`
		NextSeq     *int64 `json:"next_seq"`
	}
	if json.Unmarshal(resp.Body, &p, lenient) != nil {
		return nil, e // not a problem we can read: nothing was kept as far as we know
	}
	e.RequestID = p.RequestID
	if len(p.Detail) <= 200 {
		e.Detail = p.Detail
	}
	for _, code := range []string{CodeInvalid, CodeFork, CodeGap} {
		if strings.HasSuffix(p.Type, "/"+code) && p.ReportIndex != nil && *p.ReportIndex >= 0 && *p.ReportIndex < sent {
			e.Code, e.ReportIndex = code, *p.ReportIndex
			if code == CodeGap && p.NextSeq != nil && *p.NextSeq >= 1 {
				e.NextSeq = *p.NextSeq
			}
		}
	}
	return nil, e
}

func retryAfter(h string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := time.Parse(time.RFC1123, h); err == nil {
		return time.Until(t)
	}
	return 0
}
