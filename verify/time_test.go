package verify_test

import (
	"crypto"
	"time"

	"github.com/go-json-experiment/json"
)

type timeT = time.Time

func parse(s string) (time.Time, error) { return time.Parse(time.RFC3339, s) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

var cryptoHash0 = crypto.Hash(0)
