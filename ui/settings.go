package ui

import (
	"image/color"
	"strconv"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/audit/store"
	"github.com/keyceremony/keyceremony/hsm"
)

// Preference keys. Preferences never hold a secret: only paths and choices.
const (
	prefModule        = "token.module"
	prefOutputDir     = "ceremony.outputDir"
	prefRecent        = "ceremony.recentTranscripts"
	prefAuditDB       = "audit.database"
	prefBusinessStart = "audit.businessHoursStart"
	prefBusinessEnd   = "audit.businessHoursEnd"
	prefRotationDays  = "audit.rotationPolicyDays"
	prefTheme         = "ui.theme"
	prefOnline        = "online.enabled"
)

const onlineCheckText = "Enable online actions (this machine is connected)"

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

// OutputDir is the default output directory for ceremonies ("" for the script's).
func (s *Settings) OutputDir() string { return s.prefs.String(prefOutputDir) }

// AuditDB is the audit database path.
func (s *Settings) AuditDB() string {
	if p := s.prefs.String(prefAuditDB); p != "" {
		return p
	}
	p, _ := store.DefaultPath()
	return p
}

// BusinessHours are the usage report's business hours (UTC), start and end hour.
func (s *Settings) BusinessHours() (int, int) {
	return s.prefs.IntWithFallback(prefBusinessStart, 8), s.prefs.IntWithFallback(prefBusinessEnd, 18)
}

// RotationPolicyDays is the rotation report's policy.
func (s *Settings) RotationPolicyDays() int { return s.prefs.IntWithFallback(prefRotationDays, 365) }

// Theme is "dark", "light" or "" for the system's choice.
func (s *Settings) Theme() string { return s.prefs.String(prefTheme) }

// OnlineEnabled says whether the Online actions page is shown: only on a
// connected workstation whose user turned it on (default off, so an
// air-gapped laptop never offers a button that would reach for AWS).
func (s *Settings) OnlineEnabled() bool { return s.prefs.BoolWithFallback(prefOnline, false) }

// SetOnlineEnabled shows or hides the Online actions page.
func (s *Settings) SetOnlineEnabled(on bool) { s.prefs.SetBool(prefOnline, on) }

// RecentTranscripts are ceremonies run or opened here, newest first.
func (s *Settings) RecentTranscripts() []string { return s.prefs.StringList(prefRecent) }

// AddRecentTranscript remembers a transcript path (at most 10).
func (s *Settings) AddRecentTranscript(path string) {
	list := []string{path}
	for _, p := range s.RecentTranscripts() {
		if p != path && len(list) < 10 {
			list = append(list, p)
		}
	}
	s.prefs.SetStringList(prefRecent, list)
}

// variantTheme forces the light or dark variant of the default theme.
type variantTheme struct {
	fyne.Theme
	variant fyne.ThemeVariant
}

func (t variantTheme) Color(n fyne.ThemeColorName, _ fyne.ThemeVariant) color.Color {
	return t.Theme.Color(n, t.variant)
}

// applyTheme sets the app's theme from the settings.
func applyTheme(a fyne.App, choice string) {
	switch choice {
	case "light":
		a.Settings().SetTheme(variantTheme{theme.DefaultTheme(), theme.VariantLight})
	case "dark":
		a.Settings().SetTheme(variantTheme{theme.DefaultTheme(), theme.VariantDark})
	default:
		a.Settings().SetTheme(theme.DefaultTheme())
	}
}

func (w *MainWindow) settingsPage() fyne.CanvasObject {
	s := w.settings()
	module := widget.NewEntry()
	module.SetPlaceHolder("built-in SoftHSM2")
	module.SetText(s.prefs.String(prefModule))
	var found []string
	for _, c := range hsm.DiscoverModules() {
		found = append(found, c.Path)
	}
	pick := widget.NewSelect(found, func(p string) { module.SetText(p) })
	pick.PlaceHolder = "Modules found on this machine"
	outDir := widget.NewEntry()
	outDir.SetPlaceHolder("the script's output directory")
	outDir.SetText(s.OutputDir())
	db := widget.NewEntry()
	db.SetText(s.AuditDB())
	bs, be := s.BusinessHours()
	start, end := widget.NewEntry(), widget.NewEntry()
	start.SetText(strconv.Itoa(bs))
	end.SetText(strconv.Itoa(be))
	rot := widget.NewEntry()
	rot.SetText(strconv.Itoa(s.RotationPolicyDays()))
	themeSel := widget.NewRadioGroup([]string{"system", "light", "dark"}, nil)
	themeSel.Horizontal = true
	themeSel.SetSelected(orDefault(s.Theme(), "system"))
	online := widget.NewCheck(onlineCheckText, nil)
	online.SetChecked(s.OnlineEnabled())
	status := widget.NewLabel("")
	save := widget.NewButton("Save", func() {
		hourStart, err1 := strconv.Atoi(start.Text)
		hourEnd, err2 := strconv.Atoi(end.Text)
		days, err3 := strconv.Atoi(rot.Text)
		switch {
		case err1 != nil || err2 != nil || hourStart < 0 || hourEnd > 24 || hourStart >= hourEnd:
			status.SetText("Business hours: give two hours 0–24, start before end.")
			status.Importance = widget.DangerImportance
		case err3 != nil || days < 1 || days > 2560:
			status.SetText("Rotation policy: a number of days from 1 to 2560 (KMS allows 90–2560).")
			status.Importance = widget.DangerImportance
		default:
			s.SetModule(module.Text)
			s.prefs.SetString(prefOutputDir, outDir.Text)
			s.prefs.SetString(prefAuditDB, db.Text)
			s.prefs.SetInt(prefBusinessStart, hourStart)
			s.prefs.SetInt(prefBusinessEnd, hourEnd)
			s.prefs.SetInt(prefRotationDays, days)
			t := themeSel.Selected
			if t == "system" {
				t = ""
			}
			s.prefs.SetString(prefTheme, t)
			applyTheme(w.app, t)
			if online.Checked != s.OnlineEnabled() {
				s.SetOnlineEnabled(online.Checked)
				w.refreshPages()
			}
			status.SetText("Saved.")
			status.Importance = widget.SuccessImportance
		}
		status.Refresh()
	})
	save.Importance = widget.HighImportance
	form := widget.NewForm(
		widget.NewFormItem("Token module", container.NewBorder(nil, nil, nil, pick, module)),
		widget.NewFormItem("Default output directory", outDir),
		widget.NewFormItem("Audit database", db),
		widget.NewFormItem("Business hours (UTC)", container.NewGridWithColumns(2, start, end)),
		widget.NewFormItem("Rotation policy (days)", rot),
		widget.NewFormItem("Theme", themeSel),
		widget.NewFormItem("Online actions", online),
	)
	note := wrapLabel("Settings hold paths and choices only; no PIN, share, passphrase or AWS credential is ever stored. Leave online actions off on the air-gapped laptop: with them on, the Online actions page offers buttons that contact AWS (each only when pressed and confirmed).")
	return container.NewVBox(heading("Settings"), form, container.NewHBox(save, status), note)
}
