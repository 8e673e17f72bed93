package csc

import (
	"crypto"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/firma-cloud/firma/keystore"
)

// Object identifiers of the algorithms CSC clients name.
const (
	oidSHA256 = "2.16.840.1.101.3.4.2.1"
	oidSHA384 = "2.16.840.1.101.3.4.2.2"
	oidSHA512 = "2.16.840.1.101.3.4.2.3"

	oidECPublicKey = "1.2.840.10045.2.1"
	oidECDSASHA256 = "1.2.840.10045.4.3.2"
	oidECDSASHA384 = "1.2.840.10045.4.3.3"
	oidECDSASHA512 = "1.2.840.10045.4.3.4"
	oidRSA         = "1.2.840.113549.1.1.1"
	oidRSAPSS      = "1.2.840.113549.1.1.10"
	oidRSASHA256   = "1.2.840.113549.1.1.11"
	oidRSASHA384   = "1.2.840.113549.1.1.12"
	oidRSASHA512   = "1.2.840.113549.1.1.13"
	oidMGF1        = "1.2.840.113549.1.1.8"
	oidCurveP256   = "1.2.840.10045.3.1.7"
	oidCurveP384   = "1.3.132.0.34"
)

var hashByOID = map[string]crypto.Hash{oidSHA256: crypto.SHA256, oidSHA384: crypto.SHA384, oidSHA512: crypto.SHA512}

// signAlgo is what a signAlgo OID asks of the key.
type signAlgo struct {
	ec     bool
	scheme keystore.Scheme
	hash   crypto.Hash // 0 when the OID leaves it to hashAlgorithmOID
}

var signAlgos = map[string]signAlgo{
	oidECPublicKey: {ec: true, scheme: keystore.ECDSA},
	oidECDSASHA256: {ec: true, scheme: keystore.ECDSA, hash: crypto.SHA256},
	oidECDSASHA384: {ec: true, scheme: keystore.ECDSA, hash: crypto.SHA384},
	oidECDSASHA512: {ec: true, scheme: keystore.ECDSA, hash: crypto.SHA512},
	oidRSA:         {scheme: keystore.PKCS1v15},
	oidRSASHA256:   {scheme: keystore.PKCS1v15, hash: crypto.SHA256},
	oidRSASHA384:   {scheme: keystore.PKCS1v15, hash: crypto.SHA384},
	oidRSASHA512:   {scheme: keystore.PKCS1v15, hash: crypto.SHA512},
	oidRSAPSS:      {scheme: keystore.PSS},
}

// algoNames are the signAlgo OIDs' names, for audit records: an OID's
// dotted digits read like a phone number to the audit log's checks.
var algoNames = map[string]string{
	oidECPublicKey: "ecdsa", oidECDSASHA256: "ecdsa-with-SHA256", oidECDSASHA384: "ecdsa-with-SHA384", oidECDSASHA512: "ecdsa-with-SHA512",
	oidRSA: "rsaEncryption", oidRSASHA256: "sha256WithRSAEncryption", oidRSASHA384: "sha384WithRSAEncryption",
	oidRSASHA512: "sha512WithRSAEncryption", oidRSAPSS: "RSASSA-PSS",
}

// allSignAlgos lists every signAlgo OID signHash takes, for info.
func allSignAlgos() []string {
	return append(keyAlgos(keystore.ECP256), keyAlgos(keystore.RSA2048)...)
}

// keyAlgos lists the signAlgo OIDs a key type can serve, for
// credentials/info.
func keyAlgos(t keystore.Type) []string {
	if t.IsRSA() {
		return []string{oidRSASHA256, oidRSASHA384, oidRSASHA512, oidRSA, oidRSAPSS}
	}
	return []string{oidECDSASHA256, oidECDSASHA384, oidECDSASHA512, oidECPublicKey}
}

