// Package v1http is the /v1 REST face of firmad's gRPC services (package
// api, proto package firma.v1), one surface of the REST layer under
// api/rest. Each route calls the gRPC method of the same name with the
// request message decoded from proto JSON, answers the response message
// with snake_case names, and turns the method's status error into an RFC
// 9457 problem document:
//
//	/v1/registry/...     RegistryService (RegisterRegistry)
//	/v1/certificates...  CertificateService, and /v1/ca/chain (RegisterCertificates)
//	/v1/mail/outbox      MailService (RegisterMail)
//	/v1/verify           VerifyService (RegisterVerify)
//
// Authentication is the services' own: the Authorization header becomes
// gRPC metadata and the TLS state the peer, as on a gRPC call.
package v1http
