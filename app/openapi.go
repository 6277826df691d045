package app

import (
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/switchboard-cloud/switchboard/modules/access"
)

var pathParam = regexp.MustCompile(`:([a-zA-Z_]+)`)

// OpenAPIPath turns a fiber path ("/members/:user_id") into OpenAPI form ("/members/{user_id}").
func OpenAPIPath(p string) string { return pathParam.ReplaceAllString(p, "{$1}") }

// OpenAPI builds the OpenAPI 3.1 document from the registered routes, so it lists exactly the
// routes the server has, each with the permission it needs.
func OpenAPI(routes []access.RouteInfo) map[string]any {
	paths := map[string]map[string]any{}
	for _, r := range routes {
		p := OpenAPIPath(r.Path)
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		op := map[string]any{
			"summary":     r.Summary,
			"operationId": operationID(r.Method, r.Path),
			"responses": map[string]any{
				"default": map[string]any{"description": "Error", "content": map[string]any{
					"application/problem+json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}}},
				"2XX": map[string]any{"description": "Success"},
			},
		}
		if r.Tag != "" {
			op["tags"] = []string{r.Tag}
		}
		switch r.Level {
		case access.LevelPublic:
			op["security"] = []any{}
			op["x-access"] = "public"
		case access.LevelSelf:
			op["security"] = []any{map[string]any{"session": []string{}}}
			op["x-access"] = "self"
		default:
			op["security"] = []any{map[string]any{"session": []string{}}, map[string]any{"apiKey": []string{}}}
			op["x-permission"] = r.Permission
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(r.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if r.Request != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": schemaOf(reflect.TypeOf(r.Request))}}}
		}
		paths[p][strings.ToLower(r.Method)] = op
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "Switchboard API", "version": "1",
			"description": "Multi-tenant omnichannel customer service. Errors are RFC 9457 problem documents; lists are {items, next_cursor} with ?limit=&cursor=."},
		"servers": []any{map[string]any{"url": APIPrefix}},
		"paths":   paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{
				"session": map[string]any{"type": "apiKey", "in": "cookie", "name": "sb_session", "description": "Console session; writes also send X-CSRF-Token."},
				"apiKey":  map[string]any{"type": "http", "scheme": "bearer", "description": "API key (sbk_…) scoped to one organisation and role."},
			},
			"schemas": map[string]any{"Problem": map[string]any{"type": "object", "properties": map[string]any{
				"type": map[string]any{"type": "string"}, "title": map[string]any{"type": "string"}, "status": map[string]any{"type": "integer"},
				"detail": map[string]any{"type": "string"}, "errors": map[string]any{"type": "array", "items": map[string]any{"type": "object",
					"properties": map[string]any{"field": map[string]any{"type": "string"}, "message": map[string]any{"type": "string"}}}},
			}}},
		},
	}
}

func operationID(method, path string) string {
	p := strings.NewReplacer("/api/v1/", "", "/", "_", ":", "", "-", "_").Replace(path)
	return strings.ToLower(method) + "_" + strings.Trim(p, "_")
}

// schemaOf describes a request type from its JSON and validate tags.
func schemaOf(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object"}
	case reflect.Struct:
		props := map[string]any{}
		var required []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			s := schemaOf(f.Type)
			v := f.Tag.Get("validate")
			for _, rule := range strings.Split(v, ",") {
				k, arg, _ := strings.Cut(rule, "=")
				switch k {
				case "required":
					required = append(required, name)
				case "email":
					s["format"] = "email"
				case "oneof":
					s["enum"] = strings.Fields(arg)
				case "min", "max":
					key := map[string]string{"min": "minLength", "max": "maxLength"}[k]
					if s["type"] == "array" {
						key = map[string]string{"min": "minItems", "max": "maxItems"}[k]
					}
					if n, err := strconv.Atoi(arg); err == nil {
						s[key] = n
					}
				}
			}
			props[name] = s
		}
		out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if required != nil {
			out["required"] = required
		}
		return out
	}
	return map[string]any{}
}
