package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// apiError is an error in OpenAI's shape:
// {"error": {"message", "type", "param", "code"}}.
type apiError struct {
	Status  int     `json:"-"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) Error() string { return e.Message }

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func invalidRequest(param, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: strp(param), Message: fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(struct {
		Error *apiError `json:"error"`
	}{e})
}

// decodeJSON reads a request body into v, turning decoding failures into
// OpenAI-style 400s that name the offending field.
func decodeJSON(r *http.Request, v any) *apiError {
	const maxBody = 32 << 20
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		var big *http.MaxBytesError
		switch {
		case errors.As(err, &typ):
			// Embedded structs show in the path; clients know only the
			// JSON field names.
			field := strings.NewReplacer("samplingParams.", "", "functionTool.", "").Replace(typ.Field)
			return invalidRequest(field, "invalid type for '%s': expected %s, got a JSON %s", field, jsonKind(typ.Type.Kind().String()), typ.Value)
		case errors.As(err, &syn):
			return invalidRequest("", "the request body is not valid JSON: %v (at byte %d)", syn, syn.Offset)
		case errors.As(err, &big):
			return &apiError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Message: "the request body exceeds 32 MiB"}
		case err.Error() == "EOF":
			return invalidRequest("", "the request body is empty; expected a JSON object")
		default:
			var fe *fieldError
			if errors.As(err, &fe) {
				return invalidRequest(fe.field, "%s", fe.msg)
			}
			return invalidRequest("", "the request body is not valid JSON: %v", strings.TrimPrefix(err.Error(), "json: "))
		}
	}
	return nil
}

// fieldError is returned by custom UnmarshalJSON methods to name the field.
type fieldError struct{ field, msg string }

func (e *fieldError) Error() string { return e.msg }

// jsonKind names a Go kind the way a JSON user would.
func jsonKind(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"), strings.HasPrefix(k, "float"):
		return "a number"
	case k == "string":
		return "a string"
	case k == "bool":
		return "a boolean"
	case k == "slice", k == "array":
		return "an array"
	case k == "struct", k == "map":
		return "an object"
	}
	return k
}
