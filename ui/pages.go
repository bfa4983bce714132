package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
)

func (w *MainWindow) homePage() fyne.CanvasObject {
	module := orDefault(w.settings().Module(), "built-in SoftHSM2")
	intro := widget.NewLabel("Key Ceremony runs quorum-controlled key ceremonies against a PKCS#11 token and audits AWS KMS key usage from CloudTrail logs. Everything here also runs headless: keyceremony help.")
	intro.Wrapping = fyne.TextWrapWord
	form := widget.NewForm(
		widget.NewFormItem("Version", widget.NewLabel(w.opts.Version)),
		widget.NewFormItem("Token module", widget.NewLabel(module)),
	)
	shortcuts := container.NewHBox(
		widget.NewButton("Tokens", func() { w.Select("tokens") }),
		widget.NewButton("Ceremonies", func() { w.Select("ceremonies") }),
		widget.NewButton("Audit", func() { w.Select("audit") }),
	)
	return container.NewVBox(heading("Key Ceremony"), intro, form, shortcuts)
}

func (w *MainWindow) auditPage() fyne.CanvasObject {
	intro := widget.NewLabel("Load CloudTrail KMS logs with: keyceremony audit ingest PATH... The event browser opens here once a database is loaded.")
	intro.Wrapping = fyne.TextWrapWord
	return container.NewVBox(heading("Audit"), intro)
}
