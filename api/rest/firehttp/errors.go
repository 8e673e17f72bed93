package firehttp

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/fire"
	"github.com/firma-cloud/firma/transaction"
)

// Code is a FIRe error: its number and HTTP status (FIRe's FIReError).
type Code struct {
	C      int
	Status int
}

// FIRe's errors that firma raises.
var (
	ReadingParameters     = Code{1, 400}
	AppIDNeeded           = Code{2, 400}
	OperationNeeded       = Code{3, 400}
	OperationNotSupported = Code{5, 400}
	CertificateNeeded     = Code{6, 400}
	CertificateInvalid    = Code{7, 400}
	UserIDNeeded          = Code{8, 400}
	AlgorithmNeeded       = Code{9, 400}
	CopNeeded             = Code{10, 400}
	FormatNeeded          = Code{11, 400}
	DataNeeded            = Code{12, 400}
	DataInvalid           = Code{13, 400}
	ConfigNeeded          = Code{15, 400}
	ConfigInvalid         = Code{16, 400}
	RedirectNeeded        = Code{17, 400}
	TransactionIDNeeded   = Code{18, 400}
	ParamsInvalid         = Code{20, 400}
	UnknownUser           = Code{21, 400}
	CertificateError      = Code{23, 500}
	WeakRegistry          = Code{24, 500}
	Undefined             = Code{25, 500}
	Signing               = Code{26, 500}
	ProviderNotSelected   = Code{27, 400}
	InvalidSignature      = Code{31, 500}
	Upgrading             = Code{32, 500}
	AsyncIDNeeded         = Code{34, 400}
	CertificateBlocked    = Code{38, 500}
	NoCertificates        = Code{39, 500}
	DuplicateDocument     = Code{42, 400}
	TooManyDocuments      = Code{43, 400}
	NoDocuments           = Code{44, 400}
	DocumentIDNeeded      = Code{48, 400}
	BatchNotSigned        = Code{49, 500}
	BatchSigning          = Code{50, 500}
	BatchRecovered        = Code{51, 500}
	BatchGracePeriod      = Code{52, 500}
	BatchInvalidDocument  = Code{53, 500}
	BatchResultRecovered  = Code{54, 500}
	DocumentIDInvalid     = Code{56, 400}
	Internal              = Code{500, 500}
	Forbidden             = Code{501, 403}
	Unauthorized          = Code{502, 401}
	InvalidTransaction    = Code{503, 403}
	OperationCanceled     = Code{507, 400}
)

