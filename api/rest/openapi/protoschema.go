package openapi

import (
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	// The /v1 surface's messages, registered with protoregistry.
	_ "github.com/firma-cloud/firma/api/firmav1"
)

// protoPackage is the package whose messages the /v1 surface sends and
// takes, each a component schema named by its full name.
const protoPackage = "firma.v1"

// protoSchemas returns a JSON Schema for every message of protoPackage,
// in the JSON the /v1 surface writes (protojson with the proto field
// names): 64-bit integers as strings, bytes as base64, enums by name,
// Timestamps as RFC 3339. Deriving them from the descriptors keeps the
// document from drifting from the messages.
func protoSchemas() map[string]any {
	out := map[string]any{}
	protoregistry.GlobalFiles.RangeFilesByPackage(protoPackage, func(fd protoreflect.FileDescriptor) bool {
		addMessages(out, fd.Messages())
		return true
	})
	return out
}

func addMessages(out map[string]any, ms protoreflect.MessageDescriptors) {
	for i := 0; i < ms.Len(); i++ {
		m := ms.Get(i)
		if m.IsMapEntry() {
			continue
		}
		out[string(m.FullName())] = messageSchema(m)
		addMessages(out, m.Messages())
	}
}

func messageSchema(m protoreflect.MessageDescriptor) map[string]any {
	props := map[string]any{}
	fs := m.Fields()
	for i := 0; i < fs.Len(); i++ {
		f := fs.Get(i)
		props[string(f.Name())] = fieldSchema(f)
	}
	// protojson writes only the message's own fields: anything else in an
	// answer is drift.
	return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
}

func fieldSchema(f protoreflect.FieldDescriptor) map[string]any {
	switch {
	case f.IsMap():
		return map[string]any{"type": "object", "additionalProperties": singularSchema(f.MapValue())}
	case f.IsList():
		return map[string]any{"type": "array", "items": singularSchema(f)}
	}
	return singularSchema(f)
}

func singularSchema(f protoreflect.FieldDescriptor) map[string]any {
	switch f.Kind() {
	case protoreflect.BoolKind:
		return map[string]any{"type": "boolean"}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return map[string]any{"type": "integer", "format": "int32"}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		// protojson writes 64-bit integers as strings, so that JavaScript
		// readers lose no digits.
		return map[string]any{"type": "string", "pattern": "^-?[0-9]+$", "format": "int64"}
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return map[string]any{"type": "number"}
	case protoreflect.StringKind:
		return map[string]any{"type": "string"}
	case protoreflect.BytesKind:
		return map[string]any{"type": "string", "contentEncoding": "base64"}
	case protoreflect.EnumKind:
		vs := f.Enum().Values()
		names := make([]any, 0, vs.Len())
		for i := 0; i < vs.Len(); i++ {
			names = append(names, string(vs.Get(i).Name()))
		}
		return map[string]any{"type": "string", "enum": names}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		switch f.Message().FullName() {
		case "google.protobuf.Timestamp":
			return map[string]any{"type": "string", "format": "date-time"}
		case "google.protobuf.Duration":
			return map[string]any{"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"}
		}
		return map[string]any{"$ref": "#/components/schemas/" + string(f.Message().FullName())}
	}
	return map[string]any{}
}

// grpcMethod finds a method by "package.Service/Method".
func grpcMethod(name string) (protoreflect.MethodDescriptor, bool) {
	svc, method, ok := strings.Cut(name, "/")
	if !ok {
		return nil, false
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return nil, false
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, false
	}
	md := sd.Methods().ByName(protoreflect.Name(method))
	return md, md != nil
}
