package httpx

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jsonv1 "github.com/go-json-experiment/json/v1"
	"github.com/labstack/echo/v4"

	"github.com/metrum/licensing/internal/entitlements"
)

// FuzzValidInput: any path, query and form either reaches the handler clean (valid
// UTF-8, no control characters, bounded) or is a 400; never a panic.
func FuzzValidInput(f *testing.F) {
	f.Add("/staff/licenses/%FF", "customer=%00", "name=ok")
	f.Add("/v1/bundles/genai-smart-router/latest", "x=1", "a=%C3%A9")
	f.Fuzz(func(t *testing.T, path, query, form string) {
		e := echo.New()
		req, err := http.NewRequest("POST", "http://x"+"/"+strings.TrimLeft(path, "/")+"?"+query, strings.NewReader(form))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", echo.MIMEApplicationForm)
		c := e.NewContext(req, httptest.NewRecorder())
		reached := false
		err = ValidInput(func(c echo.Context) error {
			reached = true
			for _, vs := range c.QueryParams() {
				for _, v := range vs {
					if !clean(v) {
						t.Fatalf("an unclean query value reached the handler: %q", v)
					}
				}
			}
			fp, _ := c.FormParams()
			for _, vs := range fp {
				for _, v := range vs {
					if !clean(v) {
						t.Fatalf("an unclean form value reached the handler: %q", v)
					}
				}
			}
			return nil
		})(c)
		if !reached && entitlements.ErrorCode(err) != entitlements.EINVALID {
			t.Fatalf("refused with %v, want invalid", err)
		}
	})
}

// FuzzDecodeStrict: a body the staff API can't take is an invalid-input error whose
// message names no Go type, whatever the bytes.
func FuzzDecodeStrict(f *testing.F) {
	f.Add([]byte(`{"Email":"a","Password":"b","TokenName":"c","Lifetime":1}`))
	f.Add([]byte(`{"Email":"a","Email":"b"}`))
	f.Add([]byte(`{"Nope":1}`))
	f.Add([]byte("\xff{"))
	f.Fuzz(func(t *testing.T, body []byte) {
		var v struct {
			Email, Password, TokenName string
			Lifetime                   time.Duration
		}
		err := DecodeStrict(body, &v, jsonv1.FormatDurationAsNano(true))
		if err == nil {
			return
		}
		msg := entitlements.ErrorMessage(err)
		if entitlements.ErrorCode(err) != entitlements.EINVALID || strings.Contains(msg, "Go ") || strings.Contains(msg, "struct") ||
			strings.Contains(msg, "time.Duration") {
			t.Fatalf("%q: %v", body, err)
		}
	})
}