// byCode is the one table from firma's error codes (package transaction's
// and package fire's) to FIRe's errors. missing_parameter is keyed by its
// field, FIRe having one code per missing parameter.
var byCode = map[string]Code{
	// This package's.
	"missing_parameter/appid":         AppIDNeeded,
	"missing_parameter/op":            OperationNeeded,
	"missing_parameter/subjectid":     UserIDNeeded,
	"missing_parameter/algorithm":     AlgorithmNeeded,
	"missing_parameter/cop":           CopNeeded,
	"missing_parameter/format":        FormatNeeded,
	"missing_parameter/dat":           DataNeeded,
	"missing_parameter/config":        ConfigNeeded,
	"missing_parameter/transactionid": TransactionIDNeeded,
	"missing_parameter/docid":         DocumentIDNeeded,
	"missing_parameter/graceid":       AsyncIDNeeded,
	"unreadable":                      ReadingParameters,
	"unknown_op":                      OperationNotSupported,
	"no_client_certificate":           CertificateNeeded,
	"bad_client_certificate":          CertificateInvalid,
	"bad_data":                        DataInvalid,
	"bad_properties":                  ParamsInvalid,
	"bad_config":                      ConfigInvalid,
	// Package fire's.
	fire.ErrUnknownApp.Code:      Unauthorized,
	fire.ErrUnsupported.Code:     ParamsInvalid,
	fire.ErrBadProperties.Code:   ParamsInvalid,
	fire.ErrBadConfig.Code:       ConfigInvalid,
	fire.ErrNoRedirect.Code:      RedirectNeeded,
	fire.ErrBadDocID.Code:        DocumentIDInvalid,
	fire.ErrDuplicateDocID.Code:  DuplicateDocument,
	fire.ErrBatchFull.Code:       TooManyDocuments,
	fire.ErrBatchEmpty.Code:      NoDocuments,
	fire.ErrTransaction.Code:     InvalidTransaction,
	fire.ErrNotSigned.Code:       ProviderNotSelected,
	fire.ErrBatchNotSigned.Code:  BatchNotSigned,
	fire.ErrBatchFailed.Code:     BatchSigning,
	fire.ErrResultRecovered.Code: BatchResultRecovered,
	fire.ErrDocRecovered.Code:    BatchRecovered,
	fire.ErrUnknownDocument.Code: BatchInvalidDocument,
	fire.ErrUpgrade.Code:         Upgrading,
	fire.ErrNoStoredError.Code:   Internal,
	fire.ErrUnknownGraceID.Code:  InvalidTransaction,
	fire.ErrGrace.Code:           BatchGracePeriod,
	// Package transaction's.
	string(transaction.CodeUnknownCitizen):     UnknownUser,
	"invalid_request/citizen_id":               UnknownUser,
	string(transaction.CodeWeakRegistration):   WeakRegistry,
	string(transaction.CodeCertificateBlocked): CertificateBlocked,
	string(transaction.CodeCredentialLocked):   CertificateBlocked,
	string(transaction.CodeNoCertificate):      NoCertificates,
	string(transaction.CodeTooManyDocuments):   TooManyDocuments,
	string(transaction.CodeDocumentTooLarge):   ReadingParameters,
	string(transaction.CodeDuplicateDocument):  DuplicateDocument,
	string(transaction.CodeBadRedirect):        ConfigInvalid,
	string(transaction.CodeUnsupportedFormat):  ParamsInvalid,
	string(transaction.CodeInvalidDocument):    DataInvalid,
	string(transaction.CodeForbidden):          Forbidden,
	string(transaction.CodeUnknownTransaction): InvalidTransaction,
	string(transaction.CodeExpired):            InvalidTransaction,
	string(transaction.CodeCancelledByCitizen): OperationCanceled,
	string(transaction.CodeCancelled):          OperationCanceled,
	string(transaction.CodeOTPLocked):          Signing,
	string(transaction.CodeSigningFailed):      Signing,
	string(transaction.CodeTimestampFailed):    Signing,
	string(transaction.CodeResultsPurged):      InvalidTransaction,
	string(transaction.CodeWrongState):         InvalidTransaction,
	string(transaction.CodeCitizenMismatch):    InvalidTransaction,
}

// byKind is the fallback for a code the table does not name.
var byKind = map[errs.Kind]Code{
	errs.Invalid: ParamsInvalid, errs.TooLarge: ReadingParameters, errs.NotFound: InvalidTransaction,
	errs.Unauthenticated: Unauthorized, errs.Denied: Forbidden, errs.Gone: InvalidTransaction,
	errs.FailedPrecondition: Undefined, errs.Unprocessable: Undefined, errs.TooMany: Undefined,
}

// codeOf is err's FIRe error and the message for the client.
func codeOf(err error) (Code, string) {
	e := errs.As(err)
	if e == nil {
		return Internal, "internal error"
	}
	if c, ok := byCode[e.Code+"/"+e.Field]; ok && e.Field != "" {
		return c, e.Detail
	}
	if c, ok := byCode[e.Code]; ok {
		return c, message(c, e)
	}
	if e.Kind == errs.Unavailable {
		return Internal, e.Detail // what failed and that a retry may succeed
	}
	if c, ok := byKind[e.Kind]; ok {
		return c, e.Detail
	}
	return Internal, "internal error"
}

func message(c Code, e *errs.Error) string {
	if c == Internal && e.Code != fire.ErrNoStoredError.Code {
		return "internal error" // an internal detail is never shown
	}
	if e.Detail == "" {
		return e.Code
	}
	return e.Detail
}

// writeError writes err as FIRe's error body: {"c":N,"m":"..."} with
// exactly the media type the clients test for.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	c, m := codeOf(err)
	lvl := slog.LevelWarn
	if c.Status >= 500 {
		lvl = slog.LevelError
	}
	h.log.LogAttrs(r.Context(), lvl, "fire request refused", slog.Int("fire_code", c.C), slog.Int("status", c.Status), slog.Any("err", err))
	h.m.errors.WithLabelValues(strconv.Itoa(c.C)).Inc()
	body, _ := json.Marshal(struct {
		C int    `json:"c"`
		M string `json:"m"`
	}{c.C, m})
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(c.Status)
	_, _ = w.Write(body)
}
