package ui

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/ceremony/certprofile"
	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/ceremony/quorum"
	"github.com/keyceremony/keyceremony/ceremony/script"
	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm"
)

// inputKind says what an input file is, so the form can show what it holds.
type inputKind int

const (
	inputPlain inputKind = iota
	inputRecord
	inputCertificate
	inputCSR
	inputCRL
	inputParameters
)

// maxInspect bounds the size of a file the form reads to describe it.
const maxInspect = 4 << 20

// inputEditor edits a file the ceremony reads: its path (typed, or chosen
// with Browse…, which also pins its SHA-256), the SHA-256 pin, and under
// them what the file holds (a CSR's subject, key and requested extensions;
// a certificate's subject and validity; a quorum record's custodians;
// import parameters' key, wrapping key and deadline).
type inputEditor struct {
	c        *formCtx
	kind     inputKind
	optional bool
	get      func(*script.Script) *script.Input
	put      func(*script.Script, *script.Input)
	path     *scriptEntry
	sha      *scriptEntry
	info     *widget.Label
	box      fyne.CanvasObject
	seen     string // what info was computed for
}

func newInputEditor(c *formCtx, kind inputKind, optional bool, get func(*script.Script) *script.Input, put func(*script.Script, *script.Input)) *inputEditor {
	ie := &inputEditor{c: c, kind: kind, optional: optional, get: get, put: put}
	ie.path = newScriptEntry(c, false, "path of the file (relative to the script's directory, or absolute)")
	ie.sha = newScriptEntry(c, false, "optional: the file's SHA-256; another file then stops the ceremony")
	ie.info = wrapLabel("")
	ie.info.TextStyle = fyne.TextStyle{Monospace: true}
	ie.info.Hide()
	browse := newScriptButton(c, "Browse…", ie.browse)
	pin := newScriptButton(c, "Pin SHA-256", func() {
		if sum, err := fileSHA256(ie.c.form.resolve(strings.TrimSpace(ie.path.Text))); err == nil {
			ie.sha.SetText(sum)
		} else {
			dialog.ShowError(err, ie.c.win)
		}
	})
	ie.box = container.NewVBox(
		container.NewBorder(nil, nil, nil, browse, ie.path),
		container.NewBorder(nil, nil, widget.NewLabel("SHA-256"), pin, ie.sha),
		ie.info)
	return ie
}

func (ie *inputEditor) object() fyne.CanvasObject { return ie.box }

func (ie *inputEditor) load(s *script.Script) {
	in := ie.get(s)
	if in == nil {
		in = &script.Input{}
	}
	ie.path.SetText(in.Path)
	ie.sha.SetText(in.SHA256)
}

func (ie *inputEditor) store(s *script.Script) error {
	p, h := strings.TrimSpace(ie.path.Text), strings.TrimSpace(ie.sha.Text)
	if ie.optional && p == "" && h == "" {
		ie.put(s, nil)
		return nil
	}
	ie.put(s, &script.Input{Path: p, SHA256: h})
	return nil
}

// follow describes the file after each edit of the form (the parameters are
// checked against the key spec and algorithm chosen); it never changes the script.
func (ie *inputEditor) follow(s *script.Script) bool {
	p := strings.TrimSpace(ie.path.Text)
	if p == "" {
		ie.info.Hide()
		ie.seen = ""
		return false
	}
	full := ie.c.form.resolve(p)
	key := full + "|" + ie.sha.Text
	if fi, err := os.Stat(full); err == nil {
		key += fmt.Sprintf("|%d|%d", fi.Size(), fi.ModTime().UnixNano())
	}
	if s.BYOK != nil {
		key += "|" + s.BYOK.KeySpec + "|" + s.BYOK.WrappingAlgorithm
	}
	if key != ie.seen {
		ie.seen = key
		ie.info.SetText(describeInput(ie.kind, full, strings.TrimSpace(ie.sha.Text), s))
		ie.info.Show()
	}
	return false
}

func (ie *inputEditor) browse() {
	dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil || r == nil {
			return
		}
		full := r.URI().Path()
		r.Close()
		ie.picked(full)
	}, ie.c.win).Show()
}

// picked takes a file chosen with Browse…: its path, its SHA-256 pin, and
// what it fills in elsewhere (a record's custodians, the parameters' spec).
func (ie *inputEditor) picked(full string) {
	ie.path.SetText(ie.c.form.relative(full))
	if sum, err := fileSHA256(full); err == nil {
		ie.sha.SetText(sum)
	}
	switch ie.kind {
	case inputRecord:
		if r, err := quorum.ReadRecord(full); err == nil {
			ie.c.form.apply(func(s *script.Script) { addRecordCustodians(s, r) })
		}
	case inputParameters:
		if data, err := os.ReadFile(full); err == nil {
			ie.c.form.apply(func(s *script.Script) { fillFromParameters(s, data) })
		}
	}
}

// addRecordCustodians adds the record's custodians missing from the
// participants, with role custodian.
func addRecordCustodians(s *script.Script, r *quorum.Record) {
	for _, c := range r.Custodians {
		if _, ok := s.Participant(c.Name); !ok {
			s.Participants = append(s.Participants, script.Participant{Name: c.Name, Role: script.Custodian})
		}
	}
}

