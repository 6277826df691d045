package httpx

import (
	"strconv"

	"github.com/google/uuid"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/internal/ids"
)

// Page limits.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// PageParams are ?limit= and ?cursor=. The cursor is the id of the last row of the previous
// page; ids are UUIDv7, so "newest first" is "id descending".
type PageParams struct {
	Limit  int
	Cursor string
}

// ParsePage reads and checks the paging query parameters.
func ParsePage(c *fiber.Ctx) (PageParams, error) {
	p := PageParams{Limit: DefaultLimit, Cursor: c.Query("cursor")}
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return p, apperr.Invalid("limit", "must be an integer from 1 to "+strconv.Itoa(MaxLimit))
		}
		p.Limit = n
	}
	if p.Cursor != "" {
		if _, ok := ids.Parse(p.Cursor); !ok {
			return p, apperr.Invalid("cursor", "is not a cursor from a previous page")
		}
	}
	return p, nil
}

// List is the shape of every list response.
type List[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// NewList trims a result fetched with limit+1 rows to the page and sets the next cursor.
func NewList[T any](rows []T, limit int, id func(T) string) List[T] {
	l := List[T]{Items: rows}
	if l.Items == nil {
		l.Items = []T{}
	}
	if len(rows) > limit {
		l.Items = rows[:limit]
		next := id(rows[limit-1])
		l.NextCursor = &next
	}
	return l
}

// PathID parses a UUID path parameter; a malformed one is refused at the edge with a 400.
func PathID(c *fiber.Ctx, name string) (string, error) {
	s := c.Params(name)
	if _, ok := ids.Parse(s); !ok {
		return "", apperr.Malformed(name, "must be a UUID")
	}
	return s, nil
}

// PathUUID is PathID parsed.
func PathUUID(c *fiber.Ctx, name string) (uuid.UUID, error) {
	s, err := PathID(c, name)
	if err != nil {
		return uuid.Nil, err
	}
	id, _ := ids.Parse(s)
	return id, nil
}
