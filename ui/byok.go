package ui

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/ceremony/kmsimport"
	"github.com/keyceremony/keyceremony/ceremony/script"
)

// connectedPrepare is what to run on the connected machine before the ceremony.
const connectedPrepare = `# On the connected workstation, with credentials allowed kms:CreateKey and kms:GetParametersForImport:
aws kms create-key --origin EXTERNAL --key-spec SYMMETRIC_DEFAULT --key-usage ENCRYPT_DECRYPT \
    --description "Key material from our HSM"
aws kms get-parameters-for-import --key-id KEY_ARN \
    --wrapping-algorithm RSA_AES_KEY_WRAP_SHA_256 --wrapping-key-spec RSA_4096 > import-parameters.json
# Carry import-parameters.json to the air-gapped laptop (USB medium).
# The parameters expire 24 hours after this command: hold the ceremony and the import within that window.`

// checkParameters checks the AWS files a user brings for a BYOK ceremony.
// It returns the facts to show and the problems that stop the ceremony.
func checkParameters(data []byte, spec kmsimport.KeySpec, alg kmsimport.Algorithm, now time.Time) (facts [][2]string, problems []string) {
	p, err := kmsimport.ParseParametersJSON(data)
	if err != nil {
		return nil, []string{err.Error()}
	}
	// The connected side's bundle also names the spec and algorithm it asked for.
	var bundle struct {
		KeySpec           kmsimport.KeySpec   `json:"KeySpec"`
		WrappingAlgorithm kmsimport.Algorithm `json:"WrappingAlgorithm"`
	}
	_ = json.Unmarshal(data, &bundle)
	if bundle.KeySpec != "" && bundle.KeySpec != spec {
		problems = append(problems, fmt.Sprintf("the parameters were requested for key spec %s, not %s", bundle.KeySpec, spec))
	}
	if bundle.WrappingAlgorithm != "" && bundle.WrappingAlgorithm != alg {
		problems = append(problems, fmt.Sprintf("the parameters were requested for %s, not %s: the wrapping algorithm must match", bundle.WrappingAlgorithm, alg))
	}
	left := p.ParametersValidTo.Sub(now).Round(time.Minute)
	facts = [][2]string{
		{"KMS key", p.KeyID},
		{"Wrapping key", fmt.Sprintf("%s (%d-bit RSA)", p.WrappingKeySpec(), p.PublicKey.N.BitLen())},
		{"Valid until", fmt.Sprintf("%s (%s left)", p.ParametersValidTo.UTC().Format(time.RFC3339), left)},
		{"Import token", fmt.Sprintf("%d bytes", len(p.ImportToken))},
	}
	if err := p.CheckFresh(now, time.Hour); err != nil {
		problems = append(problems, err.Error())
	}
	if err := kmsimport.Check(spec, alg, p.WrappingKeySpec()); err != nil {
		problems = append(problems, err.Error())
	}
	return facts, problems
}

// byokFlow is the BYOK page's state: the parameters file checked, and the
// spec and algorithm it is for.
type byokFlow struct {
	w      *MainWindow
	spec   *widget.Select
	alg    *widget.Select
	path   *widget.Entry
	result *fyne.Container
	create *widget.Button
	params string // the file last checked and found usable
}