// fillFromParameters takes the key spec and wrapping algorithm from the
// connected side's import-parameters.json, which names them.
func fillFromParameters(s *script.Script, data []byte) {
	var bundle struct {
		KeySpec           string `json:"KeySpec"`
		WrappingAlgorithm string `json:"WrappingAlgorithm"`
	}
	if json.Unmarshal(data, &bundle) != nil {
		return
	}
	b := byokOf(s)
	if bundle.KeySpec != "" {
		b.KeySpec = bundle.KeySpec
	}
	if bundle.WrappingAlgorithm != "" {
		b.WrappingAlgorithm = bundle.WrappingAlgorithm
	}
}

func fileSHA256(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return sha256Hex(data), nil
}

// describeInput says what a file holds, or why it cannot be read.
func describeInput(kind inputKind, path, pin string, s *script.Script) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "Not found: " + path
	}
	if fi.Size() > maxInspect {
		return fmt.Sprintf("%d bytes (not read here: too large)", fi.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "Cannot read: " + err.Error()
	}
	sum := sha256Hex(data)
	lines := []string{fmt.Sprintf("%d bytes, SHA-256 %s", len(data), sum)}
	switch {
	case pin == "":
	case strings.EqualFold(pin, sum):
		lines = append(lines, "matches the pin")
	default:
		lines = append(lines, "DIFFERS FROM THE PIN: this is not the reviewed file")
	}
	var more []string
	switch kind {
	case inputCSR:
		more, err = describeCSR(data)
	case inputCertificate:
		more, err = describeCertificate(data)
	case inputCRL:
		more, err = describeCRL(data)
	case inputRecord:
		more, err = describeRecord(path)
	case inputParameters:
		more = describeParameters(data, s)
	}
	if err != nil {
		more = append(more, "Cannot be used: "+err.Error())
	}
	return strings.Join(append(lines, more...), "\n")
}

// extensionNames are the extensions a CSR usually asks for.
var extensionNames = map[string]string{
	"2.5.29.14": "subjectKeyIdentifier", "2.5.29.15": "keyUsage", "2.5.29.17": "subjectAltName",
	"2.5.29.19": "basicConstraints", "2.5.29.30": "nameConstraints", "2.5.29.31": "cRLDistributionPoints",
	"2.5.29.32": "certificatePolicies", "2.5.29.35": "authorityKeyIdentifier", "2.5.29.37": "extKeyUsage",
	"1.3.6.1.5.5.7.1.1": "authorityInfoAccess",
}

// describeCSR shows what the signing inputs step records: subject, key, the
// public key's SHA-256 and the extensions the CSR asks for (which the
// profile overrides).
func describeCSR(data []byte) ([]string, error) {
	csr, err := certprofile.ParseCSR(data)
	if err != nil {
		return nil, err
	}
	out := []string{"Subject: " + csr.Subject.String(), "Key: " + certprofile.KeyType(csr.PublicKey) + " (signature verified)"}
	if der, err := x509.MarshalPKIXPublicKey(csr.PublicKey); err == nil {
		out = append(out, "Public key SHA-256: "+sha256Hex(der))
	}
	var ext []string
	for _, x := range csr.Extensions {
		name := extensionNames[x.Id.String()]
		if name == "" {
			name = x.Id.String()
		} else {
			name += " (" + x.Id.String() + ")"
		}
		ext = append(ext, name)
	}
	if len(ext) > 0 {
		out = append(out, "Asks for: "+strings.Join(ext, ", ")+" — ignored: the certificate is built from the profile")
	}
	return out, nil
}

func pemOrDER(data []byte, want string) []byte {
	if block, _ := pem.Decode(data); block != nil && block.Type == want {
		return block.Bytes
	}
	return data
}

func describeCertificate(data []byte) ([]string, error) {
	c, err := x509.ParseCertificate(pemOrDER(data, "CERTIFICATE"))
	if err != nil {
		return nil, fmt.Errorf("not a certificate (PEM or DER): %w", err)
	}
	fp := sha256.Sum256(c.Raw)
	issuer := "Issuer: " + c.Issuer.String()
	if c.Subject.String() == c.Issuer.String() {
		issuer = "Self-signed"
	}
	return []string{"Subject: " + c.Subject.String(), issuer,
		fmt.Sprintf("Valid %s to %s", c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339)),
		"Key: " + certprofile.KeyType(c.PublicKey), "Certificate SHA-256: " + hex.EncodeToString(fp[:])}, nil
}

func describeCRL(data []byte) ([]string, error) {
	crl, err := x509.ParseRevocationList(pemOrDER(data, "X509 CRL"))
	if err != nil {
		return nil, fmt.Errorf("not a CRL (PEM or DER): %w", err)
	}
	return []string{fmt.Sprintf("CRL number %s by %s, next update %s, %d revoked", crl.Number, crl.Issuer, crl.NextUpdate.UTC().Format(time.RFC3339), len(crl.RevokedCertificateEntries))}, nil
}

