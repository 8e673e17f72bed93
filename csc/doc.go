// Package csc is the core of the Cloud Signature Consortium API v2.2
// (served over REST at /csc/v2/... by api/rest/cschttp), so that existing
// CSC clients can sign with the citizens' cloud keys: info,
// credentials/list, credentials/info, credentials/sendOTP,
// credentials/authorize, signatures/signHash and signatures/signDoc
// (CAdES and PAdES through package signer).
//
// Two ways authorise a credential. The OAuth 2.0 code flow of package
// csc/oauth, where the citizen approves the exact digests on firma's own
// page (web, /sign/consent/{id}): its access token is a SAD issued here
// (IssueSAD) after the code the citizen typed was checked here
// (ConsentVerifyOTP), and a SAD sent as bearer token is taken as the SAD.
// And the explicit path below, where the client relays the code: SCAL 1,
// as ETSI TS 119 432 5.3.2 has it, and so credentials say SCAL 2 only
// when the explicit path is off (Options.ExplicitOff) and OAuth is on.
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
