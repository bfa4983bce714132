package ui

import (
	"fmt"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/keyceremony/keyceremony/audit/store"
)

// barChart draws counts as bars (Fyne has no chart widget): vertical bars
// over time with the first and last label and the maximum on the axis, or
// horizontal bars with every label for a mix of operations.
type barChart struct {
	widget.BaseWidget
	title      string
	data       []store.Count
	horizontal bool
}

func newBarChart(title string, data []store.Count, horizontal bool) *barChart {
	c := &barChart{title: title, data: data, horizontal: horizontal}
	c.ExtendBaseWidget(c)
	return c
}

func (c *barChart) MinSize() fyne.Size {
	if c.horizontal {
		return fyne.NewSize(300, float32(24+22*len(c.data)))
	}
	return fyne.NewSize(300, 180)
}

func (c *barChart) CreateRenderer() fyne.WidgetRenderer {
	r := &barRenderer{c: c}
	r.rebuild()
	return r
}

type barRenderer struct {
	c       *barChart
	objects []fyne.CanvasObject
	bars    []*canvas.Rectangle
	labels  []*canvas.Text
	title   *canvas.Text
	axis    []*canvas.Text
	line    *canvas.Line
}

func (r *barRenderer) rebuild() {
	fg := theme.Color(theme.ColorNameForeground)
	r.title = canvas.NewText(r.c.title, fg)
	r.title.TextStyle = fyne.TextStyle{Bold: true}
	r.line = canvas.NewLine(fg)
	r.objects = []fyne.CanvasObject{r.title, r.line}
	r.bars, r.labels, r.axis = nil, nil, nil
	barColour := theme.Color(theme.ColorNamePrimary)
	for _, d := range r.c.data {
		b := canvas.NewRectangle(barColour)
		r.bars = append(r.bars, b)
		r.objects = append(r.objects, b)
		if r.c.horizontal {
			t := canvas.NewText(fmt.Sprintf("%s  %d", d.Label, d.N), fg)
			t.TextSize = theme.TextSize() * 0.85
			r.labels = append(r.labels, t)
			r.objects = append(r.objects, t)
		}
	}
	if !r.c.horizontal && len(r.c.data) > 0 {
		max := maxCount(r.c.data)
		for _, s := range []string{r.c.data[0].Label, r.c.data[len(r.c.data)-1].Label, fmt.Sprintf("max %d/day", max)} {
			t := canvas.NewText(s, fg)
			t.TextSize = theme.TextSize() * 0.85
			r.axis = append(r.axis, t)
			r.objects = append(r.objects, t)
		}
	}
}

func maxCount(data []store.Count) int64 {
	var m int64 = 1
	for _, d := range data {
		if d.N > m {
			m = d.N
		}
	}
	return m
}

func (r *barRenderer) Layout(size fyne.Size) {
	r.title.Move(fyne.NewPos(0, 0))
	top := float32(24)
	max := float32(maxCount(r.c.data))
	if r.c.horizontal {
		labelW := float32(260)
		width := size.Width - labelW - 8
		for i, b := range r.bars {
			y := top + float32(i)*22
			w := width * float32(r.c.data[i].N) / max
			b.Resize(fyne.NewSize(w, 16))
			b.Move(fyne.NewPos(labelW, y))
			r.labels[i].Move(fyne.NewPos(0, y))
		}
		r.line.Position1 = fyne.NewPos(labelW, top)
		r.line.Position2 = fyne.NewPos(labelW, top+22*float32(len(r.bars)))
		return
	}
	plotH := size.Height - top - 22
	if len(r.bars) == 0 || plotH <= 0 {
		return
	}
	step := size.Width / float32(len(r.bars))
	for i, b := range r.bars {
		h := plotH * float32(r.c.data[i].N) / max
		b.Resize(fyne.NewSize(step*0.8, h))
		b.Move(fyne.NewPos(float32(i)*step, top+plotH-h))
	}
	r.line.Position1 = fyne.NewPos(0, top+plotH)
	r.line.Position2 = fyne.NewPos(size.Width, top+plotH)
	if len(r.axis) == 3 {
		r.axis[0].Move(fyne.NewPos(0, top+plotH+2))
		r.axis[1].Move(fyne.NewPos(size.Width-r.axis[1].MinSize().Width, top+plotH+2))
		r.axis[2].Move(fyne.NewPos(size.Width-r.axis[2].MinSize().Width, 0))
	}
}

func (r *barRenderer) MinSize() fyne.Size           { return r.c.MinSize() }
func (r *barRenderer) Refresh()                     { r.rebuild(); r.Layout(r.c.Size()); canvas.Refresh(r.c) }
func (r *barRenderer) Objects() []fyne.CanvasObject { return r.objects }
func (r *barRenderer) Destroy()                     {}

// groupDigits writes a count with thousands separators (10,020,000): an
// auditor reads a ten-million-event total at a glance, not by counting
// digits.
func groupDigits(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
