// Package httpx is the HTTP edge shared by every module: problem+json errors, strict JSON
// decoding with validation, and cursor pagination. Domain errors become HTTP here and only here.
package httpx

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
)

// ProblemContentType is RFC 9457's media type.
const ProblemContentType = "application/problem+json"

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail,omitempty"`
	Errors    []apperr.FieldError `json:"errors,omitempty"`
	RequestID string              `json:"request_id,omitempty"`
}

const typeBase = "https://switchboard.dev/problems/"

// ProblemFor maps an error to its problem document. Unknown errors are 500s whose detail is
// not shown, so internals never leak to clients.
func ProblemFor(err error) Problem {
	var ve *apperr.ValidationError
	var fe *fiber.Error
	switch {
	case errors.As(err, &ve):
		if ve.Malformed {
			return Problem{Type: typeBase + "malformed-request", Title: "Malformed request", Status: http.StatusBadRequest, Detail: ve.Detail, Errors: ve.Fields}
		}
		return Problem{Type: typeBase + "validation", Title: "Validation failed", Status: http.StatusUnprocessableEntity, Detail: "One or more fields are invalid.", Errors: ve.Fields}
	case errors.Is(err, apperr.ErrNotFound):
		return Problem{Type: typeBase + "not-found", Title: "Not found", Status: http.StatusNotFound}
	case errors.Is(err, apperr.ErrConflict):
		return Problem{Type: typeBase + "conflict", Title: "Conflict", Status: http.StatusConflict, Detail: err.Error()}
	case errors.Is(err, apperr.ErrUnauthenticated):
		return Problem{Type: typeBase + "unauthenticated", Title: "Authentication required", Status: http.StatusUnauthorized, Detail: err.Error()}
	case errors.Is(err, apperr.ErrForbidden):
		return Problem{Type: typeBase + "forbidden", Title: "Forbidden", Status: http.StatusForbidden, Detail: err.Error()}
	case errors.Is(err, apperr.ErrTenantReadOnly):
		return Problem{Type: typeBase + "read-only", Title: "Organisation is read-only", Status: http.StatusForbidden, Detail: err.Error()}
	case errors.Is(err, apperr.ErrLocked):
		return Problem{Type: typeBase + "locked", Title: "Account temporarily locked", Status: http.StatusTooManyRequests, Detail: err.Error()}
	case errors.Is(err, apperr.ErrRateLimited):
		return Problem{Type: typeBase + "rate-limited", Title: "Too many requests", Status: http.StatusTooManyRequests}
	case errors.As(err, &fe):
		p := Problem{Type: typeBase + "http", Title: http.StatusText(fe.Code), Status: fe.Code}
		if fe.Message != p.Title {
			p.Detail = fe.Message
		}
		switch fe.Code {
		case http.StatusRequestEntityTooLarge:
			p.Type, p.Detail = typeBase+"too-large", "The request body is larger than the server accepts."
		case http.StatusNotFound:
			p.Type, p.Detail = typeBase+"not-found", ""
		}
		return p
	default:
		return Problem{Type: typeBase + "internal", Title: "Internal server error", Status: http.StatusInternalServerError}
	}
}

// ErrorHandler is fiber's single place where errors become responses.
func ErrorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		p := ProblemFor(err)
		if rid, ok := c.Locals("requestid").(string); ok {
			p.RequestID = rid
		}
		if p.Status >= 500 {
			log.ErrorContext(c.UserContext(), "request failed", "err", err, "method", c.Method(), "path", c.Path())
		}
		var ra *apperr.RetryAfter
		if errors.As(err, &ra) && ra.Seconds > 0 {
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(ra.Seconds))
		}
		return WriteProblem(c, p)
	}
}

// WriteProblem writes p as application/problem+json.
func WriteProblem(c *fiber.Ctx, p Problem) error {
	c.Status(p.Status)
	c.Set(fiber.HeaderContentType, ProblemContentType)
	b, err := c.App().Config().JSONEncoder(p)
	if err != nil {
		return err
	}
	return c.Send(b)
}
