package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"paygate"
)

// MaxBody is the largest request body the API reads; larger bodies get 413
// TOO_LARGE before any work is done.
const MaxBody = 64 << 10

// bodyLimitKey carries a route's own body limit (Route.MaxBody) in the
// request context.
type bodyLimitKey struct{}

// withBodyLimit lets the requests of h carry bodies of up to n bytes.
func withBodyLimit(n int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyLimitKey{}, n)))
	})
}

// readBody reads a request body of at most MaxBody bytes (or the route's
// Route.MaxBody). Errors: CodeTooLarge.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := int64(MaxBody)
	if n, ok := r.Context().Value(bodyLimitKey{}).(int64); ok {
		limit = n
	}
	if r.ContentLength > limit {
		return nil, paygate.E(paygate.CodeTooLarge, "request body exceeds %d bytes", limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, paygate.E(paygate.CodeTooLarge, "request body exceeds %d bytes", limit)
		}
		return nil, paygate.E(paygate.CodeInvalidArgument, "could not read the request body")
	}
	return b, nil
}

// DecodeJSON decodes one JSON object into v strictly: unknown fields, wrong
// types, trailing data and an empty body are errors with CodeInvalidArgument
// naming the field (dotted path) where one is at fault. Numbers that do not
// fit the field (1.5 or 1e30 for an integer amount) are type errors, so an
// amount can never be rounded or overflow silently.
func DecodeJSON(b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return paygate.E(paygate.CodeInvalidArgument, "request body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return paygate.E(paygate.CodeInvalidArgument, "request body must hold exactly one JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return paygate.E(paygate.CodeInvalidArgument, "request body must hold exactly one JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return paygate.E(paygate.CodeInvalidArgument, "malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return paygate.E(paygate.CodeInvalidArgument, "request body must be a JSON object")
		}
		return paygate.EField(paygate.CodeInvalidArgument, field, "%s must be %s, not a JSON %s", field, typeName(te.Type.Kind().String()), te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return paygate.E(paygate.CodeInvalidArgument, "malformed JSON: unexpected end")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if len(f) > 64 {
			f = f[:64]
		}
		return paygate.EField(paygate.CodeInvalidArgument, f, "unknown field %q", f)
	}
	return paygate.E(paygate.CodeInvalidArgument, "malformed JSON")
}

func typeName(kind string) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer in range"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	}
	return fmt.Sprintf("a %s", kind)
}
