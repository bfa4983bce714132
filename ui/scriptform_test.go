package ui

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/keyceremony/keyceremony/assets"
	"github.com/keyceremony/keyceremony/ceremony"
	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/hsm/softhsm/softhsmtest"
)

// newTestForm builds a form in a test window; the token picker reads a
// throwaway SoftHSM store.
func newTestForm(t *testing.T, kind script.Kind) *ScriptForm {
	t.Helper()
	softhsmtest.NewStore(t)
	a := test.NewTempApp(t)
	win := a.NewWindow("form")
	t.Cleanup(win.Close)
	var f *ScriptForm
	fyne.DoAndWait(func() {
		f = NewScriptForm(win, nil, kind)
		win.SetContent(f)
		win.Resize(fyne.NewSize(1280, 800))
	})
	return f
}

// Every shipped template opens in the form and the form writes it back byte
// for byte: the form represents every value a template holds (a key the form
// dropped would change the bytes), and its encoding is the templates' own.
func TestFormRoundTripsEveryTemplate(t *testing.T) {
	entries, err := fs.ReadDir(assets.Ceremonies, "ceremonies")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, _ := fs.ReadFile(assets.Ceremonies, "ceremonies/"+e.Name())
		s, err := script.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		f := newTestForm(t, s.Kind)
		var out []byte
		fyne.DoAndWait(func() {
			f.Load(s)
			out, err = f.YAML()
		})
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		if !bytes.Equal(out, raw) {
			orig, _ := script.Decode(raw)
			t.Errorf("%s does not round-trip through the form: %s", e.Name(), notRepresentable(raw, orig, f.Script(), out, nil))
		}
		if len(f.Problems()) != 0 {
			t.Errorf("%s: the form reports problems for a valid template: %v", e.Name(), f.Problems())
		}
	}
}

// leafPaths lists every YAML path of a type down to its values, with "[]"
// for list elements: what the script language can say.
func leafPaths(t reflect.Type, path string, out map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[time.Time]():
		out[path] = true
	case t.Kind() == reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			leafPaths(f.Type, p, out)
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		leafPaths(t.Elem(), path+"[]", out)
	default:
		out[path] = true
	}
}

