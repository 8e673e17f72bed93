package openapi

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/reflect/protoreflect"
	"gopkg.in/yaml.v3"
)

//go:embed spec.yaml
var specYAML []byte

// Document returns the OpenAPI document as indented JSON.
func Document() ([]byte, error) { return built() }

var built = sync.OnceValues(func() ([]byte, error) {
	doc, err := build()
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
})

// errorSchemas is the error answer of each surface, by path prefix: it
// becomes the "default" response of every operation under the prefix
// that does not give its own.
var errorSchemas = []struct{ prefix, mediaType, schema, description string }{
	{"/api/v1/", "application/problem+json", "PortalProblem", "An RFC 9457 problem; code is stable, detail is for people."},
	{"/v1/", "application/problem+json", "V1Problem", "An RFC 9457 problem; code is stable, detail is for people."},
	{"/csc/v2/", "application/json", "CSCError", "The CSC error form."},
}

func build() (map[string]any, error) {
	var doc map[string]any
	if err := yaml.Unmarshal(specYAML, &doc); err != nil {
		return nil, fmt.Errorf("openapi: spec.yaml: %w", err)
	}
	comps, _ := doc["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	if schemas == nil {
		return nil, fmt.Errorf("openapi: spec.yaml has no components.schemas")
	}
	for name, s := range protoSchemas() {
		if _, dup := schemas[name]; dup {
			return nil, fmt.Errorf("openapi: schema %s is both hand-written and a proto message", name)
		}
		schemas[name] = s
	}
	paths, _ := doc["paths"].(map[string]any)
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		for method, v := range ops {
			op, ok := v.(map[string]any)
			if !ok || !isMethod(method) {
				continue
			}
			if err := completeOperation(path, op); err != nil {
				return nil, fmt.Errorf("openapi: %s %s: %w", strings.ToUpper(method), path, err)
			}
		}
	}
	return doc, nil
}

func isMethod(s string) bool {
	return slices.Contains([]string{"get", "put", "post", "delete", "patch", "head", "options"}, s)
}

// completeOperation fills a /v1 operation in from its gRPC method and
// gives every operation its surface's error answer.
func completeOperation(path string, op map[string]any) error {
	responses, _ := op["responses"].(map[string]any)
	if responses == nil {
		responses = map[string]any{}
		op["responses"] = responses
	}
	if name, ok := op["x-grpc"].(string); ok {
		md, ok := grpcMethod(name)
		if !ok {
			return fmt.Errorf("x-grpc %s is no method", name)
		}
		if op["x-body"] == true && op["requestBody"] == nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": ref(md.Input())}}}
		}
		delete(op, "x-body")
		if _, ok := responses["200"]; !ok {
			content := map[string]any{"application/json": map[string]any{"schema": ref(md.Output())}}
			if op["x-pdf"] == true {
				// Asked with Accept: application/pdf, the registration's
				// confirmation comes as the PDF itself.
				content["application/pdf"] = map[string]any{}
			}
			responses["200"] = map[string]any{"description": "The " + string(md.Output().Name()) + " message.", "content": content}
		}
		delete(op, "x-pdf")
	}
	if _, ok := responses["default"]; ok {
		return nil
	}
	for _, e := range errorSchemas {
		if strings.HasPrefix(path, e.prefix) {
			responses["default"] = map[string]any{"description": e.description, "content": map[string]any{
				e.mediaType: map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/" + e.schema}}}}
			return nil
		}
	}
	if len(responses) == 0 {
		return fmt.Errorf("no responses")
	}
	return nil
}

func ref(m protoreflect.MessageDescriptor) map[string]any {
	return map[string]any{"$ref": "#/components/schemas/" + string(m.FullName())}
}

// sortedKeys is maps.Keys in order, for the page.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
