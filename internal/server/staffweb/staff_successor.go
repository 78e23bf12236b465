package staffweb

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
	"github.com/metrum/licensing/internal/server/httpx"
	"github.com/metrum/licensing/internal/templates"
	pages "github.com/metrum/licensing/web/staff"
	"github.com/metrum/licensing/web/ui"
)

var successorVerbs = map[string]string{entitlements.KindRenewal: "Renew", entitlements.KindReplacement: "Replace", entitlements.KindTopUp: "Top up"}

// successorOffers says which successors a license page offers now: the one status
// truth's rule (License.CanOpenSuccessor), and a top-up only where the product has
// credit packs. The caller checks the role and that none is open.
func successorOffers(l *entitlements.License, now time.Time) pages.SuccessorOffer {
	can := func(kind string) bool { return l.CanOpenSuccessor(kind, now) == nil }
	return pages.SuccessorOffer{Renew: can(entitlements.KindRenewal), Replace: can(entitlements.KindReplacement),
		TopUp: can(entitlements.KindTopUp) && len(successorTemplates(l.Product, true)) > 0}
}

// successorTemplates are the newest versions of a product's plans (packs false), by
// name, or of its credit packs (packs true), smallest budget first.
func successorTemplates(product string, packs bool) []*templates.Template {
	var out []*templates.Template
	for _, t := range templates.List() {
		if t.Product == product && t.Inherit == packs {
			out = append(out, t)
		}
	}
	if packs {
		slices.SortStableFunc(out, func(a, b *templates.Template) int {
			return cmp.Compare(a.Limits["token_budget"], b.Limits["token_budget"])
		})
	}
	return out
}

// successorForm is the renewal, replacement or top-up form as posted.
type successorForm struct {
	Kind, Template, TermDays, Fingerprint, ContractRef, Reason string
	// Confirm: the confirmation's final button; Edit: back to the form from it.
	Confirm, Edit bool
}

func decodeSuccessorForm(c echo.Context) successorForm {
	return successorForm{Kind: c.FormValue("kind"), Template: strings.TrimSpace(c.FormValue("template")),
		TermDays: strings.TrimSpace(c.FormValue("term_days")), Fingerprint: strings.TrimSpace(c.FormValue("fingerprint")),
		ContractRef: strings.TrimSpace(c.FormValue("contract")), Reason: strings.TrimSpace(c.FormValue("reason")),
		Confirm: c.FormValue("confirm") == "yes", Edit: c.FormValue("edit") != ""}
}