// The form has a field for every key of the script language: a key added to
// script.Script without a declaration in scriptfields.go fails here.
func TestFormCoversScriptLanguage(t *testing.T) {
	want := map[string]bool{}
	leafPaths(reflect.TypeFor[script.Script](), "", want)
	// The language forbids these in a cross-certificate (it keeps the
	// original's subject and validity): validateProfile refuses them.
	forbidden := []string{"signing.cross_certificate.profile.subject.", "signing.cross_certificate.profile.accept_csr_subject", "signing.cross_certificate.profile.validity_days"}
	have := map[string]bool{}
	for _, d := range scriptFields() {
		have[d.path] = true
		for _, c := range d.covers {
			have[c] = true
		}
	}
	var missing []string
	for p := range want {
		skip := false
		for _, f := range forbidden {
			skip = skip || strings.HasPrefix(p, f)
		}
		if !have[p] && !skip {
			missing = append(missing, p)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("the script form has no field for %v: declare it in scriptfields.go", missing)
	}
	for p := range have {
		known := p == "" || want[p]
		for w := range want {
			known = known || strings.HasPrefix(w, p+".") || strings.HasPrefix(w, p+"[")
		}
		if !known {
			t.Errorf("the form declares %q, which is not a key of the script language", p)
		}
	}
}

// field finds the form's field for a YAML path.
func field(t *testing.T, f *ScriptForm, path string) *formField {
	t.Helper()
	for _, ff := range f.fields {
		if ff.decl.path == path {
			return ff
		}
	}
	t.Fatalf("the %s form has no field %s", f.kind, path)
	return nil
}

// fillField puts v into a field through its widgets, as a user would.
func fillField(t *testing.T, f *ScriptForm, path, v string) {
	t.Helper()
	ff := field(t, f, path)
	fyne.DoAndWait(func() {
		switch ed := ff.ed.(type) {
		case *textEditor:
			ed.e.SetText(v)
		case *intEditor:
			ed.e.SetText(v)
		case *timeEditor:
			ed.e.SetText(v)
		case *listEditor:
			ed.e.SetText(strings.ReplaceAll(v, ",", "\n"))
		case *custodiansEditor:
			ed.e.SetText(strings.ReplaceAll(v, ",", "\n"))
		case *boolEditor:
			ed.check.SetChecked(v == "true")
		case *toggleEditor:
			ed.check.SetChecked(v == "true")
		case *choiceEditor:
			for _, c := range ed.choices {
				if c.value == v {
					ed.sel.SetSelected(c.label)
					return
				}
			}
			t.Errorf("%s offers no %q", path, v)
		case *setEditor:
			for _, c := range ed.checks {
				c.SetChecked(false)
			}
			for _, x := range strings.Split(v, ",") {
				ed.checks[indexOf(ed.options, x)].SetChecked(true)
			}
		case *inputEditor:
			// As Browse… does: the path, and its SHA-256 pinned.
			ed.picked(f.resolve(v))
		case *rowsEditor[script.Participant]:
			ed.rows = nil
			ed.rebuild()
			for _, pr := range strings.Split(v, ",") {
				name, role, _ := strings.Cut(pr, "=")
				formButton(t, ed.box, "Add participant").OnTapped()
				r := ed.rows[len(ed.rows)-1]
				r.objs[0].(*scriptEntry).SetText(name)
				r.objs[1].(*scriptSelect).SetSelected(role)
			}
		case *rowsEditor[script.Revocation]:
			for _, rv := range strings.Split(v, ",") {
				parts := strings.Split(rv, "|")
				formButton(t, ed.box, "Add a revoked certificate").OnTapped()
				r := ed.rows[len(ed.rows)-1]
				r.objs[0].(*scriptEntry).SetText(parts[0])
				r.objs[1].(*scriptEntry).SetText(parts[1])
				r.objs[2].(*scriptSelect).SetSelected(parts[2])
			}
		default:
			t.Errorf("fillField: %s is a %T", path, ff.ed)
		}
	})
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	panic("no " + s)
}

// inputs writes the files the ceremonies of a quorum read: a quorum record,
// the root certificate, a CSR, another CA's certificate, import parameters
// and a key backup file.
func inputs(t *testing.T, dir string) map[string]string {
	t.Helper()
	rec, secret, _, err := quorum.Split("example-root-2026", 2, []string{"Carol Chen", "Dan Diaz", "Erin Evans"})
	if err != nil {
		t.Fatal(err)
	}
	secret.Wipe()
	b, _ := rec.Marshal()
	rrec, rsecret, _, err := quorum.SplitFor("example-root-2026", quorum.RecoveryQuorum, 2, []string{"Ivan Ito", "Judy Jones", "Karl Kim"})
	if err != nil {
		t.Fatal(err)
	}
	rsecret.Wipe()
	rb, _ := rrec.Marshal()
	files := map[string][]byte{"root.quorum.json": b, "root.recovery-quorum.json": rb, "params.json": paramsJSON(t, 2048, time.Now().Add(20*time.Hour),
		`,"KeySpec":"SYMMETRIC_DEFAULT","WrappingAlgorithm":"RSA_AES_KEY_WRAP_SHA_256"`), "root.key-backup.json": []byte(`{"format":"placeholder"}`)}
	caCert := func(cn string) ([]byte, *ecdsa.PrivateKey) {
		k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, Organization: []string{"Example Corp"}, Country: []string{"DE"}}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().AddDate(15, 0, 0), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), k
	}
	files["root.cert.pem"], _ = caCert("Example Root CA 2026")
	files["partner.cert.pem"], _ = caCert("Partner Root CA")
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "Issuing CA 1", Organization: []string{"Example Corp"}, Country: []string{"DE"}}}, k)
	if err != nil {
		t.Fatal(err)
	}
	files["issuing.csr"] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})
	out := map[string]string{}
	for name, data := range files {
		p := filepath.Join(dir, "inputs", name)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out[name] = p
	}
	return out
}

