// Package policy decides what citizens and staff may do: which registration
// level a method grants, who may hold a signing certificate and sign, and
// which staff role may run which registration. Transports (gRPC, REST, HTML)
// and the registry ask it and only translate its answers; a refusal carries
// a reason written for the person refused.
package policy
