package ui

import (
	"fmt"
	"strings"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/hsm"
	"github.com/keyceremony/keyceremony/hsm/softhsm"
)

// tokenState is what one look at the module found.
type tokenState struct {
	module string
	info   hsm.ModuleInfo
	slots  []hsm.Slot
	mechs  map[uint][]hsm.MechanismInfo
	err    error
}

// loadTokens reads the module's slots and mechanisms. It runs off the UI goroutine.
func loadTokens(module string) tokenState {
	st := tokenState{mechs: map[uint][]hsm.MechanismInfo{}}
	path, err := softhsm.Resolve(module)
	if err != nil {
		st.err = err
		return st
	}
	st.module = path
	m, err := hsm.Open(path)
	if err != nil {
		st.err = err
		return st
	}
	defer m.Close()
	if st.info, err = m.Info(); err != nil {
		st.err = err
		return st
	}
	if st.slots, err = m.Slots(); err != nil {
		st.err = err
		return st
	}
	for _, s := range st.slots {
		if s.Token != nil {
			if ms, err := m.Mechanisms(s.ID); err == nil {
				st.mechs[s.ID] = ms
			}
		}
	}
	return st
}

// TokensPage lists the module's slots and tokens with their flags and mechanisms.
type TokensPage struct {
	widget.BaseWidget
	win      fyne.Window
	settings *Settings

	mu    sync.Mutex // guards state for readers outside the UI goroutine (tests)
	state tokenState

	moduleLabel *widget.Label
	status      *widget.Label
	slotList    *widget.List
	details     *fyne.Container
	selected    int
	content     fyne.CanvasObject

	// OnLoaded, if set, runs on the UI goroutine after each load (tests wait on it).
	OnLoaded func()
}

// NewTokensPage builds the page and starts loading.
func NewTokensPage(win fyne.Window, s *Settings) *TokensPage {
	p := &TokensPage{win: win, settings: s, selected: -1}
	p.moduleLabel = widget.NewLabel("")
	p.moduleLabel.Truncation = fyne.TextTruncateEllipsis
	p.status = widget.NewLabel("Reading tokens…")
	p.slotList = widget.NewList(
		func() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.state.slots) },
		func() fyne.CanvasObject {
			return container.NewHBox(widget.NewIcon(theme.StorageIcon()), widget.NewLabel("slot 0000000000 — token label (serial)"))
		},
		func(id widget.ListItemID, o fyne.CanvasObject) {
			p.mu.Lock()
			s := p.state.slots[id]
			p.mu.Unlock()
			o.(*fyne.Container).Objects[1].(*widget.Label).SetText(slotTitle(s))
		},
	)
	p.slotList.OnSelected = func(id widget.ListItemID) { p.selected = id; p.showDetails() }
	p.details = container.NewStack(widget.NewLabel("Select a slot to see its token."))
	refresh := widget.NewButtonWithIcon("Refresh", theme.ViewRefreshIcon(), p.Reload)
	top := container.NewBorder(nil, nil, nil, container.NewVBox(refresh), container.NewVBox(heading("Tokens"), p.moduleLabel, p.status))
	split := container.NewHSplit(p.slotList, p.details)
	split.Offset = 0.42
	p.ExtendBaseWidget(p)
	p.content = container.NewBorder(top, nil, nil, nil, split)
	p.Reload()
	return p
}

func (p *TokensPage) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(p.content)
}

// Reload reads the module again in the background.
func (p *TokensPage) Reload() {
	module := p.settings.Module()
	p.status.SetText("Reading tokens…")
	go func() {
		st := loadTokens(module)
		fyne.Do(func() { p.apply(st) })
	}()
}