func describeRecord(path string) ([]string, error) {
	r, err := quorum.ReadRecord(path)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range r.Custodians {
		names = append(names, c.Name)
	}
	return []string{fmt.Sprintf("Quorum of ceremony %s (%s): any %d of %d — %s", r.CeremonyID, r.Created.UTC().Format("2006-01-02"), r.Threshold, len(r.Custodians), strings.Join(names, ", "))}, nil
}

// describeParameters shows the key, wrapping key and deadline of the import
// parameters, and what stops them being used with the spec and algorithm chosen.
func describeParameters(data []byte, s *script.Script) []string {
	var spec, alg string
	if s.BYOK != nil {
		spec, alg = s.BYOK.KeySpec, s.BYOK.WrappingAlgorithm
	}
	facts, problems := checkParameters(data, kmsimport.KeySpec(spec), kmsimport.Algorithm(alg), time.Now())
	var out []string
	for _, f := range facts {
		out = append(out, f[0]+": "+f[1])
	}
	for _, p := range problems {
		out = append(out, "Problem: "+p)
	}
	return out
}

// ---- the token picker

// tokenPicker fills the token fields from a token the module shows (the
// Tokens page's list): the module's absolute path, a URI pinned by the
// token's serial (a blank token without one by its slot), and the
// enrolment that fits its state.
func tokenPicker() fieldDecl {
	return fieldDecl{path: "", section: secToken, label: "Choose a token",
		hint: "Fills in the module, the URI pinned by the token's serial, and the enrolment. Tokens of the module chosen in Settings.",
		make: func(c *formCtx) editor { return newTokenPickerEditor(c) }}
}

type tokenPickerEditor struct {
	c      *formCtx
	sel    *scriptSelect
	status *widget.Label
	module string
	slots  []hsm.Slot
	box    fyne.CanvasObject
}

func newTokenPickerEditor(c *formCtx) *tokenPickerEditor {
	tp := &tokenPickerEditor{c: c, status: widget.NewLabel("")}
	tp.sel = newScriptSelect(c, nil, func(string) {
		i := tp.sel.SelectedIndex()
		if i < 0 || i >= len(tp.slots) {
			return
		}
		slot, module := tp.slots[i], tp.module
		c.form.apply(func(s *script.Script) { pinToken(s, module, slot) })
	})
	tp.sel.PlaceHolder = "(tokens are being read)"
	reload := newScriptButton(c, "Refresh", tp.reload)
	tp.box = container.NewVBox(container.NewBorder(nil, nil, nil, reload, tp.sel), tp.status)
	tp.reload()
	return tp
}

func (tp *tokenPickerEditor) object() fyne.CanvasObject  { return tp.box }
func (tp *tokenPickerEditor) load(*script.Script)        {}
func (tp *tokenPickerEditor) store(*script.Script) error { return nil }

// reload reads the module's slots in the background.
func (tp *tokenPickerEditor) reload() {
	module := ""
	if tp.c.form != nil && tp.c.form.settings != nil {
		module = tp.c.form.settings.Module()
	}
	go func() {
		path, err := softhsm.Resolve(module)
		var slots []hsm.Slot
		if err == nil {
			var m *hsm.Module
			if m, err = hsm.Open(path); err == nil {
				slots, err = m.Slots()
				m.Close()
			}
		}
		var present []hsm.Slot
		for _, s := range slots {
			if s.Token != nil {
				present = append(present, s)
			}
		}
		fyne.Do(func() {
			tp.module, tp.slots = path, present
			var names []string
			for _, s := range present {
				names = append(names, slotTitle(s))
			}
			tp.sel.SetOptions(names)
			tp.sel.ClearSelected()
			switch {
			case err != nil:
				tp.sel.PlaceHolder = "(no tokens)"
				tp.status.SetText("Cannot read the tokens: " + err.Error())
			case len(present) == 0:
				tp.sel.PlaceHolder = "(no token present)"
				tp.status.SetText("Module " + path + ": no token present.")
			default:
				tp.sel.PlaceHolder = "(choose one of the tokens)"
				tp.status.SetText(fmt.Sprintf("Module %s: %d token(s).", path, len(present)))
			}
			tp.sel.Refresh()
		})
	}()
}

// pinToken writes a token into the script as the form's picker chose it.
func pinToken(s *script.Script, module string, slot hsm.Slot) {
	s.Token.Module = module
	ti := slot.Token
	u := hsm.URI{Token: ti.Label, Serial: ti.Serial}
	if !ti.Initialized {
		u = hsm.URI{Serial: ti.Serial}
		if ti.Serial == "" {
			id := slot.ID
			u = hsm.URI{SlotID: &id}
		}
	}
	s.Token.URI = u.String()
	if s.Kind.UsesQuorumRecord() && s.Kind != script.KeyRestore {
		s.Token.Enrol = script.EnrolQuorum
		return
	}
	if ti.Initialized {
		s.Token.Enrol, s.Token.Label = script.EnrolChangePIN, ""
	} else {
		s.Token.Enrol = script.EnrolInitialize
	}
}
