package rest

import (
	"net/http"

	"github.com/firma-cloud/firma/errs"
)

// statuses is the one table from an error's kind to the HTTP status every
// REST surface answers with. (The CSC API keeps the statuses its
// specification gives, in its own error form.)
var statuses = map[errs.Kind]int{
	errs.Invalid:            http.StatusBadRequest,
	errs.TooLarge:           http.StatusRequestEntityTooLarge,
	errs.Unauthenticated:    http.StatusUnauthorized,
	errs.Denied:             http.StatusForbidden,
	errs.NotFound:           http.StatusNotFound,
	errs.Conflict:           http.StatusConflict,
	errs.FailedPrecondition: http.StatusConflict,
	errs.Unprocessable:      http.StatusUnprocessableEntity,
	errs.TooMany:            http.StatusTooManyRequests,
	errs.Gone:               http.StatusGone,
	errs.Unavailable:        http.StatusServiceUnavailable,
	errs.Canceled:           499, // nginx's "client closed request": nobody reads it
	errs.Timeout:            http.StatusGatewayTimeout,
	errs.OutOfRange:         http.StatusBadRequest,
	errs.Internal:           http.StatusInternalServerError,
}

// Status is the HTTP status of an error of kind k.
func Status(k errs.Kind) int {
	if s, ok := statuses[k]; ok {
		return s
	}
	return http.StatusInternalServerError
}