// byokPage drives the whole import without an editor: what to run on the
// connected machine, the parameters file checked, the byok-wrap script
// created from it in the form (reviewed with the engine's own checks), the
// ceremony, and the import instructions.
func (w *MainWindow) byokPage() fyne.CanvasObject {
	b := &byokFlow{w: w, result: container.NewVBox()}
	b.spec = widget.NewSelect(byokSpecNames(), nil)
	b.spec.SetSelected(string(kmsimport.SymmetricDefault))
	b.alg = widget.NewSelect(byokAlgorithmNames(), nil)
	b.alg.SetSelected(string(kmsimport.RSAAESKeyWrapSHA256))

	// Step 1: the connected machine.
	// The commands can be selected and copied; Tab passes over them.
	prepare := &scriptEntry{}
	prepare.MultiLine = true
	prepare.ExtendBaseWidget(prepare)
	prepare.SetText(connectedPrepare)
	prepare.TextStyle = fyne.TextStyle{Monospace: true}
	prepare.Wrapping = fyne.TextWrapOff
	prepare.SetMinRowsVisible(7)
	step1 := container.NewVBox(boldLabel("1. On the connected machine"), wrapLabel("Create the KMS key with origin EXTERNAL and fetch its import parameters. Key Ceremony's online commands do the same: keyceremony aws byok prepare."), prepare)

	// Step 2: check the file brought to the laptop.
	b.path = widget.NewEntry()
	b.path.SetPlaceHolder("path of import-parameters.json (Enter checks it)")
	b.path.OnSubmitted = func(string) { b.fillFromFile(); b.check() }
	pick := widget.NewButtonWithIcon("Browse…", theme.FolderOpenIcon(), func() {
		dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
			if err != nil || r == nil {
				return
			}
			b.path.SetText(r.URI().Path())
			r.Close()
			b.fillFromFile()
			b.check()
		}, w.Window).Show()
	})
	checkBtn := widget.NewButton("Check", func() { b.fillFromFile(); b.check() })
	step2 := container.NewVBox(boldLabel("2. Check the parameters you brought"),
		wrapLabel("The key spec and wrapping algorithm are taken from the file when the connected side's prepare step wrote them; otherwise choose the ones the parameters were requested for."),
		container.NewBorder(nil, nil, nil, container.NewHBox(pick, checkBtn), b.path),
		widget.NewForm(widget.NewFormItem("KMS key spec", b.spec), widget.NewFormItem("Wrapping algorithm", b.alg)),
		b.result)

	// Step 3: the script, made in the form and reviewed.
	b.create = widget.NewButtonWithIcon("Create the byok-wrap script from these parameters…", theme.DocumentCreateIcon(), b.createScript)
	b.create.Importance = widget.HighImportance
	b.create.Disable()
	b.spec.OnChanged = func(string) { b.check() }
	b.alg.OnChanged = func(string) { b.check() }
	step3 := container.NewVBox(boldLabel("3. Create the byok-wrap script and have it reviewed"),
		wrapLabel("The form starts with the parameters file (its SHA-256 pinned), the key spec and the algorithm. Add the token, the people, the quorum record, the key material and what happens to the token's copy, then save: the review shows the script's SHA-256 and the engine's plan."),
		wrapLabel("Rehearsal: a byok-wrap ceremony works on the token and quorum of the root ceremony, which a throwaway token lacks, so it cannot be rehearsed. The review runs every check that needs no token (the parameters against the spec and algorithm, their deadline, every input's hash) and lists each step, including which may run in host memory. Rehearse the root-generation ceremony to practise the quorum."),
		container.NewHBox(b.create))

	// Step 4: the ceremony.
	run := widget.NewButtonWithIcon("Open the reviewed byok-wrap script…", theme.DocumentIcon(), func() {
		dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
			if err != nil || r == nil {
				return
			}
			path := r.URI().Path()
			r.Close()
			w.Select("ceremonies")
			w.ceremonies.OpenScript(path)
		}, w.Window).Show()
	})
	step4 := container.NewVBox(boldLabel("4. Run the ceremony"),
		wrapLabel("Open the reviewed file and run it. Before anyone confirms, the ceremony shows which steps run inside the token and which in this laptop's memory. Its last screen shows the import instructions."),
		container.NewHBox(run))

	// Step 5: carry the outputs back.
	instr := wrapLabel("")
	instr.TextStyle = fyne.TextStyle{Monospace: true}
	pickOut := widget.NewButtonWithIcon("Show the import instructions of a ceremony output…", theme.FolderOpenIcon(), func() {
		dialog.NewFolderOpen(func(u fyne.ListableURI, err error) {
			if err != nil || u == nil {
				return
			}
			instr.SetText(importInstructions(u.Path()))
		}, w.Window).Show()
	})
	step5 := container.NewVBox(boldLabel("5. On the connected machine again"),
		wrapLabel("Carry the output directory (EncryptedKeyMaterial.bin, ImportToken.bin, import-manifest.json, IMPORT-INSTRUCTIONS.txt) back, check the hashes against the transcript, and run the import command before the parameters expire — or keyceremony aws byok import DIR, which checks the manifest first."),
		container.NewHBox(pickOut), instr)

	body := container.NewVBox(heading("BYOK: import key material into AWS KMS"), step1, widget.NewSeparator(), step2, widget.NewSeparator(),
		step3, widget.NewSeparator(), step4, widget.NewSeparator(), step5)
	page := &byokPage{win: w.Window, first: b.path, content: container.NewVScroll(body)}
	page.ExtendBaseWidget(page)
	return page
}

// byokPage is the BYOK page: the keyboard starts at the parameters file.
type byokPage struct {
	widget.BaseWidget
	win     fyne.Window
	first   fyne.Focusable
	content fyne.CanvasObject
}

