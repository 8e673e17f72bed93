// Package signing is the one way to a signature with a key in the HSM.
//
// Every way in — a citizen's signing transaction, a CSC signHash, an
// operator's SignDigests call, a token of the built-in TSA — asks this
// package, and none of them reaches keystore signing itself. The rule it
// keeps:
//
//   - The decision is made and recorded before the HSM is asked.
//     Service.Authorise checks policy (for a citizen's key: the citizen
//     may sign, the certificate is valid, its key is live), consumes the
//     single-use consent (Evidence) and appends a key.activated record
//     naming who, which key, which digests and on what evidence. If that
//     record cannot be written nothing is signed and the evidence is given
//     back, so the citizen's consent still stands.
//   - A signature is released only with its record. Grant.Release appends
//     the key.used record(s), linked to key.activated by the same
//     audit.DetailActivation; when it returns an error the caller must
//     withhold the signatures.
//   - The built-in TSA, which signs for anyone, is granted its key per
//     interval (TimestampInterval): the key.activated record opens the
//     interval before its first token is signed, each token is handed out
//     only once its row is in the TSA's issuance log, and the interval's
//     key.used record summarises those rows (audit.IssuanceSummary), so
//     anonymous requests grow the audit log by O(intervals), not O(tokens).
//   - There is no unaudited signer: New refuses a Service without an
//     Auditor, and the ways in refuse to start without a Service.
//
// The signature scheme of a key type is chosen in one place,
// keystore.SchemeFor, used by Grant.Signer (CAdES, PAdES and the TSA's
// CMS) and by Grant.SignDigests when the caller leaves the scheme open.
//
// Keystore signing outside this package, each for its own reason:
//   - signer.Core is the raw batch signer itself; only Grant.SignDigests
//     calls it.
//   - package ca signs certificates, CRLs and OCSP answers with the CA's
//     own keys: the certificate.* records are the audit of those keys.
//   - cmd/firmad's audit checkpointer signs checkpoints of the audit log
//     with the audit key; a key.activated record for every checkpoint would
//     itself need a checkpoint.
//   - transaction.DeriveOTPKey signs a fixed label once at start-up to
//     derive the OTP hashing key; no document or digest of anyone's is
//     signed.
//   - TSA and CA key set-up (tsa.LoadUnit, firmad's loadTSA) loads
//     signers to issue the TSA certificate with the issuing CA's key;
//     those are CA operations. The TSA's own key is only loaded there:
//     its tokens are signed through a Grant.
//   - verify/testpki, a test helper, signs with its own test CAs' keys to
//     build certificates and CRLs; its TSA signs through this package.
//
// The grep that checks this rule,
//
//	grep -rn "SignDigests\|\.Signer(ctx\|core.Sign\|Core.Sign" --include=*.go . | grep -v _test
//
// also finds the gRPC method and its generated code (api, api/firmav1,
// firmactl's client), the keystore's own Signer, and the ways in calling
// Grant.SignDigests and Grant.Signer, which are this package's.
package signing
