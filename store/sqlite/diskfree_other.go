//go:build !unix

package sqlite

// freeBytes cannot tell here: the write check relies on the lock alone.
func freeBytes(string) int64 { return -1 }
