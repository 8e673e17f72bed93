//go:build unix

package sqlite

import "golang.org/x/sys/unix"

// freeBytes is how many bytes an unprivileged writer may still use on
// the file system holding dir, or -1 if it cannot be told.
func freeBytes(dir string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}
