package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"gopkg.in/yaml.v3"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
)

// Auditors (audit.auditors), registry staff (registry.staff) and
// operators (auth.operators) are kept in firmad's config file, as before
// these commands: they are few, change rarely, and the file is what an
// operator already backs up and reviews. The commands edit the file so
// nobody edits YAML by hand; firmad applies auditors and staff on SIGHUP
// (systemctl reload firmad) without a restart, operators at its next
// start, and records each change on the audit log before it takes effect
// (see cmd/firmad/access.go), also when the change was made while it was
// down.

// accessList is one list of people in the config file.
type accessList struct {
	cmd          string // the command's first word
	section, key string // e.g. "audit", "auditors"
	what, a      string // "auditor", "an"
	apply        string // how the change takes effect
}

const (
	reloadHint  = "apply it with 'systemctl reload firmad' (or kill -HUP <firmad pid>); firmad records the change on the audit log"
	restartHint = "apply it with 'systemctl restart firmad' (operators are read at start); firmad records the change on the audit log then"
)

var (
	auditorsList  = accessList{"auditors", "audit", "auditors", "auditor", "an", reloadHint}
	staffList     = accessList{"staff", "registry", "staff", "staff member", "a", reloadHint}
	operatorsList = accessList{"operators", "auth", "operators", "operator", "an", restartHint}
)

type accessFlags struct {
	config, state, out, cert, role string
}

func (f *accessFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.state, "state", "var", "state folder made by 'firmactl init'")
	fs.StringVar(&f.config, "config", "", "firmad config file to edit (default STATE/firmad.yaml)")
}

func (f *accessFlags) path() string {
	if f.config != "" {
		return f.config
	}
	return filepath.Join(f.state, "firmad.yaml")
}

func init() {
	for _, l := range []accessList{auditorsList, staffList, operatorsList} {
		var f accessFlags
		cmd := l.cmd
		register(&command{
			name: cmd + " add", args: "NAME",
			summary: fmt.Sprintf("add %s %s with a new bearer token written to --out (0600)%s", l.a, l.what,
				map[bool]string{true: " and a --role", false: " or a client certificate (--cert-sha256)"}[l == staffList]),
			flags: func(fs *flag.FlagSet) {
				f.register(fs)
				fs.StringVar(&f.out, "out", "", "write the new bearer token to this file (mode 0600; never overwritten)")
				if l == staffList {
					fs.StringVar(&f.role, "role", "", "registrar or video_agent (required)")
				} else {
					fs.StringVar(&f.cert, "cert-sha256", "", "hex SHA-256 of the "+l.what+"'s client certificate (DER), instead of or beside a token")
				}
			},
			run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
				if len(args) != 1 {
					return usageErr("give the %s's name", l.what)
				}
				return accessAdd(e, l, f, args[0])
			},
		})
		register(&command{
			name: cmd + " list", summary: "list the " + l.key + " in firmad's config file",
			flags: func(fs *flag.FlagSet) { f.register(fs) },
			run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
				if len(args) > 0 {
					return usageErr("unexpected argument %q", args[0])
				}
				return accessListCmd(e, l, f.path())
			},
		})
		register(&command{
			name: cmd + " remove", args: "NAME", summary: "remove " + l.a + " " + l.what + " from firmad's config file",
			flags: func(fs *flag.FlagSet) { f.register(fs) },
			run: func(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
				if len(args) != 1 {
					return usageErr("give the %s's name", l.what)
				}
				path := f.path()
				err := editConfig(path, func(root *yaml.Node) error {
					seq := listNode(root, l, false)
					i := findEntry(seq, args[0])
					if i < 0 {
						return fmt.Errorf("no %s named %q in %s", l.what, args[0], path)
					}
					seq.Content = append(seq.Content[:i], seq.Content[i+1:]...)
					return nil
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "removed %s %q from %s; %s\n", l.what, args[0], path, l.apply)
				return nil
			},
		})
	}
}

func accessAdd(e *env, l accessList, f accessFlags, name string) error {
	if l == staffList {
		if f.role == "" {
			return usageErr("--role is required (registrar or video_agent)")
		}
		if r, err := policy.ParseRole(f.role); err != nil || r == policy.Administrator {
			return usageErr("--role %q: want registrar or video_agent (operators act as administrators)", f.role)
		}
		if f.out == "" {
			return usageErr("--out is required: the file the new token is written to")
		}
	} else if f.out == "" && f.cert == "" {
		return usageErr("give --out (a new bearer token), --cert-sha256, or both")
	}
	path := f.path()
	entry := map[string]string{"name": name}
	if l == staffList {
		entry["role"] = f.role
	}
	if f.cert != "" {
		entry["cert_sha256"] = f.cert
	}
	var token string
	if f.out != "" {
		var err error
		if token, err = randomToken(); err != nil {
			return err
		}
		entry["token_sha256"] = api.TokenSHA256(token)
	}
	wrote := false
	err := editConfig(path, func(root *yaml.Node) error {
		seq := listNode(root, l, true)
		if findEntry(seq, name) >= 0 {
			return fmt.Errorf("%s %q exists already in %s", l.what, name, path)
		}
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, k := range []string{"name", "role", "token_sha256", "cert_sha256"} {
			if v, ok := entry[k]; ok {
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, &yaml.Node{Kind: yaml.ScalarNode, Value: v})
			}
		}
		seq.Content = append(seq.Content, n)
		// The token file is made (refused if it exists) before the config
		// names its digest, and removed again if the config is not changed.
		if token != "" {
			if err := writeNewSecret(f.out, token); err != nil {
				return err
			}
			wrote = true
		}
		return nil
	})
	if err != nil {
		if wrote {
			os.Remove(f.out)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "added %s %q to %s", l.what, name, path)
	if token != "" {
		fmt.Fprintf(e.stdout, "; bearer token written to %s", f.out)
	}
	fmt.Fprintf(e.stdout, "\n%s\n", l.apply)
	return nil
}

