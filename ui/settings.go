package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/hsm"
)

// Preference keys. Preferences never hold a secret: only paths and choices.
const prefModule = "token.module"

// Settings are the user's persistent choices.
type Settings struct {
	prefs    fyne.Preferences
	override string // --module for this session
}

func (w *MainWindow) settings() *Settings {
	return &Settings{prefs: w.app.Preferences(), override: w.opts.Module}
}

// Module is the PKCS#11 module to use: --module, else the saved setting, else
// "" meaning the built-in SoftHSM2.
func (s *Settings) Module() string {
	if s.override != "" {
		return s.override
	}
	return s.prefs.String(prefModule)
}

// SetModule saves the module path ("" for the built-in SoftHSM2).
func (s *Settings) SetModule(path string) { s.prefs.SetString(prefModule, path) }

func (w *MainWindow) settingsPage() fyne.CanvasObject {
	s := w.settings()
	entry := widget.NewEntry()
	entry.SetPlaceHolder("built-in SoftHSM2")
	entry.SetText(s.prefs.String(prefModule))
	var found []string
	for _, c := range hsm.DiscoverModules() {
		found = append(found, c.Path)
	}
	pick := widget.NewSelect(found, func(p string) { entry.SetText(p) })
	pick.PlaceHolder = "Modules found on this machine"
	saved := widget.NewLabel("")
	save := widget.NewButton("Save", func() {
		s.SetModule(entry.Text)
		saved.SetText("Saved.")
	})
	save.Importance = widget.HighImportance
	form := widget.NewForm(
		widget.NewFormItem("Token module", container.NewBorder(nil, nil, nil, pick, entry)),
	)
	return container.NewVBox(heading("Settings"), form, container.NewHBox(save, saved))
}
