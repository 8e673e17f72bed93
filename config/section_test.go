package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// demoSection stands for a feature's own section, such as a TSA's.
type demoSection struct {
	Policy      string        `yaml:"policy"`
	Accuracy    time.Duration `yaml:"accuracy"`
	SerialBlock int           `yaml:"serial_block"`
	Synced      bool          `yaml:"require_synced_clock"`
}

func (d *demoSection) Validate() error {
	if d.SerialBlock <= 0 {
		return &FieldError{Field: "serial_block", Msg: "must be > 0"}
	}
	return nil
}

func init() {
	RegisterSection("demo", func() any { return &demoSection{Policy: "0.4.0.2023.1.1", Accuracy: time.Second, SerialBlock: 100} })
}

func TestSectionDefaultsAndFile(t *testing.T) {
	c := valid()
	if d := SectionOf[demoSection](c, "demo"); d == nil || d.SerialBlock != 100 || d.Accuracy != time.Second {
		t.Fatalf("defaults: %+v", d)
	}
	doc := "listen:\n  grpc: 127.0.0.1:1\ndemo:\n  policy: 1.2.3\n  serial_block: 7\n"
	if err := c.Decode(strings.NewReader(doc)); err != nil {
		t.Fatal(err)
	}
	d := SectionOf[demoSection](c, "demo")
	if d.Policy != "1.2.3" || d.SerialBlock != 7 || d.Accuracy != time.Second || c.Listen.GRPC != "127.0.0.1:1" {
		t.Fatalf("after decode: %+v, grpc %s", d, c.Listen.GRPC)
	}
	if SectionOf[Listen](c, "demo") != nil || SectionOf[demoSection](c, "nope") != nil {
		t.Error("SectionOf with a wrong type or name returned a value")
	}
}

func TestSectionStrict(t *testing.T) {
	for doc, want := range map[string]string{
		"demo:\n  polcy: x\n":        "polcy",
		"demo:\n  serial_block: x\n": "line 2",
		"demoo:\n  policy: x\n":      "demoo",
	} {
		err := valid().Decode(strings.NewReader(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one naming %s", doc, err, want)
		}
	}
}

func TestSectionOverridesAndValidation(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse([]string{"-demo-policy", "9.9"}); err != nil {
		t.Fatal(err)
	}
	env := envMap(map[string]string{"FIRMA_DEMO_SERIAL_BLOCK": "0", "FIRMA_DEMO_REQUIRE_SYNCED_CLOCK": "true", EnvPIN: "1"})
	_, err := Load("testdata/good.yaml", env, fs)
	if err == nil || !strings.Contains(err.Error(), "demo.serial_block: must be > 0") {
		t.Fatalf("error %v should name demo.serial_block", err)
	}
	env = envMap(map[string]string{"FIRMA_DEMO_SERIAL_BLOCK": "12", "FIRMA_DEMO_REQUIRE_SYNCED_CLOCK": "true", EnvPIN: "1"})
	c, err := Load("testdata/good.yaml", env, fs)
	if err != nil {
		t.Fatal(err)
	}
	if d := SectionOf[demoSection](c, "demo"); d.SerialBlock != 12 || !d.Synced || d.Policy != "9.9" {
		t.Fatalf("overrides: %+v", d)
	}
}

func TestSectionMarshalRoundTrip(t *testing.T) {
	c := valid()
	SectionOf[demoSection](c, "demo").Policy = "7.7.7"
	b, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	c2 := Default()
	if err := c2.Decode(strings.NewReader(string(b))); err != nil {
		t.Fatalf("decode own output: %v\n%s", err, b)
	}
	if SectionOf[demoSection](c2, "demo").Policy != "7.7.7" || c2.Auth.Operators[0].TokenSHA256 != helloSHA {
		t.Fatalf("round trip lost data:\n%s", b)
	}
}

// fullNameSection validates with a FieldError that already names the
// field in full ("full.level"), as audit.Config does, and with a plain
// error, which is about the whole section.
type fullNameSection struct {
	Level int `yaml:"level"`
}

func (f *fullNameSection) Validate() error {
	if f.Level < 0 {
		return &FieldError{Field: "full.level", Msg: "-1: negative"}
	}
	if f.Level > 9 {
		return errors.New("too high")
	}
	return nil
}

func init() {
	RegisterSection("full", func() any { return &fullNameSection{} })
}

func TestSectionPlainErrors(t *testing.T) {
	tests := []struct{ level, want string }{
		{"-1", "full.level: -1: negative"},
		{"10", "full: too high"},
	}
	for _, tt := range tests {
		env := envMap(map[string]string{"FIRMA_FULL_LEVEL": tt.level, EnvPIN: "1"})
		_, err := Load("testdata/good.yaml", env, nil)
		var fe *FieldError
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
			t.Errorf("level %s: error %v, want a FieldError %q", tt.level, err, tt.want)
		}
	}
}

// LoadPartial skips sections no linked feature registered; Load refuses
// them.
func TestLoadPartial(t *testing.T) {
	b, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "firmad.yaml")
	if err := os.WriteFile(path, append(b, "elsewhere:\n  setting: 1\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	env := envMap(map[string]string{EnvPIN: "1", "FIRMA_FULL_LEVEL": "3"})
	if _, err := Load(path, env, nil); err == nil || !strings.Contains(err.Error(), "elsewhere") {
		t.Fatalf("Load: %v, want an error naming the unknown section", err)
	}
	c, err := LoadPartial(path, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if SectionOf[fullNameSection](c, "full").Level != 3 || c.HSM.PIN.Reveal() != "1" {
		t.Fatalf("LoadPartial did not apply the environment: %+v", SectionOf[fullNameSection](c, "full"))
	}
}
