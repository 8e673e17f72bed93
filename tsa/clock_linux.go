package tsa

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// KernelClock returns a ClockCheck asking the kernel (adjtimex, read only)
// whether an NTP or PTP daemon keeps the clock synchronised, with a
// maximum error of at most maxErr: the accuracy the TSA claims.
func KernelClock(maxErr time.Duration) func() error {
	return func() error {
		var tx unix.Timex
		state, err := unix.Adjtimex(&tx)
		if err != nil {
			return fmt.Errorf("%w: adjtimex: %w", ErrClockUnsynced, err)
		}
		if state == unix.TIME_ERROR || tx.Status&unix.STA_UNSYNC != 0 {
			return fmt.Errorf("%w: the kernel reports no time synchronisation", ErrClockUnsynced)
		}
		if e := time.Duration(tx.Maxerror) * time.Microsecond; e > maxErr {
			return fmt.Errorf("%w: maximum error %s exceeds %s", ErrClockUnsynced, e, maxErr)
		}
		return nil
	}
}
