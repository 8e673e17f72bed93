// Command firmad is the Firma cloud-signature service: it serves the gRPC
// API on one address and /healthz, /readyz and /metrics over HTTP on
// another, with keys in a PKCS#11 HSM and records in the store.
//
// Usage:
//
//	firmad -config var/firmad.yaml [-listen-grpc ADDR] [-hsm-token-label L] ...
//
// The HSM PIN comes from FIRMA_HSM_PIN or hsm.pin_file, never from the
// config file. SIGTERM or SIGINT drains in-flight calls and exits 0.
//
// Start-up is a list of steps (setups in main.go), each a method of app in
// its own file; a feature adds its file and one line to that list.
package main
