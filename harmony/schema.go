package harmony

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// maxSchemaDepth bounds JSON nesting of tool parameter schemas. Real schemas
// are a few levels deep; the bound keeps rendering (whose indentation grows
// with depth) linear-ish in the input for hostile requests.
const maxSchemaDepth = 128

// jsonKind is the type of a jsonValue.
type jsonKind uint8

const (
	jsonNull jsonKind = iota
	jsonBool
	jsonNumber
	jsonString
	jsonArray
	jsonObject
)

// jsonValue is a JSON value that keeps object key order. Harmony builds
// serde_json with preserve_order, so properties render in request order;
// Go maps would lose it.
type jsonValue struct {
	kind jsonKind
	b    bool
	s    string // string value, or the number's literal text
	arr  []*jsonValue
	keys []string
	vals []*jsonValue
}

// get returns the member key of an object, or nil if v is not an object or
// lacks it (serde's Value::get semantics).
func (v *jsonValue) get(key string) *jsonValue {
	if v == nil || v.kind != jsonObject {
		return nil
	}
	for i, k := range v.keys {
		if k == key {
			return v.vals[i]
		}
	}
	return nil
}

// str returns the string value and whether v is a string.
func (v *jsonValue) str() (string, bool) {
	if v == nil || v.kind != jsonString {
		return "", false
	}
	return v.s, true
}

// parseOrderedJSON parses one JSON document keeping key order.
func parseOrderedJSON(data []byte) (*jsonValue, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int) (*jsonValue, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	return decodeFrom(dec, tok, depth)
}

func decodeFrom(dec *json.Decoder, tok json.Token, depth int) (*jsonValue, error) {
	switch t := tok.(type) {
	case nil:
		return &jsonValue{kind: jsonNull}, nil
	case bool:
		return &jsonValue{kind: jsonBool, b: t}, nil
	case json.Number:
		return &jsonValue{kind: jsonNumber, s: string(t)}, nil
	case string:
		return &jsonValue{kind: jsonString, s: t}, nil
	case json.Delim:
		if depth >= maxSchemaDepth {
			return nil, fmt.Errorf("nested deeper than %d levels", maxSchemaDepth)
		}
		switch t {
		case '[':
			v := &jsonValue{kind: jsonArray}
			for dec.More() {
				e, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				v.arr = append(v.arr, e)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return v, nil
		case '{':
			v := &jsonValue{kind: jsonObject}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key is %T, not a string", kt)
				}
				e, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				// A repeated key replaces the value but keeps the first
				// position, as an insertion-ordered map does.
				replaced := false
				for i, old := range v.keys {
					if old == k {
						v.vals[i] = e
						replaced = true
						break
					}
				}
				if !replaced {
					v.keys = append(v.keys, k)
					v.vals = append(v.vals, e)
				}
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return v, nil
		}
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// compactJSON writes v the way serde_json's Display does (compact, no
// HTML escaping), which is what harmony prints for non-string defaults.
func compactJSON(sb *strings.Builder, v *jsonValue) {
	switch v.kind {
	case jsonNull:
		sb.WriteString("null")
	case jsonBool:
		sb.WriteString(strconv.FormatBool(v.b))
	case jsonNumber:
		sb.WriteString(formatNumber(v.s))
	case jsonString:
		quoteJSON(sb, v.s)
	case jsonArray:
		sb.WriteByte('[')
		for i, e := range v.arr {
			if i > 0 {
				sb.WriteByte(',')
			}
			compactJSON(sb, e)
		}
		sb.WriteByte(']')
	case jsonObject:
		sb.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				sb.WriteByte(',')
			}
			quoteJSON(sb, k)
			sb.WriteByte(':')
			compactJSON(sb, v.vals[i])
		}
		sb.WriteByte('}')
	}
}

func compactString(v *jsonValue) string {
	var sb strings.Builder
	compactJSON(&sb, v)
	return sb.String()
}

// quoteJSON escapes like serde_json: quote, backslash and control
// characters only; everything else, including non-ASCII, is kept raw.
func quoteJSON(sb *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	sb.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			sb.WriteString(`\"`)
		case c == '\\':
			sb.WriteString(`\\`)
		case c == '\n':
			sb.WriteString(`\n`)
		case c == '\r':
			sb.WriteString(`\r`)
		case c == '\t':
			sb.WriteString(`\t`)
		case c == '\b':
			sb.WriteString(`\b`)
		case c == '\f':
			sb.WriteString(`\f`)
		case c < 0x20:
			sb.WriteString(`\u00`)
			sb.WriteByte(hex[c>>4])
			sb.WriteByte(hex[c&15])
		default:
			sb.WriteByte(c)
		}
	}
	sb.WriteByte('"')
}

// formatNumber prints a JSON number literal the way serde_json would after
// parsing it: integers that fit 64 bits print as integers, everything else
// as an f64 in ryu's shortest form ("1.5", "100.0", "1e21", "1e-7").
func formatNumber(lit string) string {
	if !strings.ContainsAny(lit, ".eE") {
		if lit == "-0" {
			return "-0.0" // serde_json reads -0 as a float
		}
		if _, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return lit
		}
		if _, err := strconv.ParseUint(lit, 10, 64); err == nil {
			return lit
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return lit
	}
	return formatRyu(f)
}

// formatRyu reproduces the layout rules of the ryu crate's f64 formatter.
func formatRyu(f float64) string {
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	sign := ""
	if f < 0 {
		sign = "-"
		f = -f
	}
	// Shortest round-trip digits and decimal exponent: d.ddde±x.
	e := strconv.FormatFloat(f, 'e', -1, 64)
	mant, expStr, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	exp, _ := strconv.Atoi(expStr)
	n := len(digits)
	kk := exp + 1 // position of the decimal point relative to the digits
	var out string
	switch {
	case kk >= n && kk <= 16:
		out = digits + strings.Repeat("0", kk-n) + ".0"
	case kk > 0 && kk <= 16:
		out = digits[:kk] + "." + digits[kk:]
	case kk > -5 && kk <= 0:
		out = "0." + strings.Repeat("0", -kk) + digits
	case n == 1:
		out = digits + "e" + strconv.Itoa(kk-1)
	default:
		out = digits[:1] + "." + digits[1:] + "e" + strconv.Itoa(kk-1)
	}
	return sign + out
}

// isEnum reports whether schema has a non-empty "enum" array.
func isEnum(schema *jsonValue) bool {
	e := schema.get("enum")
	return e != nil && e.kind == jsonArray && len(e.arr) > 0
}

// isNullable reports "nullable": true.
func isNullable(schema *jsonValue) bool {
	n := schema.get("nullable")
	return n != nil && n.kind == jsonBool && n.b
}

// defaultComment renders a default value the way harmony does for property
// defaults: plain strings quoted, enum-member strings bare, others as JSON.
func defaultComment(schema, def *jsonValue) string {
	if s, ok := def.str(); ok {
		if !isEnum(schema) {
			return `default: "` + s + `"`
		}
		return "default: " + s
	}
	return "default: " + compactString(def)
}

// schemaToTypeScript converts a JSON Schema to the TypeScript-like type text
// the harmony renderer shows the model. It follows openai/harmony v0.0.8's
// json_schema_to_typescript rule for rule, including its quirks (property
// descriptions are not split into lines, oneOf layout), because the model
// was trained on that exact text.
func schemaToTypeScript(schema *jsonValue, indent string) string {
	// oneOf at this level: one "\n{indent} | T // comments" line per variant.
	if oneOf := schema.get("oneOf"); oneOf != nil && oneOf.kind == jsonArray {
		var sb strings.Builder
		for _, variant := range oneOf.arr {
			sb.WriteString("\n" + indent + " | ")
			t := schemaToTypeScript(variant, indent+"   ")
			if isNullable(variant) && !strings.Contains(t, "null") {
				t += " | null"
			}
			sb.WriteString(t)
			var comments []string
			if d, ok := variant.get("description").str(); ok {
				comments = append(comments, d)
			}
			if def := variant.get("default"); def != nil {
				if s, ok := def.str(); ok && !isEnum(variant) {
					comments = append(comments, `default: "`+s+`"`)
				} else {
					// Here harmony prints enum-string defaults as quoted JSON.
					comments = append(comments, "default: "+compactString(def))
				}
			}
			if len(comments) > 0 {
				sb.WriteString(" // " + strings.Join(comments, " "))
			}
		}
		return sb.String()
	}

	typ := schema.get("type")
	if typ != nil && typ.kind == jsonArray {
		var names []string
		for _, t := range typ.arr {
			if s, ok := t.str(); ok {
				if s == "integer" {
					s = "number"
				}
				names = append(names, s)
			}
		}
		if len(names) > 0 {
			return strings.Join(names, " | ")
		}
	}
	name, ok := typ.str()
	if !ok {
		return "any"
	}
	switch name {
	case "object":
		return objectToTypeScript(schema, indent)
	case "string":
		if e := schema.get("enum"); e != nil && e.kind == jsonArray {
			var vals []string
			for _, v := range e.arr {
				if s, ok := v.str(); ok {
					vals = append(vals, `"`+s+`"`)
				}
			}
			if len(vals) > 0 {
				return strings.Join(vals, " | ")
			}
		}
		return "string"
	case "number", "integer":
		return "number"
	case "boolean":
		return "boolean"
	case "array":
		if items := schema.get("items"); items != nil {
			return schemaToTypeScript(items, indent) + "[]"
		}
		return "Array<any>"
	}
	return "any"
}

func objectToTypeScript(schema *jsonValue, indent string) string {
	var sb strings.Builder
	if d, ok := schema.get("description").str(); ok {
		sb.WriteString(indent + "// " + d + "\n")
	}
	sb.WriteString("{\n")
	props := schema.get("properties")
	if props != nil && props.kind == jsonObject {
		required := map[string]bool{}
		if req := schema.get("required"); req != nil && req.kind == jsonArray {
			for _, r := range req.arr {
				if s, ok := r.str(); ok {
					required[s] = true
				}
			}
		}
		for i, key := range props.keys {
			val := props.vals[i]
			opt := "?"
			if required[key] {
				opt = ""
			}
			if t, ok := val.get("title").str(); ok {
				sb.WriteString(indent + "// " + t + "\n" + indent + "//\n")
			}
			oneOf := val.get("oneOf")
			if oneOf == nil {
				if d, ok := val.get("description").str(); ok {
					sb.WriteString(indent + "// " + d + "\n")
				}
			}
			if ex := val.get("examples"); ex != nil && ex.kind == jsonArray && len(ex.arr) > 0 {
				sb.WriteString(indent + "// Examples:\n")
				for _, e := range ex.arr {
					if s, ok := e.str(); ok {
						sb.WriteString(indent + `// - "` + s + `"` + "\n")
					}
				}
			}
			if oneOf != nil && oneOf.kind == jsonArray {
				writeOneOfProperty(&sb, key, opt, val, oneOf, indent)
				continue
			}
			sb.WriteString(indent + key + opt + ": ")
			t := schemaToTypeScript(val, indent+"    ")
			if isNullable(val) && !strings.Contains(t, "null") {
				t += " | null"
			}
			sb.WriteString(t + ",")
			if oneOf == nil {
				if def := val.get("default"); def != nil {
					sb.WriteString(" // " + defaultComment(val, def))
				}
			}
			sb.WriteString("\n")
		}
	}
	sb.WriteString(indent + "}")
	return sb.String()
}

// writeOneOfProperty renders a property whose schema is a oneOf: comments
// above, then "key?:" and one " | T" line per variant, then ",".
func writeOneOfProperty(sb *strings.Builder, key, opt string, val, oneOf *jsonValue, indent string) {
	propDesc, hasPropDesc := val.get("description").str()
	// The property description is not repeated when the first variant says
	// the same thing.
	skipPropDesc := false
	if hasPropDesc && len(oneOf.arr) > 0 {
		if d, ok := oneOf.arr[0].get("description").str(); ok && d == propDesc {
			skipPropDesc = true
		}
	}
	descAbove := false
	if hasPropDesc && !skipPropDesc {
		sb.WriteString(indent + "// " + propDesc + "\n")
		descAbove = true
	}
	if def := val.get("default"); def != nil {
		sb.WriteString(indent + "// " + defaultComment(val, def) + "\n")
	}
	sb.WriteString(indent + key + opt + ":\n")
	for i, variant := range oneOf.arr {
		sb.WriteString(indent + " | ")
		t := schemaToTypeScript(variant, indent+"   ")
		if isNullable(variant) && !strings.Contains(t, "null") {
			t += " | null"
		}
		sb.WriteString(t)
		var comments []string
		if !(i == 0 && descAbove) {
			if d, ok := variant.get("description").str(); ok && (!hasPropDesc || d != propDesc) {
				comments = append(comments, d)
			}
		}
		if def := variant.get("default"); def != nil {
			comments = append(comments, defaultComment(variant, def))
		}
		if len(comments) > 0 {
			sb.WriteString(" // " + strings.Join(comments, " "))
		}
		sb.WriteString("\n")
	}
	sb.WriteString(indent + ",\n")
}

// rustLines splits s like Rust's str::lines: at "\n" or "\r\n", without an
// empty last line after a final line ending. A lone "\r" is kept.
func rustLines(s string) []string {
	if s == "" {
		return nil
	}
	finalNL := strings.HasSuffix(s, "\n")
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i, l := range lines {
		if i < len(lines)-1 || finalNL {
			lines[i] = strings.TrimSuffix(l, "\r")
		}
	}
	return lines
}

// hasParameters reports whether raw holds a parameter schema; an empty
// value or JSON null means none (serde reads null into Option::None).
func hasParameters(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && !bytes.Equal(t, []byte("null"))
}

// toolsSection renders "# Tools" followed by one "## name" section per
// namespace, in the order given.
func toolsSection(namespaces []ToolNamespace) (string, error) {
	sections := []string{"# Tools"}
	for _, ns := range namespaces {
		parts := []string{"## " + ns.Name + "\n"}
		for _, line := range rustLines(ns.Description) {
			if len(ns.Tools) > 0 {
				parts = append(parts, "// "+line)
			} else {
				parts = append(parts, line)
			}
		}
		if len(ns.Tools) > 0 {
			parts = append(parts, "namespace "+ns.Name+" {\n")
			for _, tool := range ns.Tools {
				for _, line := range rustLines(tool.Description) {
					parts = append(parts, "// "+line)
				}
				if hasParameters(tool.Parameters) {
					schema, err := parseOrderedJSON(tool.Parameters)
					if err != nil {
						return "", fmt.Errorf("tool %s.%s: parameters: %w", ns.Name, tool.Name, err)
					}
					parts = append(parts, "type "+tool.Name+" = (_: "+schemaToTypeScript(schema, "")+") => any;\n")
				} else {
					parts = append(parts, "type "+tool.Name+" = () => any;\n")
				}
			}
			parts = append(parts, "} // namespace "+ns.Name)
		}
		sections = append(sections, strings.Join(parts, "\n"))
	}
	return strings.Join(sections, "\n\n"), nil
}
