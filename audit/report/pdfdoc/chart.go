package pdfdoc

import (
	"math"
	"strconv"
)

// Chart is a bar chart of one series over labelled buckets (days), with an
// optional second series drawn over it (failures), axes, ticks and labels.
type Chart struct {
	Title  string
	Labels []string // one per bar, e.g. "03-01"
	Values []int64
	// Overlay, if set, is drawn over Values in red (e.g. failed calls);
	// it must have the same length.
	Overlay      []int64
	OverlayLabel string
	ValuesLabel  string
	Height       float64 // mm, default 48
}

// BarChart draws c across the content width.
func (d *Doc) BarChart(c Chart) {
	p := d.pdf
	h := c.Height
	if h == 0 {
		h = 48
	}
	d.need(h + 2)
	top := p.GetY()
	d.font(Sans, "B", 8.5)
	p.SetXY(marginL, top)
	p.CellFormat(ContentWidth, 4.5, d.clean(c.Title, Sans), "", 0, "L", false, 0, "")

	var maxV int64
	var total int64
	for _, v := range c.Values {
		maxV = max(maxV, v)
		total += v
	}
	step, topV := niceScale(maxV)
	d.font(Sans, "", 6.5)
	yLabelW := d.width(strconv.FormatInt(topV, 10)) + 2.5
	x0 := marginL + max(yLabelW, 8)
	x1 := marginL + ContentWidth - 1
	y0 := top + 7     // top of plot
	y1 := top + h - 9 // x axis
	// Grid and y ticks.
	p.SetDrawColor(220, 220, 220)
	p.SetLineWidth(0.15)
	for v := int64(0); v <= topV; v += step {
		y := y1 - float64(v)/float64(topV)*(y1-y0)
		p.Line(x0, y, x1, y)
		s := strconv.FormatInt(v, 10)
		p.SetXY(x0-1.5-d.width(s), y-1.5)
		p.CellFormat(d.width(s), 3, s, "", 0, "R", false, 0, "")
	}
	// Bars.
	n := len(c.Values)
	if n > 0 {
		slot := (x1 - x0) / float64(n)
		bw := slot * 0.78
		for i, v := range c.Values {
			x := x0 + float64(i)*slot + (slot-bw)/2
			bh := float64(v) / float64(topV) * (y1 - y0)
			if v > 0 {
				p.SetFillColor(70, 110, 170)
				p.Rect(x, y1-bh, bw, bh, "F")
			}
			if i < len(c.Overlay) && c.Overlay[i] > 0 {
				oh := float64(c.Overlay[i]) / float64(topV) * (y1 - y0)
				p.SetFillColor(200, 50, 50)
				p.Rect(x, y1-oh, bw, oh, "F")
			}
		}
		// X labels: as many as fit without overlapping.
		lw := 0.0
		for _, l := range c.Labels {
			lw = max(lw, d.width(l))
		}
		every := max(1, int(math.Ceil((lw+1.5)/slot)))
		for i := 0; i < n && i < len(c.Labels); i += every {
			cx := x0 + float64(i)*slot + slot/2
			p.SetXY(cx-lw/2-1, y1+1)
			p.CellFormat(lw+2, 3, c.Labels[i], "", 0, "C", false, 0, "")
		}
	}
	// Axes.
	p.SetDrawColor(60, 60, 60)
	p.SetLineWidth(0.3)
	p.Line(x0, y0, x0, y1)
	p.Line(x0, y1, x1, y1)
	p.SetLineWidth(0.2)
	// Legend line under the axis.
	d.font(Sans, "", 6.5)
	p.SetXY(x0, y1+4.5)
	legend := c.ValuesLabel
	if legend == "" {
		legend = "events per day (UTC)"
	}
	legend += ", total " + strconv.FormatInt(total, 10) + ", peak " + strconv.FormatInt(maxV, 10)
	if c.Overlay != nil {
		var ot int64
		for _, v := range c.Overlay {
			ot += v
		}
		legend += "; red: " + c.OverlayLabel + " (" + strconv.FormatInt(ot, 10) + ")"
	}
	p.CellFormat(x1-x0, 3, d.clean(legend, Sans), "", 0, "L", false, 0, "")
	p.SetY(top + h + 1)
}

// niceScale picks a tick step of 1, 2 or 5 times a power of ten giving
// four to eight ticks, and the axis top as a multiple of it.
func niceScale(maxV int64) (step, top int64) {
	if maxV <= 0 {
		return 1, 1
	}
	raw := float64(maxV) / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step = int64(mag)
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*mag {
			step = int64(m * mag)
			break
		}
	}
	if step < 1 {
		step = 1
	}
	top = (maxV + step - 1) / step * step
	return step, top
}
