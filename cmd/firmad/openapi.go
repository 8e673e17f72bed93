package main

import (
	"context"

	"github.com/firma-cloud/firma/api/rest/openapi"
)

// setupOpenAPI serves the description of every REST surface at
// /openapi.json and its page at /docs/api.
func (a *app) setupOpenAPI(ctx context.Context) error {
	return openapi.Register(a.mux)
}