// formFills are, per kind, what a user types into a new form: with them the
// script must pass the engine's checks (what `keyceremony ceremony plan`
// runs), inputs included.
var formFills = map[script.Kind][][2]string{
	script.RootGeneration: {{"id", "example-root-2026"}, {"title", "Example Root CA 2026"}, {"token.uri", "pkcs11:serial=0123456789abcdef"},
		{"token.label", "Root 2026"}, {"participants", "Alice Adams=administrator,Wendy Webb=witness,Carol Chen=custodian,Dan Diaz=custodian,Erin Evans=custodian"},
		{"quorum.threshold", "2"}, {"key.label", "root-2026"}, {"certificate.subject.common_name", "Example Root CA 2026"}},
	script.KeyBackup: {{"id", "example-root-2026-backup"}, {"title", "Another backup"}, {"token.uri", "pkcs11:serial=0123456789abcdef"},
		{"quorum.record", "inputs/root.quorum.json"}, {"participants", "Alice Adams=administrator,Wendy Webb=witness,Carol Chen=custodian,Dan Diaz=custodian,Erin Evans=custodian"},
		{"recovery.record", "inputs/root.recovery-quorum.json"}, {"recovery.medium", "/media/backup"}, {"backup.key_label", "root-2026"}},
	script.KeyRestore: {{"id", "example-root-2026-restore"}, {"title", "Restore"}, {"token.uri", "pkcs11:serial=0123456789abcdee"}, {"token.enrol", "change-pin"},
		{"quorum.record", "inputs/root.quorum.json"}, {"participants", "Alice Adams=administrator,Wendy Webb=witness,Carol Chen=custodian,Dan Diaz=custodian,Erin Evans=custodian"},
		{"recovery.record", "inputs/root.recovery-quorum.json"}, {"restore.backup", "inputs/root.key-backup.json"}, {"restore.certificate", "inputs/root.cert.pem"}},
	script.CASigning: {{"id", "example-issuing-ca-1"}, {"title", "Issuing CA 1"}, {"token.uri", "pkcs11:serial=0123456789abcdef"},
		{"quorum.record", "inputs/root.quorum.json"}, {"participants", "Alice Adams=administrator,Wendy Webb=witness,Carol Chen=custodian,Dan Diaz=custodian,Erin Evans=custodian"},
		{"signing.issuer.certificate", "inputs/root.cert.pem"}, {"signing.subordinate.csr", "inputs/issuing.csr"},
		{"signing.subordinate.profile.accept_csr_subject", "true"}, {"signing.subordinate.profile.validity_days", "3650"},
		{"signing.subordinate.profile.allowed_keys", "ec-p384,rsa-3072"}, {"signing.subordinate.profile.crl_distribution_points", "http://crl.example.com/root.crl"},
		{"signing.subordinate.profile.policies", "2.5.29.32.0"},
		{"signing.cross_certificate", "true"}, {"signing.cross_certificate.certificate", "inputs/partner.cert.pem"},
		{"signing.cross_certificate.profile.max_path_length", "1"}, {"signing.cross_certificate.profile.allowed_keys", "ec-p384"},
		{"signing.cross_certificate.profile.crl_distribution_points", "http://crl.example.com/root.crl"}, {"signing.cross_certificate.profile.policies", "2.5.29.32.0"},
		{"signing.crl", "true"}, {"signing.crl.counter_directory", "counter"}, {"signing.crl.next_update_days", "365"},
		{"signing.crl.revoked", "7a:11:03|2026-11-02T10:00:00Z|superseded"}},
	script.CRLIssuance: {{"id", "example-root-2026-crl"}, {"title", "CRL"}, {"token.uri", "pkcs11:serial=0123456789abcdef"},
		{"quorum.record", "inputs/root.quorum.json"}, {"participants", "Alice Adams=administrator,Wendy Webb=witness,Carol Chen=custodian,Dan Diaz=custodian,Erin Evans=custodian"},
		{"signing.issuer.certificate", "inputs/root.cert.pem"}, {"signing.crl.counter_directory", "counter"}},
	script.BYOKWrap: {{"id", "example-kms-key-import"}, {"title", "KMS key import"}, {"token.uri", "pkcs11:serial=0123456789abcdef"},
		{"quorum.record", "inputs/root.quorum.json"}, {"participants", "Alice Adams=administrator,Wendy Webb=witness,Carol Chen=custodian,Dan Diaz=custodian,Erin Evans=custodian"},
		{"byok.parameters", "inputs/params.json"}, {"byok.key_spec", "SYMMETRIC_DEFAULT"}, {"byok.wrapping_algorithm", "RSA_AES_KEY_WRAP_SHA_256"},
		{"byok.key.label", "kms-key-2026"}, {"byok.keep_in_token", "true"}, {"byok.expiration.model", "KEY_MATERIAL_DOES_NOT_EXPIRE"}},
}

