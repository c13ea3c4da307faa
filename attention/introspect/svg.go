package introspect

import (
	"fmt"
	"html"
	"io"
)

// WriteSVG draws the sink mass of every head as a heatmap, one row per
// layer and one column per head, white at 0 to dark blue at 1, with the
// value in each cell. Hand-written SVG: no dependency, opens in any
// browser.
func WriteSVG(w io.Writer, layers []LayerMass, title string) error {
	heads := 0
	for _, l := range layers {
		heads = max(heads, len(l.Heads))
	}
	const cell, left, top, legend = 28, 70, 50, 40
	width := left + heads*cell + 20
	height := top + len(layers)*cell + legend
	var err error
	printf := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="9">`+"\n", width, height)
	printf(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	printf(`<text x="%d" y="18" font-size="13">%s</text>`+"\n", left, html.EscapeString(title))
	printf(`<text x="%d" y="36" font-size="10">head →</text>`+"\n", left)
	for h := range heads {
		printf(`<text x="%d" y="%d" text-anchor="middle">%d</text>`+"\n", left+h*cell+cell/2, top-3, h)
	}
	for i, l := range layers {
		y := top + i*cell
		kind := "full"
		if l.Sliding {
			kind = "slide"
		}
		printf(`<text x="%d" y="%d" text-anchor="end">L%d %s</text>`+"\n", left-4, y+cell/2+3, l.Layer, kind)
		for h, m := range l.Heads {
			x := left + h*cell
			fg := "black"
			if m.Sink > 0.55 {
				fg = "white"
			}
			printf(`<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>layer %d head %d: sink %.3f, window %.3f, beyond %.3f</title></rect>`+"\n",
				x, y, cell, cell, color(m.Sink), l.Layer, h, m.Sink, m.Window, m.Beyond)
			printf(`<text x="%d" y="%d" text-anchor="middle" fill="%s">%.2f</text>`+"\n", x+cell/2, y+cell/2+3, fg, m.Sink)
		}
	}
	// Legend: the colour scale 0 … 1.
	ly := top + len(layers)*cell + 12
	for i := range 11 {
		printf(`<rect x="%d" y="%d" width="16" height="10" fill="%s"/>`+"\n", left+i*16, ly, color(float64(i)/10))
	}
	printf(`<text x="%d" y="%d">0</text><text x="%d" y="%d">1  sink mass</text>`+"\n", left, ly+22, left+10*16, ly+22)
	printf("</svg>\n")
	return err
}

// color maps a share in [0, 1] from white to dark blue.
func color(v float64) string {
	v = min(max(v, 0), 1)
	r := int(255 - v*(255-8))
	g := int(255 - v*(255-48))
	b := int(255 - v*(255-107))
	return fmt.Sprintf("#%02x%02x%02x", r, g, b)
}
