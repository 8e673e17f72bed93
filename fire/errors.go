package fire

import "github.com/firma-cloud/firma/errs"

// Refusals of this package, beyond those of package transaction; the
// FIRe edge maps each code to a FIRe error in its one table.
var (
	ErrUnknownApp      = errs.Sentinel(errs.Unauthenticated, "fire_unknown_app", "unknown or disabled application, or a certificate not registered for it")
	ErrUnsupported     = errs.Sentinel(errs.Invalid, "fire_unsupported", "not supported by firma")
	ErrBadProperties   = errs.Sentinel(errs.Invalid, "fire_bad_properties", "malformed properties")
	ErrBadConfig       = errs.Sentinel(errs.Invalid, "fire_bad_config", "malformed config")
	ErrNoRedirect      = errs.Sentinel(errs.Invalid, "fire_no_redirect", "config names no redirectOkUrl or redirectErrorUrl")
	ErrBadDocID        = errs.Sentinel(errs.Invalid, "fire_bad_docid", "docid must be 1 to 40 of [0-9a-zA-Z-_.]")
	ErrDuplicateDocID  = errs.Sentinel(errs.Invalid, "fire_duplicate_docid", "docid already in the batch")
	ErrBatchFull       = errs.Sentinel(errs.Invalid, "fire_batch_full", "too many documents in the batch")
	ErrBatchEmpty      = errs.Sentinel(errs.Invalid, "fire_batch_empty", "the batch has no documents")
	ErrTransaction     = errs.Sentinel(errs.NotFound, "fire_invalid_transaction", "unknown, expired or another user's transaction")
	ErrNotSigned       = errs.Sentinel(errs.FailedPrecondition, "fire_not_signed", "not signed yet")
	ErrBatchNotSigned  = errs.Sentinel(errs.FailedPrecondition, "fire_batch_not_signed", "the batch is not signed yet")
	ErrBatchFailed     = errs.Sentinel(errs.FailedPrecondition, "fire_batch_failed", "the batch or the document failed")
	ErrResultRecovered = errs.Sentinel(errs.FailedPrecondition, "fire_result_recovered", "the batch result was already recovered")
	ErrDocRecovered    = errs.Sentinel(errs.FailedPrecondition, "fire_document_recovered", "the signature was already recovered")
	ErrUnknownDocument = errs.Sentinel(errs.NotFound, "fire_unknown_document", "no such document in the batch")
	ErrUpgrade         = errs.Sentinel(errs.Unprocessable, "fire_upgrade", "the signature cannot be upgraded as asked")
	ErrNoStoredError   = errs.Sentinel(errs.Internal, "fire_no_stored_error", "no error is recorded for this transaction")
	ErrUnknownGraceID  = errs.Sentinel(errs.NotFound, "fire_unknown_grace_id", "no signature waits under that id")
	ErrGrace           = errs.Sentinel(errs.FailedPrecondition, "fire_grace_period", "the grace period before the upgrade has not passed")
)
