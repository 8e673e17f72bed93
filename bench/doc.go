// Package bench holds the benchmarks that make bench runs and, in
// bench/report, the tool that turns their output into
// bench/out/latest.jsonl.
//
// Every signing figure is measured in the same run and on the same token as
// its baseline, raw miekg/pkcs11 C_Sign with the same number of sessions,
// and reported as a ratio to it, since these machines are shared and noisy.
package bench
