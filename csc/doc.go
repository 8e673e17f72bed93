// Package csc is the core of the Cloud Signature Consortium API v2 (served
// over REST at /csc/v2/... by api/rest/cschttp), so that existing CSC
// clients can sign with the
// citizens' cloud keys: info, credentials/list, credentials/info,
// credentials/sendOTP, credentials/authorize and signatures/signHash.
//
// Who calls: a CSC client is a registered portal acting for a citizen. It
// authenticates as the portal does on the portal API: its API key as an
// HTTP bearer token (Authorization: Bearer <key>), or its mTLS client
// certificate. The citizen is named by userID (DNI/NIE) in
// credentials/list; a credential is one of the citizen's certificates and
// its HSM key, and credentialID is the certificate ID. A portal thus lists
// a citizen's credentials, but can use one only with the one-time password
// that credentials/sendOTP sends by SMS to the citizen's phone.
//
// Authorisation is SCAL2: credentials/authorize takes the OTP, the exact
// hashes and their number and returns a SAD (signature activation data)
// bound to the credential, the calling portal and those hashes. Only the
// SAD's SHA-256 is stored. signatures/signHash reserves every hash it is
// given in one conditional update, all or none, so each hash is signed at
// most once with a SAD even when two nodes race, and a hash the SAD does
// not list, a second use, or more hashes than numSignatures are refused.
// A SAD expires (default 5 minutes).
//
// Errors are JSON {"error": ..., "error_description": ...} as the CSC
// specification has them, with its descriptions where it gives one, since
// clients branch on them: invalid_request (HTTP 400; "SAD expired",
// "Hash is not authorized by the SAD", "Invalid parameter SAD", ...),
// invalid_otp (400), access_denied (403: OTP locked, credential revoked,
// holder no longer allowed to sign), invalid_token (401: portal
// credentials), server_error and temporarily_unavailable.
package csc
