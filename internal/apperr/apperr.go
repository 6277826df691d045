// Package apperr holds the domain errors that services return. They travel up as values and
// become HTTP responses in one place (internal/httpx.ErrorHandler); no handler picks a status
// for a domain error itself.
package apperr

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors; wrap them with context (fmt.Errorf("...: %w", apperr.ErrNotFound)).
var (
	// ErrNotFound is also what a cross-tenant access gets: never 403, never data.
	ErrNotFound        = errors.New("not found")
	ErrConflict        = errors.New("conflict")
	ErrUnauthenticated = errors.New("authentication required")
	ErrForbidden       = errors.New("forbidden")
	ErrRateLimited     = errors.New("too many requests")
	ErrLocked          = errors.New("account temporarily locked")
	// ErrTenantReadOnly is returned for writes by a suspended or cancelled tenant.
	ErrTenantReadOnly = errors.New("organisation is read-only")
)

// FieldError names one invalid input field by its JSON path.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError is an input that is well-formed but not acceptable (HTTP 422), or, with
// Malformed set, one that could not be read at all (HTTP 400).
type ValidationError struct {
	Fields    []FieldError
	Malformed bool
	Detail    string
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid input")
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "; %s: %s", f.Field, f.Message)
	}
	return b.String()
}

// Invalid builds a 422 validation error for one field.
func Invalid(field, message string) *ValidationError {
	return &ValidationError{Fields: []FieldError{{Field: field, Message: message}}}
}

// Malformed builds a 400 error for input that could not be parsed.
func Malformed(field, detail string) *ValidationError {
	ve := &ValidationError{Malformed: true, Detail: detail}
	if field != "" {
		ve.Fields = []FieldError{{Field: field, Message: detail}}
	}
	return ve
}

// Fields collects field errors and returns nil when there are none, so services can write
//
//	var v apperr.Fields; if x == "" { v.Add("x", "is required") }; return v.Err()
type Fields []FieldError

// Add records a problem with one field.
func (f *Fields) Add(field, message string) {
	*f = append(*f, FieldError{Field: field, Message: message})
}

// Err returns the collected problems as a *ValidationError, or nil.
func (f Fields) Err() error {
	if len(f) == 0 {
		return nil
	}
	return &ValidationError{Fields: f}
}

// RetryAfter may wrap ErrRateLimited or ErrLocked to tell the client when to come back.
type RetryAfter struct {
	Err     error
	Seconds int
}

func (e *RetryAfter) Error() string { return e.Err.Error() }
func (e *RetryAfter) Unwrap() error { return e.Err }