// input checks what the form alone can, and turns it into the service's input (the
// term counted as the service counts a renewal's: from the license's expiry, or now
// for a fixed-term template).
func (f successorForm) input(l *entitlements.License, now time.Time) (entitlements.SuccessorInput, map[string]string) {
	errs := map[string]string{}
	in := entitlements.SuccessorInput{Kind: f.Kind, LicenseID: l.ID, ContractRef: f.ContractRef, Reason: f.Reason}
	if f.Reason == "" || len(f.Reason) > 200 {
		errs["reason"] = "say why, in 1 to 200 characters"
	}
	if f.Kind != entitlements.KindReplacement {
		in.Template = f.Template
	} else {
		in.InstanceFingerprint = &f.Fingerprint
	}
	if f.TermDays != "" && f.Kind == entitlements.KindRenewal {
		days, err := strconv.Atoi(f.TermDays)
		if err != nil || days < 1 || days > 3660 {
			errs["term_days"] = "a whole number of days from 1 to 3660"
		} else {
			start := later(now, l.ExpiresAt)
			if t, err := templates.Latest(f.Template); err == nil && t.FixedTerm {
				start = now
			}
			in.EndsAt = start.Add(time.Duration(days) * 24 * time.Hour)
		}
	}
	return in, errs
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// successorView is the form for a kind of successor of l, with what f typed.
func (s *Handler) successorView(ctx context.Context, l *entitlements.License, f successorForm, by *entitlements.Staff) (pages.StaffSuccessor, error) {
	now := s.now()
	v := pages.StaffSuccessor{Kind: f.Kind, Verb: successorVerbs[f.Kind], LicenseID: l.ID, CustomerID: l.CustomerID, CustomerName: l.CustomerName,
		SKU: l.SKU, ExpiresAt: ui.Day(l.ExpiresAt), StatusLabel: l.StateAt(now).Label(), Template: f.Template, TermDays: f.TermDays,
		Fingerprint: f.Fingerprint, ContractRef: f.ContractRef, ContractDefault: l.ContractRef, Reason: f.Reason, Errors: map[string]string{},
		Changeover: changeoverText(l.ID, s.Svc.Changeover)}
	switch f.Kind {
	case entitlements.KindRenewal:
		plan, err := s.Svc.PlanOf(ctx, l, by)
		if err != nil {
			return v, err
		}
		if v.Template == "" {
			v.Template = plan.SKU
		}
		v.TermChoice = true
		for _, t := range successorTemplates(l.Product, false) {
			label := t.Name + ": " + termText(t)
			if t.Name == plan.SKU {
				label += " (the license's own)"
			}
			v.Templates = append(v.Templates, pages.SuccessorTemplate{Name: t.Name, Label: label})
		}
		def := "Empty: the template's own term"
		if t, err := templates.Latest(v.Template); err == nil {
			def += " (" + termText(t) + " for " + t.Name + ")"
		}
		v.TermDefault = def + ", from the current expiry " + ui.Day(later(now, l.ExpiresAt)) + " (a fixed-term template: from now)."
	case entitlements.KindReplacement:
		v.FixedTemplate = l.SKU + " v" + ui.Itoa(l.TemplateVersion) + ": the original's exact version, with its overrides"
		v.TermFixed = "the original's: until " + ui.Day(l.ExpiresAt)
		v.FingerprintShown, v.FingerprintDefault = true, ui.InstanceText(l.Terms.InstanceFingerprint)
	case entitlements.KindTopUp:
		for _, t := range successorTemplates(l.Product, true) {
			v.Templates = append(v.Templates, pages.SuccessorTemplate{Name: t.Name, Label: t.Name + ": " + limitsText(t.Limits)})
		}
		if v.Template == "" && len(v.Templates) > 0 {
			v.Template = v.Templates[0].Name
		}
		v.TermFixed = "from now until the license's expiry, " + ui.Day(l.ExpiresAt) + "; its other terms carry over"
	default:
		return v, entitlements.Invalid(map[string]string{"kind": "renewal, replacement or top-up"})
	}
	return v, nil
}

// changeoverText says what happens to a license once its successor is issued.
func changeoverText(id string, d time.Duration) string {
	if d <= 0 {
		return "Once its successor is issued, " + id + " is superseded at once."
	}
	return "Once its successor is issued, " + id + " keeps working for " + ui.Duration(d) + " (the changeover), then stops."
}

func termText(t *templates.Template) string {
	if t.FixedTerm {
		return "exactly " + ui.Duration(t.Term)
	}
	return ui.Duration(t.Term)
}

func limitsText(m map[string]int64) string {
	var parts []string
	for _, v := range ui.Limits(m) {
		parts = append(parts, v.Text)
	}
	return strings.Join(parts, ", ")
}

// staffSuccessorForm shows the renewal, replacement or top-up form; when the license
// can't have one now it says why (and links to the open one).
func (s *Handler) staffSuccessorForm(c echo.Context) error {
	ctx, by := c.Request().Context(), httpx.Staff(c)
	l, err := s.Svc.GetLicense(ctx, c.Param("id"), by)
	if err != nil {
		return err
	}
	f := successorForm{Kind: c.QueryParam("kind"), Template: c.QueryParam("template")}
	if f.Kind == entitlements.KindReplacement {
		f.Fingerprint = l.Terms.InstanceFingerprint
	}
	v, err := s.successorView(ctx, l, f, by)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if err := l.CanOpenSuccessor(f.Kind, s.now()); err != nil {
		status = s.successorRefused(&v, err)
	} else if open, err := s.Svc.OpenSuccessor(ctx, l.ID, by); err == nil {
		status = s.successorRefused(&v, entitlements.OpenSuccessorConflict(l.ID, open))
	} else if entitlements.ErrorCode(err) != entitlements.ENOTFOUND {
		return err
	}
	v.Blocked = status != http.StatusOK
	return httpx.Render(c, status, pages.StaffSuccessorForm(s.page(c, v.Verb+" "+l.ID), v))
}

// staffSuccessor takes the form: a refusal shows it again with the messages beside
// the fields and the input kept; otherwise the confirmation with the preview, and
// from its final button the draft is opened.
func (s *Handler) staffSuccessor(c echo.Context) error {
	ctx, by := c.Request().Context(), httpx.Staff(c)
	l, err := s.Svc.GetLicense(ctx, c.Param("id"), by)
	if err != nil {
		return err
	}
	f := decodeSuccessorForm(c)
	if _, ok := successorVerbs[f.Kind]; !ok {
		return entitlements.Invalid(map[string]string{"kind": "renewal, replacement or top-up"})
	}
	v, err := s.successorView(ctx, l, f, by)
	if err != nil {
		return err
	}
	form := func(status int) error {
		return httpx.Render(c, status, pages.StaffSuccessorForm(s.page(c, v.Verb+" "+l.ID), v))
	}
	in, errs := f.input(l, s.now())
	if f.Edit {
		return form(http.StatusOK)
	}
	// The service decides first (role, state, the open successor, the template's
	// rules); the form's own messages join its field messages.
	p, err := s.Svc.PreviewSuccessor(ctx, in, by)
	if err != nil {
		status := s.successorRefused(&v, err)
		if status == 0 {
			return err
		}
		for k, m := range errs {
			v.Errors[k] = m
		}
		return form(status)
	}
	if len(errs) > 0 {
		v.Errors = errs
		return form(http.StatusUnprocessableEntity)
	}
	if !f.Confirm {
		return httpx.Render(c, http.StatusOK, pages.StaffSuccessorConfirm(s.page(c, v.Verb+" "+l.ID+"?"),
			pages.StaffSuccessorReview{Form: v, Preview: previewView(p, s.now())}))
	}
	e, err := s.Svc.CreateSuccessor(ctx, in, by)
	if err != nil {
		if status := s.successorRefused(&v, err); status != 0 {
			return form(status)
		}
		return err
	}
	return s.Cookies.RedirectWithFlash(c, "/staff/entitlements/"+e.ID, "Opened "+e.Kind+" "+e.ID+" of "+l.ID+": another approver approves it, then issue it.")
}

// successorRefused puts a refusal on the form: field messages (422) or a conflict
// with a link to what it conflicts with (409); 0 for any other error (the error page).
func (s *Handler) successorRefused(v *pages.StaffSuccessor, err error) int {
	var de *entitlements.Error
	if !errors.As(err, &de) {
		return 0
	}
	switch de.Code {
	case entitlements.EINVALID:
		for k, m := range de.Fields {
			switch k {
			case "template", "ends_at", "instance_fingerprint", "contract_ref", "reason", "term_days":
				v.Errors[k] = m
			default:
				v.Errors["form"] = strings.TrimSpace(v.Errors["form"] + " " + k + ": " + m)
			}
		}
		if len(de.Fields) == 0 {
			v.Errors["form"] = de.Message
		}
		return http.StatusUnprocessableEntity
	case entitlements.ECONFLICT:
		v.Errors["form"] = de.Message
		if de.Conflict != "" {
			v.ConflictURL, v.ConflictText = "/staff/entitlements/"+de.Conflict, "Open "+de.Conflict
		}
		return http.StatusConflict
	}
	return 0
}
