// Command firmactl is the operators' command line for firmad: it sets up
// local state (init), manages keys and signs digests over gRPC.
//
// Each subcommand lives in its own file and registers itself from an init
// function with register; `firmactl help` lists them.
package main
