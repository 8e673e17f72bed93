package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// A section is a top-level part of the configuration that one feature owns
// (e.g. "tsa:"), registered from that feature's own file so that config.go
// need not know every feature. Its scalar fields get FIRMA_<NAME>_<FIELD>
// environment overrides and -<name>-<field> flags like the built-in ones.
type section struct {
	name string
	def  func() any // a pointer to a struct holding the defaults
}

var sections []section

// RegisterSection adds the top-level section name, whose value is a pointer
// to a struct; def returns one holding the defaults. If the struct has a
// Validate() error method, Validate calls it and prefixes the field names
// of its *FieldErrors with "name.". Call it from an init function only.
func RegisterSection(name string, def func() any) {
	if v := reflect.ValueOf(def()); v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		panic("config: section " + name + " must be a pointer to a struct")
	}
	for _, f := range reflect.VisibleFields(reflect.TypeOf(Config{})) {
		if tag, _, _ := cutTag(f.Tag.Get("yaml")); tag == name {
			panic("config: section " + name + " is a built-in section")
		}
	}
	for _, s := range sections {
		if s.name == name {
			panic("config: section " + name + " registered twice")
		}
	}
	sections = append(sections, section{name, def})
	sort.Slice(sections, func(i, j int) bool { return sections[i].name < sections[j].name })
}

// SectionOf returns the value of a registered section, or nil if no
// section of that name and type is registered (or c is nil).
func SectionOf[T any](c *Config, name string) *T {
	if c == nil {
		return nil
	}
	v, _ := c.ext[name].(*T)
	return v
}

func cutTag(tag string) (string, string, bool) {
	for i := 0; i < len(tag); i++ {
		if tag[i] == ',' {
			return tag[:i], tag[i+1:], true
		}
	}
	return tag, "", false
}

// defaultSections makes every registered section with its defaults.
func defaultSections() map[string]any {
	m := make(map[string]any, len(sections))
	for _, s := range sections {
		m[s.name] = s.def()
	}
	return m
}

// decodeTarget returns a pointer to a struct made at run time with one
// field per top-level key, built-in and registered, each pointing into c.
// Decoding the whole file into it at once keeps the strict decoder's
// unknown-key check and its line numbers for every section.
func (c *Config) decodeTarget() any {
	cv := reflect.ValueOf(c).Elem()
	ct := cv.Type()
	var fields []reflect.StructField
	var targets []reflect.Value
	for i := 0; i < ct.NumField(); i++ {
		f := ct.Field(i)
		if !f.IsExported() {
			continue
		}
		fields = append(fields, reflect.StructField{Name: f.Name, Type: reflect.PointerTo(f.Type), Tag: f.Tag})
		targets = append(targets, cv.Field(i).Addr())
	}
	for i, s := range sections {
		v := reflect.ValueOf(c.ext[s.name])
		fields = append(fields, reflect.StructField{Name: fmt.Sprintf("Section%d", i), Type: v.Type(),
			Tag: reflect.StructTag(`yaml:"` + s.name + `"`)})
		targets = append(targets, v)
	}
	t := reflect.New(reflect.StructOf(fields))
	for i, v := range targets {
		t.Elem().Field(i).Set(v)
	}
	return t.Interface()
}

// validateSections runs each section's Validate, naming fields in full.
func (c *Config) validateSections() []error {
	var errs []error
	for _, s := range sections {
		v, ok := c.ext[s.name].(interface{ Validate() error })
		if !ok {
			continue
		}
		for _, err := range flatten(v.Validate()) {
			var fe *FieldError
			if errors.As(err, &fe) {
				field := fe.Field
				if !strings.HasPrefix(field, s.name+".") {
					// Named within the section ("origin"), not already
					// with it ("audit.origin").
					field = s.name + "." + field
				}
				errs = append(errs, &FieldError{Field: field, Msg: fe.Msg})
			} else {
				errs = append(errs, &FieldError{Field: s.name, Msg: err.Error()})
			}
		}
	}
	return errs
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// plainConfig has Config's fields without its MarshalYAML method.
type plainConfig Config

// MarshalYAML writes the built-in sections, then the registered ones.
func (c Config) MarshalYAML() (any, error) {
	var n yaml.Node
	if err := n.Encode((*plainConfig)(&c)); err != nil {
		return nil, err
	}
	for _, s := range sections {
		v, ok := c.ext[s.name]
		if !ok {
			continue
		}
		var sv yaml.Node
		if err := sv.Encode(v); err != nil {
			return nil, fmt.Errorf("section %s: %w", s.name, err)
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: s.name}, &sv)
	}
	return &n, nil
}
