package sqlite

import (
	"errors"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// uniqueViolation reports a UNIQUE or PRIMARY KEY constraint violation, by the
// driver's extended result code, not its message.
func uniqueViolation(err error) bool {
	return resultCode(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// foreignKeyViolation reports a FOREIGN KEY constraint violation.
func foreignKeyViolation(err error) bool {
	return resultCode(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY)
}

func resultCode(err error, codes ...int) bool {
	var se *sqlitedriver.Error
	if !errors.As(err, &se) {
		return false
	}
	for _, c := range codes {
		if se.Code() == c {
			return true
		}
	}
	return false
}
