package ui

import (
	"sort"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/ceremony/script"
)

// The building blocks of the script form's declarations (scriptfields.go):
// a constructor per kind of field, the sections a kind always has, the
// choices offered, and the editors that belong to one field only.

// ---- field constructors: one line per field below

func text(path, section, label, hint string, ptr func(*script.Script) *string) fieldDecl {
	return fieldDecl{path: path, section: section, label: label, hint: hint,
		make: func(c *formCtx) editor { return newTextEditor(c, false, "", ptr) }}
}

func multiText(path, section, label, hint string, ptr func(*script.Script) *string) fieldDecl {
	return fieldDecl{path: path, section: section, label: label, hint: hint,
		make: func(c *formCtx) editor { return newTextEditor(c, true, "", ptr) }}
}

func pick[T ~string](path, section, label, hint string, choices []choice, ptr func(*script.Script) *T) fieldDecl {
	get, set := stringChoice(ptr)
	return pickFunc(path, section, label, hint, choices, get, set)
}

func pickFunc(path, section, label, hint string, choices []choice, get func(*script.Script) string, set func(*script.Script, string)) fieldDecl {
	return fieldDecl{path: path, section: section, label: label, hint: hint,
		make: func(c *formCtx) editor { return newChoiceEditor(c, choices, get, set) }}
}

func number(path, section, label, hint string, ptr func(*script.Script) *int) fieldDecl {
	return fieldDecl{path: path, section: section, label: label, hint: hint,
		make: func(c *formCtx) editor { return &intEditor{e: newScriptEntry(c, false, ""), ptr: ptr} }}
}

func optNumber(path, section, label, hint string, ptr func(*script.Script) **int) fieldDecl {
	return fieldDecl{path: path, section: section, label: label, hint: hint,
		make: func(c *formCtx) editor {
			return &intEditor{e: newScriptEntry(c, false, ""), optional: true, optPtr: ptr}
		}}
}

func check(path, section, label, text, hint string, ptr func(*script.Script) *bool) fieldDecl {
	return fieldDecl{path: path, section: section, label: label, hint: hint,
		make: func(c *formCtx) editor { return newBoolEditor(c, text, ptr) }}
}

// yesNo edits a *bool that must be decided: not set, true or false.
func yesNo(path, section, label, hint, yes, no string, ptr func(*script.Script) **bool) fieldDecl {
	get := func(s *script.Script) string {
		switch b := *ptr(s); {
		case b == nil:
			return ""
		case *b:
			return "true"
		}
		return "false"
	}
	set := func(s *script.Script, v string) {
		switch v {
		case "true", "false":
			b := v == "true"
			*ptr(s) = &b
		default:
			*ptr(s) = nil
		}
	}
	return pickFunc(path, section, label, hint, []choice{{"true", yes}, {"false", no}}, get, set)
}

func toggle(path, section, label, text, hint string, get func(*script.Script) bool, set func(*script.Script, bool)) fieldDecl {
	return fieldDecl{path: path, section: section, label: label, hint: hint,
		make: func(c *formCtx) editor {
			t := &toggleEditor{get: get, set: set}
			t.check = newBoolEditor(c, text, nil).check
			return t
		}}
}

func when(path, section, label, hint string, ptr func(*script.Script) *time.Time) fieldDecl {
	return fieldDecl{path: path, section: section, label: label, hint: hint,
		make: func(c *formCtx) editor {
			return &timeEditor{e: newScriptEntry(c, false, "e.g. 2026-12-01T00:00:00Z"), ptr: ptr}
		}}
}

func list(path, section, label, hint string, ptr func(*script.Script) *[]string) fieldDecl {
	return fieldDecl{path: path, section: section, label: label, hint: hint,
		make: func(c *formCtx) editor { return &listEditor{e: newScriptEntry(c, true, "one per line"), ptr: ptr} }}
}

func options(path, section, label, hint string, values []string, ptr func(*script.Script) *[]string) fieldDecl {
	return fieldDecl{path: path, section: section, label: label, hint: hint,
		make: func(c *formCtx) editor { return newSetEditor(c, values, ptr) }}
}

// file edits an input (path and SHA-256 pin) held by value.
func file(path, section, label, hint string, kind inputKind, ptr func(*script.Script) *script.Input) fieldDecl {
	return fieldDecl{path: path, section: section, label: label, hint: hint, covers: []string{path + ".path", path + ".sha256"},
		make: func(c *formCtx) editor {
			return newInputEditor(c, kind, false, func(s *script.Script) *script.Input { return ptr(s) },
				func(s *script.Script, in *script.Input) {
					if in == nil {
						in = &script.Input{}
					}
					*ptr(s) = *in
				})
		}}
}

// optFile edits an input held by pointer: absent when both its path and
// pin are empty, unless required (then an empty input stays, and
// validation asks for its path).
func optFile(path, section, label, hint string, kind inputKind, required bool, ptr func(*script.Script) **script.Input) fieldDecl {
	return fieldDecl{path: path, section: section, label: label, hint: hint, covers: []string{path + ".path", path + ".sha256"},
		make: func(c *formCtx) editor {
			return newInputEditor(c, kind, !required, func(s *script.Script) *script.Input { return *ptr(s) },
				func(s *script.Script, in *script.Input) { *ptr(s) = in })
		}}
}

// ---- the sections a kind always has

