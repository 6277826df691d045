package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"reflect"
	"strings"

	"github.com/go-playground/validator/v10"
	"github.com/gofiber/fiber/v2"

	"github.com/switchboard-cloud/switchboard/internal/apperr"
)

// Validator checks decoded bodies with `validate` struct tags and reports fields by JSON name.
type Validator struct{ v *validator.Validate }

// NewValidator returns a validator whose field names are the JSON names.
func NewValidator() *Validator {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		if name == "" {
			return f.Name
		}
		return name
	})
	return &Validator{v: v}
}

// Struct validates s and turns failures into a 422 apperr.ValidationError.
func (v *Validator) Struct(s any) error {
	err := v.v.Struct(s)
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return fmt.Errorf("validate: %w", err)
	}
	var fields apperr.Fields
	for _, fe := range verrs {
		// Namespace is "Struct.field.sub"; drop the struct name to get the JSON path.
		path := fe.Namespace()
		if i := strings.IndexByte(path, '.'); i >= 0 {
			path = path[i+1:]
		}
		fields.Add(path, message(fe))
	}
	return fields.Err()
}

func message(fe validator.FieldError) string {
	switch fe.Tag() {
	case "required":
		return "is required"
	case "email":
		return "must be a valid email address"
	case "min":
		if fe.Kind() == reflect.String {
			return "must be at least " + fe.Param() + " characters"
		}
		return "must be at least " + fe.Param()
	case "max":
		if fe.Kind() == reflect.String {
			return "must be at most " + fe.Param() + " characters"
		}
		return "must be at most " + fe.Param()
	case "oneof":
		return "must be one of: " + strings.ReplaceAll(fe.Param(), " ", ", ")
	case "uuid":
		return "must be a UUID"
	default:
		return "is invalid (" + fe.Tag() + ")"
	}
}

// Decode reads a JSON body strictly into dst and validates it: the content type must be JSON,
// unknown fields and trailing data are refused (400), and validation failures are 422.
func Decode(c *fiber.Ctx, v *Validator, dst any) error {
	body := c.Body()
	if len(bytes.TrimSpace(body)) == 0 {
		return apperr.Malformed("", "request body is required")
	}
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || (mt != fiber.MIMEApplicationJSON && !strings.HasSuffix(mt, "+json")) {
		return &fiber.Error{Code: fiber.StatusUnsupportedMediaType, Message: "Content-Type must be application/json"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apperr.Malformed("", "request body must hold a single JSON value")
	}
	return v.Struct(dst)
}

func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return apperr.Malformed("", fmt.Sprintf("malformed JSON at byte %d", syn.Offset))
	case errors.As(err, &typ):
		return apperr.Malformed(typ.Field, "must be a JSON "+typ.Type.String())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return apperr.Malformed(field, "unknown field")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.Malformed("", "malformed JSON: unexpected end of body")
	default:
		return apperr.Malformed("", "malformed JSON")
	}
}

// DecodeStrict decodes one JSON value from raw as Decode does (unknown fields refused), for a
// part of a body read on its own, such as one event of a batch. Its problems are validation
// errors (422): the body as a whole was well-formed.
func DecodeStrict(raw []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		ve, ok := decodeError(err).(*apperr.ValidationError)
		if !ok {
			return err
		}
		ve.Malformed = false
		if len(ve.Fields) == 0 {
			ve.Detail = err.Error()
		}
		return ve
	}
	return nil
}