// keyInfo returns a key type's length in bits and curve OID ("" for RSA).
func keyInfo(t keystore.Type) (int, string) {
	switch t {
	case keystore.ECP256:
		return 256, oidCurveP256
	case keystore.ECP384:
		return 384, oidCurveP384
	case keystore.RSA2048:
		return 2048, ""
	case keystore.RSA3072:
		return 3072, ""
	}
	return 0, ""
}

// pssParams is RSASSA-PSS-params (RFC 4055); only what signHash checks.
type pssParams struct {
	Hash       pkix.AlgorithmIdentifier `asn1:"explicit,tag:0,optional"`
	MGF        pkix.AlgorithmIdentifier `asn1:"explicit,tag:1,optional"`
	SaltLength int                      `asn1:"explicit,tag:2,optional,default:20"`
	Trailer    int                      `asn1:"explicit,tag:3,optional,default:1"`
}

// resolveSignAlgo checks signAlgo, its parameters and the hash algorithm
// against the key type and the SAD's hash, and returns the scheme.
func resolveSignAlgo(t keystore.Type, algoOID, paramsB64 string, h crypto.Hash) (keystore.Scheme, error) {
	a, ok := signAlgos[algoOID]
	if !ok {
		return "", invalid("signAlgo %q is not supported; credentials/info lists the supported ones", algoOID)
	}
	if a.ec == t.IsRSA() {
		return "", invalid("signAlgo %s does not fit the credential's %s key", algoOID, t)
	}
	if a.hash != 0 && a.hash != h {
		return "", invalid("signAlgo %s implies %s but the hashes are %s", algoOID, a.hash, h)
	}
	if a.scheme != keystore.PSS {
		if paramsB64 != "" {
			return "", invalid("signAlgoParams is only for RSASSA-PSS")
		}
		return a.scheme, nil
	}
	// RSASSA-PSS has no default worth guessing (the ASN.1 one is SHA-1):
	// the specification requires the parameters.
	if paramsB64 == "" {
		return "", invalid("missing parameter signAlgoParams: RSASSA-PSS needs its DER RSASSA-PSS-params (hash, MGF1, salt length)")
	}
	der, err := decodeB64(paramsB64)
	if err != nil {
		return "", invalid("signAlgoParams is not base64")
	}
	var p pssParams
	rest, err := asn1.Unmarshal(der, &p)
	if err != nil || len(rest) != 0 {
		return "", invalid("signAlgoParams is not DER RSASSA-PSS-params")
	}
	ph := crypto.SHA1 // the ASN.1 default
	if len(p.Hash.Algorithm) > 0 {
		ph = hashByOID[p.Hash.Algorithm.String()]
	}
	if ph != h {
		return "", invalid("signAlgoParams names hash %v, not the %s of the hashes", fmtHash(ph), h)
	}
	if len(p.MGF.Algorithm) > 0 && p.MGF.Algorithm.String() != oidMGF1 {
		return "", invalid("signAlgoParams: only MGF1 is supported")
	}
	if p.SaltLength != h.Size() {
		return "", invalid("signAlgoParams: salt length must be %d, the hash length", h.Size())
	}
	if p.Trailer != 1 {
		return "", invalid("signAlgoParams: trailer field must be 1")
	}
	return a.scheme, nil
}

func fmtHash(h crypto.Hash) string {
	if h == 0 || !h.Available() {
		return "unsupported"
	}
	return fmt.Sprint(h)
}

// DecodeBase64 is decodeB64 for the transport (signDoc's documents).
func DecodeBase64(s string) ([]byte, error) { return decodeB64(s) }

// decodeB64 is the one base64 rule of every binary parameter (hashes,
// signAlgoParams): the standard and the URL-safe alphabets, padded or
// not, as clients send all four. The padding, when present, must be
// right.
func decodeB64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "-_") {
		if strings.HasSuffix(s, "=") {
			return base64.URLEncoding.DecodeString(s)
		}
		return base64.RawURLEncoding.DecodeString(s)
	}
	if strings.HasSuffix(s, "=") || len(s)%4 == 0 {
		return base64.StdEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}
