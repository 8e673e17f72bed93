package config

import "os"

// TakePINFromEnv removes FIRMA_HSM_PIN from the process environment and
// returns a getenv (for Load and ReadPIN) that still serves it, from a
// copy, to this process alone. Call it first thing in main: child
// processes and anything that walks os.Environ (a crash reporter, a
// library that logs its environment) then never see the PIN.
//
// It does not reach /proc/<pid>/environ: the kernel keeps the block the
// process was started with, readable by the same user and root, whatever
// the process does to its environment later. That is why hsm.pin_file
// (mode 0600, or a systemd credential) is the recommended source and the
// variable a convenience for containers and tests.
func TakePINFromEnv() func(string) string {
	pin, ok := os.LookupEnv(EnvPIN)
	if !ok {
		return os.Getenv
	}
	os.Unsetenv(EnvPIN)
	return func(k string) string {
		if k == EnvPIN {
			return pin
		}
		return os.Getenv(k)
	}
}
