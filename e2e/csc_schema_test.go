package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The CSC v2.2 response schemas written from the specification
// (csc/testdata/cscv2), for the outside-style client's answers.
var (
	cscSchemaOnce sync.Once
	cscSchemas    map[string]*jsonschema.Schema
	cscSchemaErr  error
)

func cscConforms(t *testing.T, schema, raw string) {
	t.Helper()
	cscSchemaOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		files, _ := filepath.Glob("../csc/testdata/cscv2/*.json")
		for _, p := range files {
			f, err := os.Open(p)
			if err != nil {
				cscSchemaErr = err
				return
			}
			doc, err := jsonschema.UnmarshalJSON(f)
			f.Close()
			if err == nil {
				err = c.AddResource("https://firma.test/cscv2/"+filepath.Base(p), doc)
			}
			if err != nil {
				cscSchemaErr = err
				return
			}
		}
		cscSchemas = map[string]*jsonschema.Schema{}
		for _, p := range files {
			name := strings.TrimSuffix(filepath.Base(p), ".json")
			if cscSchemas[name], cscSchemaErr = c.Compile("https://firma.test/cscv2/" + filepath.Base(p)); cscSchemaErr != nil {
				return
			}
		}
	})
	if cscSchemaErr != nil {
		t.Fatal(cscSchemaErr)
	}
	s := cscSchemas[schema]
	if s == nil {
		t.Fatalf("no schema %s", schema)
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", schema, err)
	}
	if err := s.Validate(doc); err != nil {
		t.Fatalf("%s: %v\n%s", schema, err, raw)
	}
}
