// Package errs is firmad's one error vocabulary: an *Error says what kind
// of problem it is (Kind, which each edge maps to its status in one
// table: gRPC code, HTTP status, CSC error, web page), which one (Code, a
// stable machine string clients branch on, e.g. weak_registration,
// key_not_found), what to tell people (Detail), which request field is at
// fault (Field) and the internal cause (Err), which is logged and never
// shown.
//
// An Error is created where the problem is found. Domain packages declare
// their sentinels as *Error values (errors.Is matches on Code) and wrap
// them with context as usual; domain error types with their own fields
// (transaction.Error) convert to an *Error through errors.As.
// Edges call KindOf and CodeOf and never read an error's text to decide.
//
// Standard library only: every package may import it.
package errs
