package httpx

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// SecretView is a one-time secret's page: what it is, how to use it, where to go
// next (and, once shown, how to get another).
type SecretView struct {
	Title, Explain, Secret, Back string
	// Again says how to get a new one, for the reload of a page already shown.
	Again string
}

// secretTTL bounds how long a stashed secret waits for its page.
const secretTTL = 5 * time.Minute

// StashSecret ends the POST that made a one-time secret (a token, a lease token)
// with a redirect to the area's secret page (Post/Redirect/Get), so a reload never
// repeats the POST. The secret rides in a cookie for the next request only, sealed
// with AES-GCM under a key derived from the browser's own session token (which only
// that browser and the server see; no replica needs shared state, and nothing is
// stored server-side). The page shows it once and clears the cookie; a reload says
// it was shown once and how to get another. sess is the browser's session token (the
// cookie's value, or the one this response sets).
func (k Cookies) StashSecret(c echo.Context, sess, page string, v SecretView) error {
	if sess == "" {
		return errors.New("httpx: a one-time secret without a session")
	}
	plain, err := json.Marshal(v)
	if err != nil {
		return err
	}
	aead, err := secretAEAD(sess)
	if err != nil {
		return err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	sealed := aead.Seal(nonce, nonce, plain, []byte(page))
	k.Set(c, secretCookie(page), base64.RawURLEncoding.EncodeToString(sealed), http.SameSiteStrictMode, time.Time{}, int(secretTTL/time.Second))
	return c.Redirect(http.StatusSeeOther, page)
}

// TakeSecret reads and clears the stashed secret of the area's secret page; false
// when there is none (shown already, expired, another session's).
func (k Cookies) TakeSecret(c echo.Context, sess, page string) (SecretView, bool) {
	var v SecretView
	raw := k.Get(c, secretCookie(page))
	if raw == "" {
		return v, false
	}
	k.Clear(c, secretCookie(page))
	sealed, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || sess == "" {
		return v, false
	}
	aead, err := secretAEAD(sess)
	if err != nil || len(sealed) < aead.NonceSize() {
		return v, false
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(page))
	if err != nil || json.Unmarshal(plain, &v) != nil {
		return v, false
	}
	// What a reload of this page says: how to get another (no secret in it).
	k.Set(c, secretCookie(page)+"_again", base64.RawURLEncoding.EncodeToString([]byte(v.Again)), http.SameSiteStrictMode, time.Time{}, 3600)
	return v, true
}

// SecretAgain is how to get another of the secret the area's page last showed ("" if
// none is known).
func (k Cookies) SecretAgain(c echo.Context, page string) string {
	b, err := base64.RawURLEncoding.DecodeString(k.Get(c, secretCookie(page)+"_again"))
	if err != nil {
		return ""
	}
	return string(b)
}

func secretCookie(page string) string {
	if len(page) >= 6 && page[:6] == "/staff" {
		return "staff_secret"
	}
	return "portal_secret"
}

func secretAEAD(session string) (cipher.AEAD, error) {
	m := hmac.New(sha256.New, []byte(session))
	m.Write([]byte("metrum one-time secret v1"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
