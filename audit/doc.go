// Package audit is the tamper-evident audit log security officers read:
// one record for every event that touches a key or a decision (key use per
// document, certificates, OTPs, transactions, citizens, portals, staff,
// authentication failures).
//
// Records are the leaves of an append-only Merkle tree hashed as in RFC 6962
// (golang.org/x/mod/sumdb/tlog): a leaf is the record's canonical JSON, and
// the tree's stored hashes are kept beside the records so proofs cost a
// few reads. The service periodically signs a checkpoint (tree size and
// root hash, a C2SP tlog-checkpoint in a golang.org/x/mod/sumdb/note signed
// note) with an ECDSA P-256 key held in the HSM (NewNoteSigner: note itself
// only signs with Ed25519), and timestamps it with RFC 3161.
//
// Log.Append returns only once the record is committed, so callers fail
// closed: an error means the audited operation must be refused. Concurrent
// appends are group-committed, one transaction per batch. A record of a
// signature is committed before the signature is handed out.
//
// Personal data (phone numbers, emails) never goes into a record as such:
// Pseudonym turns it into a keyed HMAC so records can be correlated
// without exposing it. Secrets never go in at all; Validate refuses detail
// keys that name them.
//
// How an auditor checks the log:
//
//	firmactl audit checkpoint --out 2026-11-25.note   # keep it outside the service
//	firmactl audit export --out audit.jsonl
//	firmactl audit verify --key "$AUDIT_KEY" --trusted 2026-11-25.note \
//	    --tsa-roots tsa-root.pem audit.jsonl
//
// VerifyExport (what the last command runs) rebuilds the tree from the
// records, checks every checkpoint's signature and root, and names the
// first changed, deleted, reordered or inserted record, or the first
// missing one when the log was cut back below a checkpoint. A checkpoint
// kept elsewhere is what catches a log cut back together with its
// checkpoints. InclusionProof and ConsistencyProof prove one record is in a
// checkpoint and that a later checkpoint extends an earlier one.
package audit
