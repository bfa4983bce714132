package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
)

func (w *MainWindow) auditPage() fyne.CanvasObject {
	intro := widget.NewLabel("Load CloudTrail KMS logs with: keyceremony audit ingest PATH... The event browser opens here once a database is loaded.")
	intro.Wrapping = fyne.TextWrapWord
	return container.NewVBox(heading("Audit"), intro)
}