func newSections(k script.Kind) *script.Script {
	s := &script.Script{Kind: k}
	switch k {
	case script.RootGeneration:
		s.Key, s.Certificate = &script.Key{}, &script.Certificate{}
	case script.KeyBackup:
		s.Backup, s.Recovery = &script.Backup{}, &script.Recovery{}
	case script.KeyRestore:
		s.Restore, s.Recovery = &script.Restore{}, &script.Recovery{}
	case script.CASigning:
		s.Signing = &script.Signing{}
	case script.CRLIssuance:
		s.Signing = &script.Signing{CRL: &script.CRL{}}
	case script.BYOKWrap:
		s.BYOK = &script.BYOK{}
	}
	return s
}

// section returns the section *p points to, creating it when absent: the
// form's fields write into sections the kind or a toggle has.
func section[T any](p **T) *T {
	if *p == nil {
		*p = new(T)
	}
	return *p
}

func keyOf(s *script.Script) *script.Key           { return section(&s.Key) }
func certOf(s *script.Script) *script.Certificate  { return section(&s.Certificate) }
func backupOf(s *script.Script) *script.Backup     { return section(&s.Backup) }
func restoreOf(s *script.Script) *script.Restore   { return section(&s.Restore) }
func recoveryOf(s *script.Script) *script.Recovery { return section(&s.Recovery) }
func hasBackup(s *script.Script) bool              { return s.Key != nil && s.Key.Backup }
func signingOf(s *script.Script) *script.Signing   { return section(&s.Signing) }
func subOf(s *script.Script) *script.Subordinate   { return section(&signingOf(s).Subordinate) }
func crossOf(s *script.Script) *script.CrossCertificate {
	return section(&signingOf(s).CrossCertificate)
}
func crlOf(s *script.Script) *script.CRL      { return section(&signingOf(s).CRL) }
func byokOf(s *script.Script) *script.BYOK    { return section(&s.BYOK) }
func subjectOf(s *script.Script) *script.Name { return section(&subOf(s).Profile.Subject) }

// ---- the choices

func plainChoices(values ...string) []choice {
	out := make([]choice, len(values))
	for i, v := range values {
		out[i] = choice{v, v}
	}
	return out
}

func withUnset(label string, cs []choice) []choice { return append([]choice{{"", label}}, cs...) }

func signatureAlgorithmNames() []string {
	var out []string
	for n := range script.SignatureAlgorithms {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func crlReasonNames() []string {
	var out []string
	for n := range script.CRLReasons {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return script.CRLReasons[out[i]] < script.CRLReasons[out[j]] })
	return out
}

func byokSpecNames() []string {
	var out []string
	for _, c := range kmsimport.Allowed() {
		if !contains(out, string(c.Spec)) {
			out = append(out, string(c.Spec))
		}
	}
	return out
}

func byokAlgorithmNames() []string {
	var out []string
	for _, a := range kmsimport.Algorithms() {
		out = append(out, string(a))
	}
	return out
}

func enrolChoices(k script.Kind) []choice {
	all := []choice{
		{string(script.EnrolInitialize), "initialize — a blank token, initialised by this ceremony"},
		{string(script.EnrolChangePIN), "change-pin — an initialised token whose PINs are replaced"},
		{string(script.EnrolQuorum), "quorum — enrolled under the quorum by an earlier ceremony"},
	}
	if k.UsesQuorumRecord() && k != script.KeyRestore {
		return all[2:]
	}
	return all[:2]
}

// custodiansEditor follows the participants with role custodian until the
// user edits the list (only for a kind that creates its quorum).
type custodiansEditor struct {
	listEditor
	auto string
}

// follow says whether it changed the list.
func (ce *custodiansEditor) follow(s *script.Script) bool {
	if s.Kind.UsesQuorumRecord() || ce.e.Text != ce.auto {
		return false
	}
	var names []string
	for _, p := range s.Participants {
		if p.Role == script.Custodian && p.Name != "" {
			names = append(names, p.Name)
		}
	}
	ce.auto = strings.Join(names, "\n")
	if ce.e.Text == ce.auto {
		return false
	}
	ce.e.SetText(ce.auto)
	return true
}

func (ce *custodiansEditor) load(s *script.Script) {
	ce.listEditor.load(s)
	ce.auto = "" // a loaded list is the user's, unless it was empty
	if len(s.Quorum.Custodians) > 0 {
		ce.auto = "\x00" // never equal to the text: the list is not followed
	}
}

// kindEditor shows the kind: a form is for one kind (newSections sets it).
type kindEditor struct{ l *widget.Label }

func newKindEditor() *kindEditor { return &kindEditor{l: widget.NewLabel("")} }

func (k *kindEditor) object() fyne.CanvasObject { return k.l }
func (k *kindEditor) load(s *script.Script) {
	k.l.SetText(string(s.Kind) + " — " + kindTitles[s.Kind])
}
func (k *kindEditor) store(*script.Script) error { return nil }

// kindTitles say in words what each kind of ceremony does.
var kindTitles = map[script.Kind]string{
	script.RootGeneration: "root CA key generation, with an optional key backup",
	script.KeyBackup:      "another backup of a root key made extractable",
	script.KeyRestore:     "restore a root key from its backup into another token",
	script.CASigning:      "the root signs a subordinate CA, a cross-certificate and/or its CRL",
	script.CRLIssuance:    "the root signs its CRL only",
	script.BYOKWrap:       "wrap key material for import into AWS KMS",
}