func accessListCmd(e *env, l accessList, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if l == staffList {
		fmt.Fprintln(tw, "NAME\tROLE\tCREDENTIAL")
	} else {
		fmt.Fprintln(tw, "NAME\tCREDENTIAL")
	}
	if seq := listNode(rootOf(&doc), l, false); seq != nil {
		for _, n := range seq.Content {
			var creds []string
			if mapValue(n, "token_sha256") != "" {
				creds = append(creds, "token")
			}
			if mapValue(n, "cert_sha256") != "" {
				creds = append(creds, "client certificate")
			}
			if l == staffList {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", mapValue(n, "name"), mapValue(n, "role"), strings.Join(creds, ", "))
			} else {
				fmt.Fprintf(tw, "%s\t%s\n", mapValue(n, "name"), strings.Join(creds, ", "))
			}
		}
	}
	return tw.Flush()
}

// writeNewSecret writes s to a new file of mode 0600; an existing file is
// an error, never overwritten.
func writeNewSecret(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists: not overwritten (choose another --out)", path)
		}
		return err
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

// editConfig changes the config file at path through its YAML tree, so
// that comments and the order of settings stay: under an exclusive lock
// (PATH.lock) against another firmactl, checked as firmad checks it
// before anything is written, and replaced atomically (a temporary file
// renamed over it), so firmad never reads half a file.
func editConfig(path string, edit func(root *yaml.Node) error) (err error) {
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	root := rootOf(&doc)
	if root == nil {
		return fmt.Errorf("%s: not a YAML mapping", path)
	}
	if err := edit(root); err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(4)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(buf.Bytes()); err == nil {
		err = tmp.Chmod(fi.Mode().Perm())
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	cfg := config.Default()
	if err = cfg.LoadFilePartial(tmp.Name()); err == nil {
		err = cfg.Validate()
	}
	if err == nil {
		err = checkCredentials(cfg)
	}
	if err != nil {
		return fmt.Errorf("%s after the change: %w (nothing changed)", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(filepath.Dir(path)); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// checkCredentials builds the auditors' and staff's authentication as
// firmad does at start and on reload, which checks each digest.
func checkCredentials(cfg *config.Config) error {
	if c := config.SectionOf[audit.Config](cfg, audit.SectionName); c != nil {
		if _, err := api.NewAuditors(c.Auditors); err != nil {
			return err
		}
	}
	if c := config.SectionOf[registry.Config](cfg, registry.SectionName); c != nil {
		if _, err := api.NewStaffAuth(nil, c.Staff); err != nil {
			return err
		}
	}
	_, err := api.NewAuth(cfg.Auth.Operators)
	return err
}

func rootOf(doc *yaml.Node) *yaml.Node {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		return doc.Content[0]
	}
	return nil
}

// mapGet returns the value of key in mapping m, nil if absent.
func mapGet(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func mapValue(m *yaml.Node, key string) string {
	if v := mapGet(m, key); v != nil {
		return v.Value
	}
	return ""
}

// listNode returns the sequence of l, made (in block style) if create.
func listNode(root *yaml.Node, l accessList, create bool) *yaml.Node {
	sec := mapGet(root, l.section)
	if sec == nil || sec.Kind != yaml.MappingNode {
		if !create {
			return nil
		}
		sec = &yaml.Node{Kind: yaml.MappingNode}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: l.section}, sec)
	}
	seq := mapGet(sec, l.key)
	if seq == nil || seq.Kind != yaml.SequenceNode {
		if !create {
			return nil
		}
		if seq == nil {
			seq = &yaml.Node{Kind: yaml.SequenceNode}
			sec.Content = append(sec.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: l.key}, seq)
		} else {
			// "staff:" with nothing after it is a null scalar.
			*seq = yaml.Node{Kind: yaml.SequenceNode}
		}
	}
	if create {
		seq.Style = 0 // "auditors: []" becomes a block list
	}
	return seq
}

func findEntry(seq *yaml.Node, name string) int {
	if seq == nil {
		return -1
	}
	for i, n := range seq.Content {
		if mapValue(n, "name") == name {
			return i
		}
	}
	return -1
}
