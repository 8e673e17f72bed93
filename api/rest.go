package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/registry"
)

// What the services' REST face (api/rest/v1http) needs beyond their gRPC
// methods: it calls those methods and turns their status errors into
// problem documents.

// InvalidArgument is the status error for a malformed request field,
// naming it in the message, in ErrorInfo metadata and in a BadRequest
// field violation.
func InvalidArgument(field, problem string) error { return invalidArg(field, problem) }

// Operator authenticates an operator as the gRPC interceptor does and
// returns ctx carrying its name (see Operator), or the unauthenticated
// status error.
func (a *Auth) Operator(ctx context.Context) (context.Context, error) {
	name, ok := a.Authenticate(ctx)
	if !ok {
		return nil, unauthenticated()
	}
	return context.WithValue(ctx, operatorKey{}, name), nil
}

// ImportCSV is ImportCitizens on a whole CSV body (operators only), for
// callers that have the CSV in one piece rather than as a stream.
func (s *RegistryService) ImportCSV(ctx context.Context, body io.Reader) (*firmav1.ImportCitizensResponse, error) {
	if err := s.needOperator(ctx); err != nil {
		return nil, err
	}
	rep, err := s.reg.Import(ctx, body, registry.ImportOptions{})
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, invalidArg("body", fmt.Sprintf("larger than %d bytes", MaxImportBytes))
		case errors.Is(err, registry.ErrHeader):
			return nil, invalidArg("body", err.Error())
		default:
			return nil, s.status(ctx, "ImportCitizens", err)
		}
	}
	resp := &firmav1.ImportCitizensResponse{Rows: int32(rep.Rows), Created: int32(rep.Created)}
	for _, e := range rep.Existing {
		resp.Existing = append(resp.Existing, &firmav1.ImportRowError{Line: int32(e.Line), Error: e.Err.Error()})
	}
	for _, e := range rep.Bad {
		resp.Bad = append(resp.Bad, &firmav1.ImportRowError{Line: int32(e.Line), Error: e.Err.Error()})
	}
	return resp, nil
}