// A script of each kind made in the form validates and passes what
// `keyceremony ceremony plan` checks (ceremony.New: inputs read and checked,
// the CSR against the profile, the parameters against the spec); the
// defaults are the safe ones.
func TestFormMadeScriptOfEachKindPassesPlan(t *testing.T) {
	dir := t.TempDir()
	inputs(t, dir)
	os.MkdirAll(filepath.Join(dir, "counter"), 0o700)
	for _, k := range formKinds {
		t.Run(string(k), func(t *testing.T) {
			f := newTestForm(t, k)
			fyne.DoAndWait(func() {
				f.Load(defaultScript(k, "/usr/lib/softhsm/libsofthsm2.so"))
				f.SetPath(filepath.Join(dir, string(k)+".yaml"))
			})
			for _, kv := range formFills[k] {
				fillField(t, f, kv[0], kv[1])
			}
			if ps := f.Problems(); len(ps) > 0 {
				t.Fatalf("problems after filling the form: %v", ps)
			}
			data, err := f.YAML()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, string(k)+".yaml")
			if err := writeFileAtomic(path, data); err != nil {
				t.Fatal(err)
			}
			s, err := script.Load(path)
			if err != nil {
				t.Fatalf("%v\n%s", err, data)
			}
			e, err := ceremony.New(s, ceremony.Options{Prompter: reviewPrompter{}})
			if err != nil {
				t.Fatalf("ceremony plan refuses the form's script: %v\n%s", err, data)
			}
			if len(e.Plan()) < 5 {
				t.Fatalf("plan of %d steps", len(e.Plan()))
			}
			// Safe defaults: air gap blocking, no backup, no host steps.
			if s.Preflight.AirGap != "block" || s.Key != nil && s.Key.Backup || s.BYOK != nil && s.BYOK.AllowHostSteps {
				t.Errorf("unsafe default: air gap %q, key %+v, byok %+v", s.Preflight.AirGap, s.Key, s.BYOK)
			}
			// The same form gives the same bytes.
			again, _ := f.YAML()
			if !bytes.Equal(again, data) {
				t.Error("the same form gave different bytes")
			}
		})
	}
}

// A problem of the script language appears under the field it names, and
// text the form cannot read is said next to its field; fixing it clears both.
func TestFormShowsProblemsUnderTheirFields(t *testing.T) {
	f := newTestForm(t, script.RootGeneration)
	fyne.DoAndWait(func() { f.Load(defaultScript(script.RootGeneration, "/usr/lib/softhsm/libsofthsm2.so")) })
	for _, kv := range formFills[script.RootGeneration] {
		fillField(t, f, kv[0], kv[1])
	}
	fillField(t, f, "quorum.threshold", "1")
	fillField(t, f, "certificate.not_after", "next tuesday")
	threshold, notAfter := field(t, f, "quorum.threshold"), field(t, f, "certificate.not_after")
	if !threshold.problem.Visible() || !strings.Contains(threshold.problem.Text, "at least 2") {
		t.Errorf("threshold problem: %q (visible %v)", threshold.problem.Text, threshold.problem.Visible())
	}
	if !notAfter.problem.Visible() || !strings.Contains(notAfter.problem.Text, "not a date and time") {
		t.Errorf("date problem: %q", notAfter.problem.Text)
	}
	if _, err := f.YAML(); err == nil {
		t.Error("a form with unreadable text gave YAML")
	}
	fillField(t, f, "quorum.threshold", "2")
	fillField(t, f, "certificate.not_after", "2046-11-30T23:59:59Z")
	if threshold.problem.Visible() || notAfter.problem.Visible() || len(f.Problems()) > 0 {
		t.Errorf("problems remain after fixing: %v", f.Problems())
	}
	// A problem under a list names the row.
	fillField(t, f, "participants", "Alice Adams=administrator,=witness,Carol Chen=custodian,Dan Diaz=custodian")
	if p := field(t, f, "participants").problem; !p.Visible() || !strings.Contains(p.Text, "participants[1].name: required") {
		t.Errorf("participants problem: %q", p.Text)
	}
}