func (p *byokPage) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(p.content) }
func (p *byokPage) focusInitial()                       { p.win.Canvas().Focus(p.first) }

// fillFromFile takes the spec and algorithm from a prepare step's bundle.
func (b *byokFlow) fillFromFile() {
	data, err := os.ReadFile(strings.TrimSpace(b.path.Text))
	if err != nil {
		return
	}
	s := &script.Script{}
	fillFromParameters(s, data)
	if got := byokOf(s); got.KeySpec != "" {
		b.spec.SetSelected(got.KeySpec)
	}
	if got := byokOf(s); got.WrappingAlgorithm != "" {
		b.alg.SetSelected(got.WrappingAlgorithm)
	}
}

// check shows what the parameters file holds and what stops it.
func (b *byokFlow) check() {
	path := strings.TrimSpace(b.path.Text)
	b.params = ""
	b.create.Disable()
	if path == "" {
		b.result.Objects = nil
		b.result.Refresh()
		return
	}
	data, err := os.ReadFile(path)
	var facts [][2]string
	var problems []string
	if err != nil {
		problems = []string{err.Error()}
	} else {
		facts, problems = checkParameters(data, kmsimport.KeySpec(b.spec.Selected), kmsimport.Algorithm(b.alg.Selected), time.Now())
	}
	form := widget.NewForm(widget.NewFormItem("File", wrapLabel(path)))
	for _, f := range facts {
		form.Append(f[0], wrapLabel(f[1]))
	}
	objs := []fyne.CanvasObject{form}
	if len(problems) == 0 {
		setTitle(b.w.Window, "BYOK import — the parameters are usable")
	} else {
		setTitle(b.w.Window, "BYOK import — the parameters cannot be used")
	}
	if len(problems) == 0 {
		ok := wrapLabel("The parameters are usable for this key spec and algorithm: create the script from them (step 3).")
		ok.Importance = widget.SuccessImportance
		objs = append(objs, ok)
		b.params = path
		b.create.Enable()
	}
	for _, p := range problems {
		objs = append(objs, warningLabel(p))
	}
	b.result.Objects = objs
	b.result.Refresh()
}

// createScript opens the byok-wrap form with the checked parameters.
func (b *byokFlow) createScript() {
	if b.params == "" {
		return
	}
	abs, err := filepath.Abs(b.params)
	if err != nil {
		dialog.ShowError(err, b.w.Window)
		return
	}
	sum, err := fileSHA256(abs)
	if err != nil {
		dialog.ShowError(err, b.w.Window)
		return
	}
	s := defaultScript(script.BYOKWrap, b.w.settings().Module())
	s.BYOK.Parameters = &script.Input{Path: abs, SHA256: sum}
	s.BYOK.KeySpec, s.BYOK.WrappingAlgorithm = b.spec.Selected, b.alg.Selected
	b.w.Select("ceremonies")
	b.w.ceremonies.NewScriptFrom(s)
}

// importInstructions reads a byok-wrap output directory's instructions and
// checks its manifest's hashes, so the operator knows the files are intact.
func importInstructions(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, kmsimport.ManifestFile))
	if err != nil {
		return "No import manifest here: " + err.Error()
	}
	var m kmsimport.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return "The import manifest is damaged: " + err.Error()
	}
	var lines []string
	for name, want := range m.Files {
		data, err := os.ReadFile(filepath.Join(dir, name))
		switch {
		case err != nil:
			lines = append(lines, fmt.Sprintf("MISSING %s: %v", name, err))
		case sha256Hex(data) != want:
			lines = append(lines, fmt.Sprintf("CHANGED %s: its SHA-256 differs from the manifest; do not import it", name))
		default:
			lines = append(lines, fmt.Sprintf("ok %s %s", name, want))
		}
	}
	left := time.Until(m.ParametersValidTo).Round(time.Minute)
	lines = append(lines, fmt.Sprintf("Parameters expire %s (%s from now)", m.ParametersValidTo.UTC().Format(time.RFC3339), left), "", kmsimport.Instructions(m))
	if len(m.WrapSteps) > 0 {
		var host []string
		for _, s := range m.WrapSteps {
			if !s.InToken {
				host = append(host, s.Action)
			}
		}
		if len(host) > 0 {
			lines = append(lines, "Steps that ran in host memory: "+strings.Join(host, "; "))
		}
	}
	return strings.Join(lines, "\n")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
