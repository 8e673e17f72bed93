package ca_test

import (
	"crypto/x509"
	"encoding/base64"
	"errors"

	"golang.org/x/crypto/ocsp"

	"github.com/firma-cloud/firma/ca"
)

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func ocspRequest(c *ca.Certificate, issuer *x509.Certificate) ([]byte, error) {
	return ocsp.CreateRequest(c.Cert, issuer, nil)
}
