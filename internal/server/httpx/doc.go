// Package httpx holds what every audience of the issuer's HTTP side shares: the one
// error handler (domain error codes become HTTP statuses and RFC 9457 problems here
// and nowhere else), templ rendering, one-time flash messages, bearer credentials,
// strict JSON bodies, the client address, and small middleware. It knows no service.
package httpx
