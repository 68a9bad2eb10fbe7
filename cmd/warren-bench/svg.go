package main

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"strconv"
)

// Chart drawing, by hand: three panels in one SVG, no dependency.
//   - throughput per scenario, one bar per broker, each scenario scaled to
//     its best broker (the scenarios differ by orders of magnitude);
//   - broker CPU time per message per scenario, scaled the same way;
//   - latency (p50 solid, p99 dashed) against the offered rate, log scale.

const (
	svgWidth  = 920
	panelH    = 280
	marginL   = 70
	marginR   = 20
	panelTop  = 40 // title and legend above the plot
	panelFoot = 40 // axis labels below it
)

var svgColors = []string{"#d9480f", "#1971c2", "#2f9e44", "#7048e8"}

// barGroup is one scenario's bars.
type barGroup struct {
	label  string
	vals   []float64 // per broker; 0 is no value
	labels []string
}

func (rep *report) svg() []byte {
	var b bytes.Buffer
	var thr, cpu []barGroup
	for _, s := range scenarios {
		tg := barGroup{label: "(" + s.id + ")"}
		cg := tg
		ran := false
		for _, br := range rep.brokers {
			r := rep.result(s, br)
			tv, cv := 0.0, 0.0
			if r != nil && r.failure == "" {
				ran = true
				tv = s.value(r)
				if r.cpuOK {
					cv = r.cpuUS
				}
			}
			tg.vals = append(tg.vals, tv)
			tg.labels = append(tg.labels, shortNum(tv))
			cg.vals = append(cg.vals, cv)
			cg.labels = append(cg.labels, strconv.FormatFloat(cv, 'f', 1, 64))
		}
		if !ran {
			continue
		}
		if !s.lowerIsBetter {
			thr = append(thr, tg)
		}
		cpu = append(cpu, cg)
	}
	panels := 0
	if len(thr) > 0 {
		panels++
	}
	if len(cpu) > 0 {
		panels++
	}
	if len(rep.curve) > 0 {
		panels++
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		svgWidth, panels*panelH+10, svgWidth, panels*panelH+10)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	y := 0
	if len(thr) > 0 {
		rep.barPanel(&b, y, "Throughput per scenario (msg/s; bars scaled to the best broker of each scenario; higher is better)", thr)
		y += panelH
	}
	if len(cpu) > 0 {
		rep.barPanel(&b, y, "Broker CPU time per message (µs; scaled to the highest of each scenario; lower is better)", cpu)
		y += panelH
	}
	if len(rep.curve) > 0 {
		rep.curvePanel(&b, y)
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// legend draws the brokers' colours at the top right of a panel.
func (rep *report) legend(b *bytes.Buffer, y int, extra string) {
	x := svgWidth - marginR - 120*len(rep.brokers)
	for i, br := range rep.brokers {
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x+i*120, y+22, svgColors[i%len(svgColors)], x+i*120+16, y+32, html.EscapeString(br.name))
	}
	if extra != "" {
		fmt.Fprintf(b, `<text x="%d" y="%d" fill="#555">%s</text>`+"\n", x, y+48, html.EscapeString(extra))
	}
}

func (rep *report) barPanel(b *bytes.Buffer, y0 int, title string, groups []barGroup) {
	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", marginL, y0+18, html.EscapeString(title))
	rep.legend(b, y0+4, "")
	plotTop, plotBottom := y0+panelTop+20, y0+panelH-panelFoot
	plotH := float64(plotBottom - plotTop)
	groupW := float64(svgWidth-marginL-marginR) / float64(len(groups))
	barW := groupW * 0.8 / float64(len(rep.brokers))
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", marginL, plotBottom, svgWidth-marginR, plotBottom)
	for gi, g := range groups {
		top := 0.0
		for _, v := range g.vals {
			top = max(top, v)
		}
		gx := float64(marginL) + float64(gi)*groupW + groupW*0.1
		for i, v := range g.vals {
			x := gx + float64(i)*barW
			if v <= 0 || top <= 0 {
				fmt.Fprintf(b, `<text x="%.1f" y="%d" font-size="10" text-anchor="middle" fill="#999">n/a</text>`+"\n", x+barW/2, plotBottom-4)
				continue
			}
			h := plotH * v / top
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n",
				x, float64(plotBottom)-h, barW-2, h, svgColors[i%len(svgColors)])
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle">%s</text>`+"\n",
				x+barW/2, float64(plotBottom)-h-3, html.EscapeString(g.labels[i]))
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", gx+barW*float64(len(g.vals))/2, plotBottom+16, html.EscapeString(g.label))
	}
}

func (rep *report) curvePanel(b *bytes.Buffer, y0 int) {
	fmt.Fprintf(b, `<text x="%d" y="%d" font-weight="bold">Latency publish → delivery against offered rate (ms, log scale; p50 solid, p99 dashed; lower is better)</text>`+"\n", marginL, y0+18)
	rep.legend(b, y0+4, "")
	rates := rep.curveRates()
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range rep.curve {
		if p.r == nil || p.r.failure != "" || p.r.Latency.Count == 0 {
			continue
		}
		lo = min(lo, p.r.Latency.P50/1000)
		hi = max(hi, p.r.Latency.P99/1000)
	}
	if math.IsInf(lo, 0) {
		return
	}
	lo = math.Pow(10, math.Floor(math.Log10(max(lo, 0.001))))
	hi = math.Pow(10, math.Ceil(math.Log10(max(hi, lo*10))))
	plotTop, plotBottom := y0+panelTop+20, y0+panelH-panelFoot
	plotH := float64(plotBottom - plotTop)
	yOf := func(ms float64) float64 {
		ms = max(ms, lo)
		return float64(plotBottom) - plotH*(math.Log10(ms)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))
	}
	stepX := float64(svgWidth-marginL-marginR-40) / float64(max(len(rates)-1, 1))
	xOf := func(i int) float64 { return float64(marginL+20) + float64(i)*stepX }
	for d := lo; d <= hi*1.0001; d *= 10 {
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			marginL, yOf(d), svgWidth-marginR, yOf(d), marginL-6, yOf(d)+4, strconv.FormatFloat(d, 'g', -1, 64))
	}
	for i, rate := range rates {
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s msg/s</text>`+"\n", xOf(i), plotBottom+16, shortNum(float64(rate)))
	}
	for bi, br := range rep.brokers {
		color := svgColors[bi%len(svgColors)]
		for _, q := range []struct {
			dash string
			get  func(*perfResult) float64
		}{
			{"", func(r *perfResult) float64 { return r.Latency.P50 / 1000 }},
			{` stroke-dasharray="6,4"`, func(r *perfResult) float64 { return r.Latency.P99 / 1000 }},
		} {
			var pts bytes.Buffer
			for i, rate := range rates {
				r := rep.curveResult(rate, br)
				if r == nil || r.failure != "" || r.Latency.Count == 0 {
					continue
				}
				x, y := xOf(i), yOf(q.get(r))
				fmt.Fprintf(&pts, "%.1f,%.1f ", x, y)
				fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x, y, color)
			}
			if pts.Len() > 0 {
				fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", bytes.TrimSpace(pts.Bytes()), color, q.dash)
			}
		}
	}
}

// shortNum prints a rate compactly for a chart label: 1.2M, 350k, 950.
func shortNum(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 0, 64) + "k"
	case v >= 1e3:
		return strconv.FormatFloat(math.Round(v/100)/10, 'f', -1, 64) + "k"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
