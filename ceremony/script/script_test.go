package script

import (
	"crypto/sha256"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/keyceremony/keyceremony/assets"
)

func template(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(assets.Ceremonies, "ceremonies/"+name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTemplatesValidate(t *testing.T) {
	entries, err := fs.ReadDir(assets.Ceremonies, "ceremonies")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 3 {
		t.Fatalf("only %d templates shipped", len(entries))
	}
	for _, e := range entries {
		raw := template(t, e.Name())
		s, err := Parse([]byte(raw))
		if err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		if s.SHA256 != sha256.Sum256([]byte(raw)) {
			t.Errorf("%s: SHA256 is not the hash of the bytes read", e.Name())
		}
		if string(s.Kind)+".yaml" != e.Name() {
			t.Errorf("%s: kind %s does not match the file name", e.Name(), s.Kind)
		}
	}
}

func TestRootTemplateDefaultsAndValues(t *testing.T) {
	s, err := Parse([]byte(template(t, "root-generation.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	if s.Quorum.Threshold != 3 || len(s.Quorum.Custodians) != 5 || s.Quorum.Custodians[0] != "Carol Chen" {
		t.Errorf("quorum = %+v", s.Quorum)
	}
	if s.Key.Type != "ec-p384" || !s.Key.Backup {
		t.Errorf("key = %+v", s.Key)
	}
	if s.Output.Prefix != "example-root-2026" {
		t.Errorf("prefix default = %q", s.Output.Prefix)
	}
	if got := s.Certificate.NotBefore.UTC().Format("2006-01-02"); got != "2026-12-01" {
		t.Errorf("not_before = %s", got)
	}
	if *s.Certificate.MaxPathLength != -1 {
		t.Errorf("max_path_length = %d", *s.Certificate.MaxPathLength)
	}
	if s.SignatureAlgorithm().String() != "ECDSA-SHA384" {
		t.Errorf("signature algorithm = %v", s.SignatureAlgorithm())
	}
}

// TestProblems edits the root template and checks every problem is reported,
// with its YAML path and line, all at once.
func TestProblems(t *testing.T) {
	tests := []struct {
		name string
		edit func(string) string
		want []string // substrings that must each appear in the error
	}{
		{"unknown key names its path",
			rep("  label: example-root-2026\n", "  label: example-root-2026\n  lable: typo\n"),
			[]string{"key.lable: unknown key (allowed here: backup, label, type)"}},
		{"unknown top-level key",
			rep("kind: root-generation\n", "kind: root-generation\nkinda: x\n"),
			[]string{"line 15: kinda: unknown key"}},
		{"duplicate key names both lines",
			rep("  threshold: 3\n", "  threshold: 3\n  threshold: 2\n"),
			[]string{"quorum.threshold: duplicate key (first set on line"}},
		{"duplicate key in a list element",
			rep("{name: Wendy Webb, role: witness}", "{name: Wendy Webb, role: witness, name: Mallory}"),
			[]string{"participants[1].name: duplicate key"}},
		{"wrong type names the path",
			rep("threshold: 3", "threshold: three"),
			[]string{`quorum.threshold: expected a whole number, got "three"`}},
		{"bad time",
			rep("not_before: 2026-12-01T00:00:00Z", "not_before: next tuesday"),
			[]string{"certificate.not_before: expected a date and time"}},
		{"several problems at once",
			func(s string) string {
				s = rep("  lable: x\n", "")(s)
				s = rep("  label: example-root-2026\n", "  label: example-root-2026\n  colour: red\n")(s)
				s = rep("  threshold: 3\n", "  threshold: 3\n  threshold: 4\n")(s)
				return rep("max_path_length: -1", "max_path_length: [1]")(s)
			},
			[]string{"3 problems", "key.colour: unknown key", "quorum.threshold: duplicate key", "certificate.max_path_length: expected a whole number, got a list"}},
		{"anchors refused",
			rep("- {name: Alice Adams, role: administrator}", "- &a {name: Alice Adams, role: administrator}"),
			[]string{"participants[0]: anchors and aliases are not allowed"}},
		{"second document refused",
			func(s string) string { return s + "---\nkind: key-restore\n" },
			[]string{"only one YAML document"}},
		{"threshold above custodians",
			rep("threshold: 3", "threshold: 6"),
			[]string{"quorum.threshold: 6 is more than the 5 custodians"}},
		{"threshold of one refused",
			rep("threshold: 3", "threshold: 1"),
			[]string{"quorum.threshold: must be at least 2"}},
		{"custodian who is not a participant",
			rep("Grace Gray]", "Mallory]"),
			[]string{`quorum.custodians[4]: "Mallory" is not among the participants`}},
		{"custodian with another role",
			rep("Grace Gray]", "Oscar Ortiz]"),
			[]string{`quorum.custodians[4]: "Oscar Ortiz" has role auditor, not custodian`}},
		{"initialised token without serial",
			rep(";serial=EXAMPLE0000000000", ""),
			[]string{"token.uri: must pin the token's serial"}},
		{"URI naming a key",
			rep(";serial=EXAMPLE0000000000", ";serial=X;object=root"),
			[]string{"token.uri: must select a token, not a key"}},
		{"enrol not allowed for the kind",
			rep("enrol: change-pin", "enrol: quorum"),
			[]string{`token.enrol: "quorum" is not possible in a root-generation ceremony`}},
		{"initialize needs a label",
			rep("enrol: change-pin", "enrol: initialize"),
			[]string{"token.label: required when enrol is initialize"}},
		{"no witness",
			rep("{name: Wendy Webb, role: witness}", "{name: Wendy Webb, role: auditor}"),
			[]string{"participants: needs at least one internal witness"}},
		{"unknown role",
			rep("role: witness", "role: bystander"),
			[]string{`participants[1].role: unknown role "bystander"`}},
		{"duplicate participant",
			rep("{name: Wendy Webb, role: witness}", "{name: Alice Adams, role: witness}"),
			[]string{`participants[1].name: "Alice Adams" is listed twice`}},
		{"key type not allowed for a root",
			rep("type: ec-p384", "type: aes-256"),
			[]string{`key.type: "aes-256" is not allowed for a root key`}},
		{"validity reversed",
			rep("not_after: 2046-11-30T23:59:59Z", "not_after: 2025-11-30T23:59:59Z"),
			[]string{"certificate.not_after: must be after not_before"}},
		{"signature algorithm for another key family",
			rep("max_path_length: -1", "max_path_length: -1\n  signature_algorithm: sha256-rsa"),
			[]string{"certificate.signature_algorithm: sha256-rsa does not fit a ec-p384 key"}},
		{"missing certificate section",
			func(s string) string {
				i := strings.Index(s, "certificate:")
				j := strings.Index(s, "output:")
				return s[:i] + s[j:]
			},
			[]string{"certificate: required in a root-generation ceremony"}},
		{"section of another kind",
			rep("output:\n", "restore:\n  backup: {path: x}\n  certificate: {path: y}\noutput:\n"),
			[]string{"restore: not used in a root-generation ceremony"}},
		{"sections of the kind are checked",
			rep("kind: root-generation", "kind: ca-signing"),
			[]string{`token.enrol: "change-pin" is not possible in a ca-signing ceremony`, "quorum.record: required in a ca-signing ceremony",
				"key: not used in a ca-signing ceremony", "signing: required in a ca-signing ceremony"}},
		{"unknown kind",
			rep("kind: root-generation", "kind: key-escrow"),
			[]string{`kind: unknown kind "key-escrow"`}},
		{"bad delivery",
			rep("delivery: [card, file]", "delivery: [card, email]"),
			[]string{`quorum.delivery[1]: unknown medium "email"`}},
		{"air gap mode",
			rep("air_gap: block", "air_gap: maybe"),
			[]string{`preflight.air_gap: must be block or warn, got "maybe"`}},
		{"bad id",
			rep("id: example-root-2026", "id: Example Root"),
			[]string{"id: required: 3-64 characters"}},
		{"validation problem carries its line",
			rep("threshold: 3", "threshold: 9"),
			[]string{"line 44: quorum.threshold"}},
	}
	base := template(t, "root-generation.yaml")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			edited := tc.edit(base)
			if edited == base {
				t.Fatal("the edit changed nothing: fix the test")
			}
			_, err := Parse([]byte(edited))
			if err == nil {
				t.Fatal("Parse accepted the script")
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("error %T is not Problems", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestRestoreTemplateNeedsRecord(t *testing.T) {
	raw := rep("  record: {path: ceremony-output/example-root-2026.quorum.json}\n", "  threshold: 3\n")(template(t, "key-restore.yaml"))
	_, err := Parse([]byte(raw))
	if err == nil || !strings.Contains(err.Error(), "quorum.record: required in a key-restore ceremony") {
		t.Fatalf("err = %v", err)
	}
}

func TestEmptyAndInvalidYAML(t *testing.T) {
	for _, in := range []string{"", "kind: [", "- a\n- b\n"} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}

func rep(old, new string) func(string) string {
	return func(s string) string { return strings.Replace(s, old, new, 1) }
}

func FuzzParse(f *testing.F) {
	entries, _ := fs.ReadDir(assets.Ceremonies, "ceremonies")
	for _, e := range entries {
		b, _ := fs.ReadFile(assets.Ceremonies, "ceremonies/"+e.Name())
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := Parse(raw)
		if err == nil && s.SHA256 != sha256.Sum256(raw) {
			t.Fatal("hash mismatch")
		}
	})
}

// TestRootPathLengthZeroRefused: a root whose path length forbids every
// subordinate CA is refused when the script is reviewed.
func TestRootPathLengthZeroRefused(t *testing.T) {
	raw := strings.Replace(template(t, "root-generation.yaml"), "max_path_length: -1", "max_path_length: 0", 1)
	if _, err := Parse([]byte(raw)); err == nil || !strings.Contains(err.Error(), "certificate.max_path_length: 0 forbids every subordinate CA") {
		t.Fatalf("root with path length 0: %v", err)
	}
}

// TestRecoveryQuorumRules: the recovery quorum is created with a backup,
// named by key-backup and key-restore, and nowhere else.
func TestRecoveryQuorumRules(t *testing.T) {
	for _, tc := range []struct{ name, tmpl, from, to, want string }{
		{"recovery without a backup", "root-generation.yaml", "backup: true", "backup: false", "recovery: only used with key.backup: true"},
		{"recovery custodian not a participant", "root-generation.yaml", "custodians: [Ivan Ito, Judy Jones, Karl Kim]", "custodians: [Ivan Ito, Mallory]", `recovery.custodians[1]: "Mallory" is not among the participants`},
		{"no backup medium", "root-generation.yaml", "  medium: /media/root-backup\n", "", "recovery.medium: required"},
		{"key-backup without recovery record", "key-backup.yaml", "  record: {path: ceremony-output/example-root-2026.recovery-quorum.json}\n", "", "recovery.record: required"},
		{"recovery in a routine ceremony", "byok-wrap.yaml", "preflight:", "recovery: {record: {path: r.json}}\npreflight:", "recovery: not used in a byok-wrap ceremony"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := template(t, tc.tmpl)
			if !strings.Contains(raw, tc.from) {
				t.Fatalf("template lacks %q", tc.from)
			}
			if _, err := Parse([]byte(strings.Replace(raw, tc.from, tc.to, 1))); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want %q", err, tc.want)
			}
		})
	}
}
