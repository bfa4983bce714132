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

func (w *MainWindow) byokPage() fyne.CanvasObject {
	specs := []string{}
	for _, c := range kmsimport.Allowed() {
		if !contains(specs, string(c.Spec)) {
			specs = append(specs, string(c.Spec))
		}
	}
	algs := []string{}
	for _, a := range kmsimport.Algorithms() {
		algs = append(algs, string(a))
	}
	spec := widget.NewSelect(specs, nil)
	spec.SetSelected(string(kmsimport.SymmetricDefault))
	alg := widget.NewSelect(algs, nil)
	alg.SetSelected(string(kmsimport.RSAAESKeyWrapSHA256))

	// Step 1: the connected machine.
	prepare := widget.NewMultiLineEntry()
	prepare.SetText(connectedPrepare)
	prepare.TextStyle = fyne.TextStyle{Monospace: true}
	prepare.Wrapping = fyne.TextWrapOff
	prepare.SetMinRowsVisible(7)
	step1 := container.NewVBox(boldLabel("1. On the connected machine"), wrapLabel("Create the KMS key with origin EXTERNAL and fetch its import parameters. Key Ceremony's online commands do the same: keyceremony aws byok prepare."), prepare)

	// Step 2: check the files brought to the laptop.
	result := container.NewVBox()
	var paramsPath string
	check := func() {
		if paramsPath == "" {
			return
		}
		data, err := os.ReadFile(paramsPath)
		var facts [][2]string
		var problems []string
		if err != nil {
			problems = []string{err.Error()}
		} else {
			facts, problems = checkParameters(data, kmsimport.KeySpec(spec.Selected), kmsimport.Algorithm(alg.Selected), time.Now())
		}
		form := widget.NewForm(widget.NewFormItem("File", wrapLabel(paramsPath)))
		for _, f := range facts {
			form.Append(f[0], wrapLabel(f[1]))
		}
		objs := []fyne.CanvasObject{form}
		if len(problems) == 0 {
			ok := wrapLabel("The parameters are usable for this key spec and algorithm. Put the file where the byok-wrap script's byok.parameters points, then run the ceremony.")
			ok.Importance = widget.SuccessImportance
			objs = append(objs, ok)
		}
		for _, p := range problems {
			objs = append(objs, warningLabel(p))
		}
		result.Objects = objs
		result.Refresh()
	}
	spec.OnChanged = func(string) { check() }
	alg.OnChanged = func(string) { check() }
	pick := widget.NewButtonWithIcon("Check import-parameters.json…", theme.FolderOpenIcon(), func() {
		dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
			if err != nil || r == nil {
				return
			}
			paramsPath = r.URI().Path()
			r.Close()
			check()
		}, w.Window).Show()
	})
	step2 := container.NewVBox(boldLabel("2. Check the files you brought"),
		widget.NewForm(widget.NewFormItem("KMS key spec", spec), widget.NewFormItem("Wrapping algorithm", alg)),
		container.NewHBox(pick), result)

	// Step 3: the ceremony.
	run := widget.NewButtonWithIcon("Open the byok-wrap script…", theme.DocumentIcon(), func() {
		w.Select("ceremonies")
		dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
			if err != nil || r == nil {
				return
			}
			path := r.URI().Path()
			r.Close()
			w.ceremonies.OpenScript(path)
		}, w.Window).Show()
	})
	step3 := container.NewVBox(boldLabel("3. Run the byok-wrap ceremony"),
		wrapLabel("Save the byok-wrap template (Ceremonies page), fill in the key spec, algorithm, the parameters file and what happens to the token's copy, have it reviewed, rehearse nothing (a throwaway token lacks your quorum), and run it. Before anyone confirms, the ceremony shows which steps run inside the token and which in this laptop's memory."),
		container.NewHBox(run))

	// Step 4: carry the outputs back.
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
	step4 := container.NewVBox(boldLabel("4. On the connected machine again"),
		wrapLabel("Carry the output directory (EncryptedKeyMaterial.bin, ImportToken.bin, import-manifest.json, IMPORT-INSTRUCTIONS.txt) back, check the hashes against the transcript, and run the import command before the parameters expire — or keyceremony aws byok import DIR, which checks the manifest first."),
		container.NewHBox(pickOut), instr)

	body := container.NewVBox(heading("BYOK: import key material into AWS KMS"), step1, widget.NewSeparator(), step2, widget.NewSeparator(), step3, widget.NewSeparator(), step4)
	return container.NewVScroll(body)
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