func (p *TokensPage) apply(st tokenState) {
	p.mu.Lock()
	p.state = st
	p.mu.Unlock()
	if st.err != nil {
		p.moduleLabel.SetText("Module: " + orDefault(p.settings.Module(), "built-in SoftHSM2"))
		p.status.SetText("Cannot read tokens: " + st.err.Error())
		p.status.Importance = widget.DangerImportance
		p.status.Refresh()
	} else {
		p.moduleLabel.SetText(fmt.Sprintf("Module: %s — %s %s", st.module, st.info.Manufacturer, st.info.LibraryVersion))
		present := 0
		for _, s := range st.slots {
			if s.Token != nil && s.Token.Initialized {
				present++
			}
		}
		p.status.SetText(fmt.Sprintf("%d slots, %d initialised tokens", len(st.slots), present))
		p.status.Importance = widget.MediumImportance
		p.status.Refresh()
	}
	p.slotList.Refresh()
	if p.selected < 0 || p.selected >= len(st.slots) {
		p.selected = -1
		for i, s := range st.slots {
			if s.Token != nil && s.Token.Initialized {
				p.selected = i
				break
			}
		}
	}
	if p.selected >= 0 {
		p.slotList.Select(p.selected)
	}
	p.showDetails()
	if p.OnLoaded != nil {
		p.OnLoaded()
	}
}

// Slots returns what the last load found.
func (p *TokensPage) Slots() []hsm.Slot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]hsm.Slot(nil), p.state.slots...)
}

// Err is the last load's error.
func (p *TokensPage) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state.err
}

func slotTitle(s hsm.Slot) string {
	switch {
	case s.Token == nil:
		return fmt.Sprintf("Slot %d — no token", s.ID)
	case !s.Token.Initialized:
		return fmt.Sprintf("Slot %d — blank token", s.ID)
	}
	return fmt.Sprintf("Slot %d — %s (%s)", s.ID, s.Token.Label, s.Token.Serial)
}

func (p *TokensPage) showDetails() {
	p.mu.Lock()
	st := p.state
	p.mu.Unlock()
	if p.selected < 0 || p.selected >= len(st.slots) {
		p.details.Objects = []fyne.CanvasObject{widget.NewLabel("No token selected.")}
		p.details.Refresh()
		return
	}
	s := st.slots[p.selected]
	form := widget.NewForm(
		widget.NewFormItem("Slot", widget.NewLabel(fmt.Sprintf("%d — %s", s.ID, s.Description))),
	)
	if s.Token == nil {
		p.details.Objects = []fyne.CanvasObject{form}
		p.details.Refresh()
		return
	}
	ti := s.Token
	uri := hsm.URI{Token: ti.Label, Serial: ti.Serial}
	for _, it := range []struct{ k, v string }{
		{"Label", ti.Label}, {"Serial", ti.Serial}, {"Manufacturer", ti.Manufacturer}, {"Model", ti.Model},
		{"PIN length", fmt.Sprintf("%d–%d", ti.MinPINLen, ti.MaxPINLen)},
		{"Flags", strings.Join(ti.Flags(), ", ")},
		{"URI", uri.String()},
	} {
		l := widget.NewLabel(it.v)
		l.Wrapping = fyne.TextWrapWord
		l.Selectable = true
		form.Append(it.k, l)
	}
	if ti.UserPINLocked || ti.SOPINLocked || ti.UserPINFinalTry {
		warn := widget.NewLabel("Warning: a PIN is locked or on its final try. Do not try PINs; follow the token's recovery procedure.")
		warn.Importance = widget.DangerImportance
		warn.Wrapping = fyne.TextWrapWord
		form.Append("", warn)
	}
	mechs := st.mechs[s.ID]
	mlist := widget.NewList(
		func() int { return len(mechs) },
		func() fyne.CanvasObject { return widget.NewLabel("CKM_RSA_PKCS_KEY_PAIR_GEN 1024–4096 sign, verify") },
		func(id widget.ListItemID, o fyne.CanvasObject) {
			m := mechs[id]
			size := ""
			if m.MaxKeySize > 0 {
				size = fmt.Sprintf(" %d–%d", m.MinKeySize, m.MaxKeySize)
			}
			o.(*widget.Label).SetText(fmt.Sprintf("%s%s  [%s]", m.Name, size, strings.Join(m.Flags, ", ")))
		},
	)
	mechTitle := widget.NewLabel(fmt.Sprintf("Mechanisms (%d)", len(mechs)))
	mechTitle.TextStyle = fyne.TextStyle{Bold: true}
	note := widget.NewLabel("A blank token is initialised only through a root-generation ceremony, so its PINs are split among the custodians from the start.")
	note.Wrapping = fyne.TextWrapWord
	top := container.NewVBox(form, note, mechTitle)
	p.details.Objects = []fyne.CanvasObject{container.NewBorder(top, nil, nil, nil, mlist)}
	p.details.Refresh()
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
