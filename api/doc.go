// Package api serves firmad's gRPC services (package firma.v1, generated in
// api/firmav1): it translates requests into keystore and signer calls and
// their errors into gRPC statuses, and admits only authenticated operators.
//
// It holds no policy and no keys: those are the keystore's and, in later
// issues, package policy's. Every error leaves through toStatus in
// errors.go: its errs.Kind picks the gRPC code from one table (grpcCodes)
// and its errs code the ErrorInfo reason (reasonOf), so no package
// registers its sentinels here. The REST face of these services is
// api/rest/v1http.
package api
