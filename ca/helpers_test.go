package ca_test

import (
	"encoding/base64"
	"errors"
)

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }
