package harmony

import (
	"encoding/json"
	"strings"
	"testing"
)

func tsOf(t *testing.T, schema string) string {
	t.Helper()
	v, err := parseOrderedJSON([]byte(schema))
	if err != nil {
		t.Fatal(err)
	}
	return schemaToTypeScript(v, "")
}

// TestSchemaToTypeScript pins the JSON Schema → TypeScript rules, quirks
// included (they are harmony's, and the model saw them in training).
func TestSchemaToTypeScript(t *testing.T) {
	cases := []struct {
		name, schema, want string
	}{
		{"integer is number", `{"type":"integer"}`, "number"},
		{"boolean", `{"type":"boolean"}`, "boolean"},
		{"enum", `{"type":"string","enum":["a","b"]}`, `"a" | "b"`},
		{"enum with non-strings keeps the strings", `{"type":"string","enum":[1,"x"]}`, `"x"`},
		{"array", `{"type":"array","items":{"type":"integer"}}`, "number[]"},
		{"array without items", `{"type":"array"}`, "Array<any>"},
		{"type list", `{"type":["integer","string","null"]}`, "number | string | null"},
		{"unknown type", `{"type":"date"}`, "any"},
		{"no type", `{"description":"x"}`, "any"},
		{"not an object", `true`, "any"},
		{"empty object", `{"type":"object"}`, "{\n}"},
		{"top-level oneOf", `{"oneOf":[{"type":"string","description":"s"},{"type":"integer","nullable":true,"default":3}]}`,
			"\n | string // s\n | number | null // default: 3"},
		{"top-level oneOf enum default is JSON", `{"oneOf":[{"type":"string","enum":["a"],"default":"a"}]}`,
			"\n | \"a\" // default: \"a\""},
		{"properties in given order, optional marks, defaults",
			`{"type":"object","properties":{
				"z":{"type":"integer","default":3},
				"a":{"type":"number","default":1.5},
				"f":{"type":"number","default":100.0},
				"big":{"type":"number","default":1e21},
				"tiny":{"type":"number","default":0.0000001},
				"list":{"type":"array","items":{"type":"string"},"default":["x","y\"z"]},
				"flag":{"type":"boolean","default":false},
				"obj":{"type":"object","default":{"k":null}},
				"s":{"type":"string","default":"q\"uote"},
				"e":{"type":"string","enum":["u","v"],"default":"v"},
				"n":{"type":"string","nullable":true}
			},"required":["a","s"]}`,
			"{\n" +
				"z?: number, // default: 3\n" +
				"a: number, // default: 1.5\n" +
				"f?: number, // default: 100.0\n" +
				"big?: number, // default: 1e21\n" +
				"tiny?: number, // default: 1e-7\n" +
				"list?: string[], // default: [\"x\",\"y\\\"z\"]\n" +
				"flag?: boolean, // default: false\n" +
				"obj?: {\n    }, // default: {\"k\":null}\n" +
				"s: string, // default: \"q\"uote\"\n" +
				"e?: \"u\" | \"v\", // default: v\n" +
				"n?: string | null,\n" +
				"}"},
		{"nested object (description repeated, closing brace indented)",
			`{"type":"object","properties":{
				"loc":{"type":"object","description":"Where","properties":{
					"lat":{"type":"number"},
					"tags":{"type":"array","items":{"type":"integer"}}},"required":["lat"]},
				"mode":{"type":["string","null"]}},"required":["loc"]}`,
			"{\n// Where\nloc:     // Where\n{\n    lat: number,\n    tags?: number[],\n    },\nmode?: string | null,\n}"},
		{"array of objects",
			`{"type":"object","properties":{"items":{"type":"array","items":{"type":"object","properties":{"id":{"type":"string"}}}}}}`,
			"{\nitems?: {\n    id?: string,\n    }[],\n}"},
		{"oneOf property: same description as first variant is not repeated",
			`{"type":"object","properties":{"v":{"description":"d","oneOf":[{"type":"string","description":"d"},{"type":"number","description":"n"}]}},"required":["v"]}`,
			"{\nv:\n | string\n | number // n\n,\n}"},
		{"oneOf property with enum default",
			`{"type":"object","properties":{"v":{"enum":["a"],"default":"a","oneOf":[{"type":"string","enum":["a"],"default":"a"}]}}}`,
			"{\n// default: a\nv?:\n | \"a\" // default: a\n,\n}"},
		{"title and examples",
			`{"type":"object","properties":{"q":{"type":"string","title":"Query","examples":["x",1]}}}`,
			"{\n// Query\n//\n// Examples:\n// - \"x\"\nq?: string,\n}"},
		{"duplicate key keeps first position, last value",
			`{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"number"},"a":{"type":"boolean"}}}`,
			"{\na?: boolean,\nb?: number,\n}"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tsOf(t, tc.schema); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s\n(%q)", got, tc.want, got)
			}
		})
	}
}

func TestToolsSectionForms(t *testing.T) {
	s, err := toolsSection([]ToolNamespace{{Name: "functions", Tools: []ToolDescription{
		{Name: "none", Description: "No parameters."},
		{Name: "null", Description: "Null parameters.\nSecond line.", Parameters: json.RawMessage(" null ")},
		{Name: "one", Description: "", Parameters: json.RawMessage(`{"type":"object","properties":{"x":{"type":"integer","description":"An x"}},"required":["x"]}`)},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	want := "# Tools\n\n## functions\n\nnamespace functions {\n\n" +
		"// No parameters.\ntype none = () => any;\n\n" +
		"// Null parameters.\n// Second line.\ntype null = () => any;\n\n" +
		"type one = (_: {\n// An x\nx: number,\n}) => any;\n\n" +
		"} // namespace functions"
	if s != want {
		t.Errorf("got\n%s\nwant\n%s", s, want)
	}
}

func TestQuoteJSON(t *testing.T) {
	var sb strings.Builder
	quoteJSON(&sb, "a\"\\\n\r\t\b\f\x01<>&é\u2028")
	if got, want := sb.String(), `"a\"\\\n\r\t\b\f\u0001<>&é`+"\u2028"+`"`; got != want {
		t.Errorf("got %s want %s", got, want)
	}
}

func TestRustLines(t *testing.T) {
	cases := map[string][]string{
		"":         nil,
		"a":        {"a"},
		"a\n":      {"a"},
		"a\n\nb":   {"a", "", "b"},
		"a\r\nb\r": {"a", "b\r"},
		"\n":       {""},
		"a\n\n":    {"a", ""},
		"x\r\n":    {"x"},
	}
	for in, want := range cases {
		got := rustLines(in)
		if strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Errorf("rustLines(%q) = %q, want %q", in, got, want)
		}
	}
}
