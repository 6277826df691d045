package contacts

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
	"github.com/switchboard-cloud/switchboard/modules/channels/provider"
)

// csvColumns are the columns of an export and the ones an import understands.
var csvColumns = []string{"id", "name", "email", "phone", "company", "locale", "tags", "external_id"}

const maxImportRows = 10000

// RowError is one refused row of an import (row 1 is the header).
type RowError struct {
	Row     int    `json:"row"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ImportResult says what an import did.
type ImportResult struct {
	Created int        `json:"created"`
	Updated int        `json:"updated"`
	Errors  []RowError `json:"errors"`
}

// Import reads a CSV with a header row naming some of csvColumns. Each row is its own
// transaction: a good row is kept even when another is refused. A row whose e-mail, phone or
// external id is known updates that contact; the others create one.
func (s *Service) Import(ctx context.Context, r io.Reader) (ImportResult, error) {
	res := ImportResult{Errors: []RowError{}}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	head, err := cr.Read()
	if err != nil {
		return res, apperr.Invalid("file", "is not a CSV file with a header row")
	}
	col := map[string]int{}
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		known := false
		for _, c := range csvColumns {
			known = known || c == h
		}
		if !known {
			return res, apperr.Invalid("file", fmt.Sprintf("unknown column %q; columns are %s", h, strings.Join(csvColumns, ", ")))
		}
		col[h] = i
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for row := 2; ; row++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if row-1 > maxImportRows {
			res.Errors = append(res.Errors, RowError{Row: row, Message: fmt.Sprintf("at most %d rows per import; the rest was not read", maxImportRows)})
			break
		}
		if err != nil {
			res.Errors = append(res.Errors, RowError{Row: row, Message: "unreadable CSV: " + err.Error()})
			continue
		}
		var idents []provider.Identity
		for _, k := range [][2]string{{"email", provider.IdentityEmail}, {"phone", provider.IdentityPhone}, {"external_id", provider.IdentityExternal}} {
			if v := get(rec, k[0]); v != "" {
				idents = append(idents, provider.Identity{Kind: k[1], Value: v})
			}
		}
		in := Input{}
		for _, k := range []struct {
			name string
			dst  **string
		}{{"name", &in.Name}, {"company", &in.Company}, {"locale", &in.Locale}} {
			if v := get(rec, k.name); v != "" {
				*k.dst = &v
			}
		}
		if t := get(rec, "tags"); t != "" {
			tags := strings.Split(t, ";")
			in.Tags = &tags
		}
		created, err := s.importRow(ctx, idents, in)
		if err != nil {
			res.Errors = append(res.Errors, rowErrors(row, err)...)
			continue
		}
		if created {
			res.Created++
		} else {
			res.Updated++
		}
	}
	return res, nil
}

func (s *Service) importRow(ctx context.Context, idents []provider.Identity, in Input) (bool, error) {
	if len(idents) == 0 && in.Name == nil {
		return false, apperr.Invalid("name", "a row needs a name, an e-mail, a phone or an external id")
	}
	var norm []provider.Identity
	var bad apperr.Fields
	for _, id := range idents {
		n, err := NormalizeIdentity(id)
		if err != nil {
			bad.Add(map[string]string{provider.IdentityEmail: "email", provider.IdentityPhone: "phone", provider.IdentityExternal: "external_id"}[id.Kind], err.Error())
			continue
		}
		norm = append(norm, n)
	}
	if err := bad.Err(); err != nil {
		return false, err
	}
	found, err := s.lookup(ctx, norm)
	if err != nil {
		return false, err
	}
	for _, id := range norm {
		if c, ok := found[id]; ok {
			in.Identities = norm
			_, err := s.Update(ctx, c, in)
			return false, err
		}
	}
	in.Identities = norm
	_, err = s.Create(ctx, in)
	return true, err
}

func rowErrors(row int, err error) []RowError {
	var ve *apperr.ValidationError
	if errors.As(err, &ve) && len(ve.Fields) > 0 {
		out := make([]RowError, 0, len(ve.Fields))
		for _, f := range ve.Fields {
			out = append(out, RowError{Row: row, Field: f.Field, Message: f.Message})
		}
		return out
	}
	return []RowError{{Row: row, Message: err.Error()}}
}

// Export writes every live contact as CSV, in pages so memory stays flat.
func (s *Service) Export(ctx context.Context, w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvColumns); err != nil {
		return err
	}
	cursor := ""
	for {
		rows, err := s.List(ctx, Filter{Limit: 500, Cursor: cursor})
		if err != nil {
			return err
		}
		if len(rows) > 500 {
			rows = rows[:500]
		}
		for _, c := range rows {
			first := func(kind string) string {
				for _, i := range c.Identities {
					if i.Kind == kind {
						return i.Value
					}
				}
				return ""
			}
			if err := cw.Write([]string{c.ID.String(), csvSafe(c.Name), first(provider.IdentityEmail), first(provider.IdentityPhone),
				csvSafe(c.Company), c.Locale, strings.Join(c.Tags, ";"), csvSafe(first(provider.IdentityExternal))}); err != nil {
				return err
			}
		}
		if len(rows) < 500 {
			break
		}
		cursor = rows[len(rows)-1].ID.String()
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe defuses spreadsheet formulas in cells a customer could have written.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (m *Module[T]) importCSV(c *fiber.Ctx) error {
	var r io.Reader
	if fh, err := c.FormFile("file"); err == nil {
		f, err := fh.Open()
		if err != nil {
			return fmt.Errorf("contacts: open import: %w", err)
		}
		defer f.Close()
		r = f
	} else if strings.HasPrefix(c.Get(fiber.HeaderContentType), "text/csv") {
		r = bytes.NewReader(c.Body())
	} else {
		return apperr.Invalid("file", "send the CSV as multipart field \"file\" or as a text/csv body")
	}
	res, err := m.svc.Import(c.UserContext(), r)
	if err != nil {
		return err
	}
	return c.Status(http.StatusOK).JSON(res)
}

func (m *Module[T]) export(c *fiber.Ctx) error {
	var b bytes.Buffer
	if err := m.svc.Export(c.UserContext(), &b); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="contacts.csv"`)
	return c.Send(b.Bytes())
}
