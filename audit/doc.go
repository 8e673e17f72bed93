// Package audit is the tamper-evident audit log security officers read:
// one record for every event that touches a key or a decision (key use per
// document, certificates, OTPs, transactions, citizens, portals, staff,
// authentication failures).
//
// Records are the leaves of an append-only Merkle tree hashed as in RFC 6962
// (golang.org/x/mod/sumdb/tlog); the service periodically signs a
// checkpoint (tree size and root hash, a C2SP tlog-checkpoint in a
// golang.org/x/mod/sumdb/note signed note) with an ECDSA P-256 key held in
// the HSM, and timestamps it with RFC 3161. An export (JSON lines of
// checkpoints and records) is verified offline by VerifyExport, which
// names the first changed, deleted, reordered or inserted record, or a
// truncated tail when given a checkpoint kept elsewhere.
//
// Log.Append returns only once the record is durably committed, so callers
// fail closed: an error means the audited operation must be refused.
// Concurrent appends are group-committed, one transaction per batch.
//
// Personal data (phone numbers, emails, national ID numbers) never goes
// into a record as such: Pseudonym turns it into a keyed HMAC so records
// can be correlated without exposing it. Secrets never go in at all.
package audit
