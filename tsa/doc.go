// Package tsa is the RFC 3161 time-stamping side of the service: a Client
// that asks one or more external (or the built-in) time-stamping
// authorities for tokens and checks every reply before it is used, a Server
// that is the built-in TSA (its key in the HSM, its certificate from the
// built-in CA, serial numbers from the store), and VerifyToken, which checks
// a token on its own, for example one embedded in a CAdES signature.
//
// github.com/digitorus/timestamp builds requests and parses and
// signature-checks tokens; github.com/digitorus/pkcs7 builds the SignedData
// of issued tokens. Everything the library leaves to its caller (status,
// nonce, imprint, chain, EKU and ESS signing-certificate checks) is here.
package tsa