// The token picker fills module, URI pinned by serial and enrolment from a
// token the module shows.
func TestFormTokenPicker(t *testing.T) {
	mod := softhsmtest.NewToken(t, "Picker Token", []byte("so-pin-1111"), []byte("user-pin-1111"))
	a := test.NewTempApp(t)
	win := a.NewWindow("form")
	defer win.Close()
	var f *ScriptForm
	fyne.DoAndWait(func() {
		f = NewScriptForm(win, nil, script.RootGeneration)
		win.SetContent(f)
		f.Load(defaultScript(script.RootGeneration, mod))
	})
	tp := field(t, f, "").ed.(*tokenPickerEditor)
	waitFor(t, "the token list", func() bool {
		var n int
		fyne.DoAndWait(func() { n = len(tp.sel.Options) })
		return n > 0
	})
	var serial string
	fyne.DoAndWait(func() {
		for i, s := range tp.slots {
			if s.Token.Label == "Picker Token" {
				serial = s.Token.Serial
				tp.sel.SetSelectedIndex(i)
			}
		}
	})
	s := f.Script()
	if s.Token.URI != "pkcs11:token=Picker%20Token;serial="+serial || s.Token.Module != mod || s.Token.Enrol != script.EnrolChangePIN || s.Token.Label != "" {
		t.Fatalf("token after picking: %+v (serial %s)", s.Token, serial)
	}
}

// Choosing a CSR shows what `ceremony plan`'s inputs step records: its
// subject, key and requested extensions; choosing a quorum record adds its
// custodians; the parameters fill the key spec and algorithm.
func TestFormInputsDescribeAndFill(t *testing.T) {
	dir := t.TempDir()
	in := inputs(t, dir)
	f := newTestForm(t, script.CASigning)
	fyne.DoAndWait(func() { f.Load(defaultScript(script.CASigning, "/usr/lib/softhsm/libsofthsm2.so")) })
	csr := field(t, f, "signing.subordinate.csr").ed.(*inputEditor)
	fyne.DoAndWait(func() { csr.picked(in["issuing.csr"]) })
	if !strings.Contains(csr.info.Text, "Subject: CN=Issuing CA 1") || !strings.Contains(csr.info.Text, "Key: ec-p384") {
		t.Errorf("CSR described as %q", csr.info.Text)
	}
	if csr.sha.Text != sha256Hex(must(os.ReadFile(in["issuing.csr"]))) {
		t.Error("Browse did not pin the CSR's SHA-256")
	}
	rec := field(t, f, "quorum.record").ed.(*inputEditor)
	fyne.DoAndWait(func() { rec.picked(in["root.quorum.json"]) })
	if !strings.Contains(rec.info.Text, "any 2 of 3 — Carol Chen, Dan Diaz, Erin Evans") {
		t.Errorf("record described as %q", rec.info.Text)
	}
	var names []string
	for _, p := range f.Script().Participants {
		if p.Role == script.Custodian {
			names = append(names, p.Name)
		}
	}
	if strings.Join(names, ",") != "Carol Chen,Dan Diaz,Erin Evans" {
		t.Errorf("custodians after choosing the record: %v", names)
	}

	b := newTestForm(t, script.BYOKWrap)
	fyne.DoAndWait(func() { b.Load(defaultScript(script.BYOKWrap, "/usr/lib/softhsm/libsofthsm2.so")) })
	params := field(t, b, "byok.parameters").ed.(*inputEditor)
	fyne.DoAndWait(func() { params.picked(in["params.json"]) })
	s := b.Script()
	if s.BYOK.KeySpec != "SYMMETRIC_DEFAULT" || s.BYOK.WrappingAlgorithm != "RSA_AES_KEY_WRAP_SHA_256" {
		t.Errorf("spec and algorithm not filled from the parameters: %+v", s.BYOK)
	}
	if !strings.Contains(params.info.Text, "KMS key: arn:aws:kms:eu-west-1:111122223333:key/") || !strings.Contains(params.info.Text, "Valid until") {
		t.Errorf("parameters described as %q", params.info.Text)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func formButton(t *testing.T, o fyne.CanvasObject, text string) *scriptButton {
	t.Helper()
	for _, b := range findAll[*scriptButton](o) {
		if b.Text == text {
			return b
		}
	}
	t.Fatalf("no button %q", text)
	return nil
}
