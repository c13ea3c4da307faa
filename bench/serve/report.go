package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// WriteJSON writes the report, indented, to path.
func (rep *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// HTMLPathFor is where the HTML report goes next to a JSON file.
func HTMLPathFor(jsonPath string) string {
	return strings.TrimSuffix(jsonPath, filepath.Ext(jsonPath)) + ".html"
}

// Chart is one rendered SVG chart.
type Chart struct {
	Title string
	SVG   template.HTML
}

// Charts draws the charts that fit the suite: latency CDFs always, the
// batch-scaling curve, the capacity curve, per-category bars and
// long-context bars when the suite has them.
func (rep *Report) Charts() ([]Chart, error) {
	var charts []Chart
	add := func(title string, p *plot.Plot, err error) error {
		if err != nil {
			return fmt.Errorf("chart %q: %w", title, err)
		}
		svg, err := renderSVG(p, 7*vg.Inch, 4*vg.Inch)
		if err != nil {
			return fmt.Errorf("chart %q: %w", title, err)
		}
		charts = append(charts, Chart{Title: title, SVG: svg})
		return nil
	}
	switch rep.Suite {
	case SuiteBatchScaling, SuiteCapacity:
		p, err := rep.scalingChart()
		if err := add("Throughput by concurrency", p, err); err != nil {
			return nil, err
		}
		p, err = rep.ttftByLevelChart()
		if err := add("TTFT by concurrency", p, err); err != nil {
			return nil, err
		}
	case SuiteScenarios:
		p, err := rep.barChart("Output tokens/s by category", "tok/s", func(r RunReport) float64 {
			if t := totalE2E(r.Requests); t > 0 {
				return float64(r.Summary.TotalOutputTokens) / t
			}
			return 0
		})
		if err := add("Tokens per second by category", p, err); err != nil {
			return nil, err
		}
		p, err = rep.barChart("Total time by category", "seconds", func(r RunReport) float64 { return totalE2E(r.Requests) })
		if err := add("Total time by category", p, err); err != nil {
			return nil, err
		}
	case SuiteLongContext:
		p, err := rep.barChart("Time to first token by prompt length", "ms", func(r RunReport) float64 { return r.Summary.TTFT.Mean })
		if err := add("TTFT by prompt length", p, err); err != nil {
			return nil, err
		}
		p, err = rep.barChart("Decode speed by prompt length", "tok/s", func(r RunReport) float64 { return r.Summary.MeanDecodeRate })
		if err := add("Decode tok/s by prompt length", p, err); err != nil {
			return nil, err
		}
	}
	p, err := rep.cdfChart("Time to first token: CDF", func(r RequestResult) []float64 { return []float64{r.TTFTS * 1000} })
	if err := add("TTFT CDF", p, err); err != nil {
		return nil, err
	}
	p, err = rep.cdfChart("End-to-end latency: CDF", func(r RequestResult) []float64 { return []float64{r.E2ES * 1000} })
	if err := add("E2E latency CDF", p, err); err != nil {
		return nil, err
	}
	p, err = rep.cdfChart("Inter-token latency: CDF", func(r RequestResult) []float64 {
		ms := make([]float64, len(r.ITLS))
		for i, v := range r.ITLS {
			ms[i] = v * 1000
		}
		return ms
	})
	if err := add("ITL CDF", p, err); err != nil {
		return nil, err
	}
	return charts, nil
}

func renderSVG(p *plot.Plot, w, h vg.Length) (template.HTML, error) {
	c := vgsvg.New(w, h)
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", err
	}
	s := buf.String()
	// Inline SVG in HTML takes no XML prologue.
	if i := strings.Index(s, "<svg"); i > 0 {
		s = s[i:]
	}
	return template.HTML(s), nil // our own renderer's output, not user text
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	return p
}

// cdfChart draws one empirical CDF per run (at most 12, to stay legible)
// of the values pick extracts from successful requests.
func (rep *Report) cdfChart(title string, pick func(RequestResult) []float64) (*plot.Plot, error) {
	p := newPlot(title, "milliseconds", "cumulative fraction")
	p.Legend.Left = false
	p.Legend.Top = false
	p.Y.Min, p.Y.Max = 0, 1
	for i, r := range rep.Runs {
		if i >= 12 {
			break
		}
		var vals []float64
		for _, q := range r.Requests {
			if q.OK {
				vals = append(vals, pick(q)...)
			}
		}
		if len(vals) == 0 {
			continue
		}
		l, err := plotter.NewLine(cdfPoints(vals))
		if err != nil {
			return nil, err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(r.Label, l)
	}
	return p, nil
}

// cdfMaxSteps bounds the points of one CDF line: a stress run has half a
// million inter-token gaps, which would make a page of tens of megabytes.
const cdfMaxSteps = 500

// cdfPoints is the empirical CDF of vals as a step line, thinned to
// cdfMaxSteps evenly spaced quantiles when there are more samples.
func cdfPoints(vals []float64) plotter.XYs {
	slices.Sort(vals)
	n := len(vals)
	steps := min(n, cdfMaxSteps)
	pts := make(plotter.XYs, 0, 2*steps)
	for k := range steps {
		// The k-th step covers samples [lo, hi).
		lo, hi := k*n/steps, (k+1)*n/steps
		v := vals[hi-1]
		pts = append(pts, plotter.XY{X: v, Y: float64(lo) / float64(n)}, plotter.XY{X: v, Y: float64(hi) / float64(n)})
	}
	return pts
}

// scalingChart plots aggregate and per-request output tok/s against
// concurrency.
func (rep *Report) scalingChart() (*plot.Plot, error) {
	p := newPlot("Output throughput by concurrency", "concurrent requests", "output tokens/s")
	var agg, per plotter.XYs
	for _, r := range rep.Runs {
		agg = append(agg, plotter.XY{X: float64(r.Concurrency), Y: r.Summary.OutputThroughput})
		per = append(per, plotter.XY{X: float64(r.Concurrency), Y: r.Summary.MeanDecodeRate})
	}
	if err := addLinePoints(p, "aggregate", agg, 0); err != nil {
		return nil, err
	}
	if err := addLinePoints(p, "per request (decode)", per, 1); err != nil {
		return nil, err
	}
	concurrencyAxis(p, agg)
	return p, nil
}

func (rep *Report) ttftByLevelChart() (*plot.Plot, error) {
	p := newPlot("Time to first token by concurrency", "concurrent requests", "milliseconds")
	var p50, p99 plotter.XYs
	for _, r := range rep.Runs {
		if r.Summary.Completed == 0 {
			continue
		}
		p50 = append(p50, plotter.XY{X: float64(r.Concurrency), Y: r.Summary.TTFT.Median})
		p99 = append(p99, plotter.XY{X: float64(r.Concurrency), Y: r.Summary.TTFT.P99})
	}
	if err := addLinePoints(p, "TTFT p50", p50, 0); err != nil {
		return nil, err
	}
	if err := addLinePoints(p, "TTFT p99", p99, 1); err != nil {
		return nil, err
	}
	if rep.Capacity != nil && len(p50) > 0 {
		bound := plotter.XYs{{X: p50[0].X, Y: rep.Capacity.TTFTBoundMs}, {X: p50[len(p50)-1].X, Y: rep.Capacity.TTFTBoundMs}}
		l, err := plotter.NewLine(bound)
		if err != nil {
			return nil, err
		}
		l.Color = color.RGBA{R: 200, A: 255}
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		p.Legend.Add("bound", l)
		p.Y.Max = max(p.Y.Max, rep.Capacity.TTFTBoundMs)
	}
	concurrencyAxis(p, p50)
	return p, nil
}

// concurrencyAxis puts concurrency on a log₂ axis ticked at the measured
// levels (1, 2, 4, … are evenly spaced then), starts y at 0 and leaves
// headroom above the data for the legend.
func concurrencyAxis(p *plot.Plot, pts plotter.XYs) {
	if len(pts) > 1 && pts[0].X > 0 {
		p.X.Scale = plot.LogScale{}
		ticks := make(plot.ConstantTicks, len(pts))
		for i, pt := range pts {
			ticks[i] = plot.Tick{Value: pt.X, Label: strconv.FormatFloat(pt.X, 'f', -1, 64)}
		}
		p.X.Tick.Marker = ticks
		p.X.Min, p.X.Max = pts[0].X/1.2, pts[len(pts)-1].X*1.2
	}
	p.Y.Min = 0
	p.Y.Max = niceCeil(p.Y.Max * 1.25)
}

// niceCeil rounds up to 1, 2, 3, 4, 5, 6 or 8 times a power of ten, so
// the axis ends on a labelled tick.
func niceCeil(v float64) float64 {
	if !(v > 0) || math.IsInf(v, 0) {
		return v
	}
	pow := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 3, 4, 5, 6, 8, 10} {
		if m*pow >= v {
			return m * pow
		}
	}
	return 10 * pow
}

func addLinePoints(p *plot.Plot, name string, pts plotter.XYs, colorIndex int) error {
	if len(pts) == 0 {
		return nil
	}
	l, s, err := plotter.NewLinePoints(pts)
	if err != nil {
		return err
	}
	l.Color, s.Color = plotutil.Color(colorIndex), plotutil.Color(colorIndex)
	l.Width = vg.Points(1.5)
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}

// barChart draws one bar per run, labelled with the run's label.
func (rep *Report) barChart(title, unit string, value func(RunReport) float64) (*plot.Plot, error) {
	p := newPlot(title, "", unit)
	vals := make(plotter.Values, len(rep.Runs))
	names := make([]string, len(rep.Runs))
	for i, r := range rep.Runs {
		vals[i] = value(r)
		names[i] = r.Label
	}
	if len(vals) == 0 {
		return p, nil
	}
	b, err := plotter.NewBarChart(vals, vg.Points(40))
	if err != nil {
		return nil, err
	}
	b.Color = plotutil.Color(0)
	b.LineStyle.Width = 0
	p.Add(b)
	p.NominalX(names...)
	p.Y.Min = 0
	p.Y.Max = niceCeil(p.Y.Max * 1.1)
	return p, nil
}

// reportHTML is the page; parsed per use so no template lives in a
// package variable.
const reportHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>gptoss bench serve: {{.Report.Suite}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1.5em 0; }
svg { max-width: 100%; height: auto; }
</style></head><body>
<h1>gptoss bench serve: {{.Report.Suite}}</h1>
<p>Server {{.Report.Target.BaseURL}}, model <code>{{.Report.Target.Model}}</code>, endpoint {{.Report.Target.Endpoint}},
max_tokens {{.Report.MaxTokens}}, ignore_eos {{.Report.IgnoreEOS}}{{if .Report.SLO}}, SLO {{.Report.SLO}}{{end}};
started {{.Report.StartedAt.Format "2006-01-02 15:04:05 UTC"}}.</p>
{{with .Report.Capacity}}<p><strong>Largest concurrency with TTFT p50 under {{printf "%.0f" .TTFTBoundMs}} ms and no failures: {{.MaxConcurrency}}</strong></p>{{end}}
<table>
<tr><th>run</th><th>conc.</th><th>ok / sent</th><th>duration s</th><th>out tok/s</th><th>req/s</th><th>decode tok/s per req</th>
<th>TTFT p50 ms</th><th>TTFT p99 ms</th><th>TPOT p50 ms</th><th>ITL p99 ms</th><th>E2E p50 ms</th><th>goodput req/s</th></tr>
{{range .Rows}}<tr><td>{{.Label}}</td><td>{{.Concurrency}}</td><td>{{.S.Completed}} / {{.S.Requests}}</td><td>{{printf "%.2f" .S.DurationS}}</td>
<td>{{printf "%.1f" .S.OutputThroughput}}</td><td>{{printf "%.2f" .S.RequestThroughput}}</td><td>{{printf "%.1f" .S.MeanDecodeRate}}</td>
<td>{{printf "%.1f" .S.TTFT.Median}}</td><td>{{printf "%.1f" .S.TTFT.P99}}</td><td>{{printf "%.2f" .S.TPOT.Median}}</td><td>{{printf "%.2f" .S.ITL.P99}}</td>
<td>{{printf "%.1f" .S.E2E.Median}}</td><td>{{if .S.SLO}}{{printf "%.2f" .S.Goodput}}{{else}}–{{end}}</td></tr>
{{end}}</table>
{{range .Rows}}{{$label := .Label}}{{range .S.Warnings}}<p><strong>Warning ({{$label}}):</strong> {{.}}</p>{{end}}{{end}}
{{range .Charts}}<figure>{{.SVG}}<figcaption>{{.Title}}</figcaption></figure>
{{end}}
<p>Raw per-request measurements are in the JSON file next to this page.</p>
</body></html>
`

type reportRow struct {
	Label       string
	Concurrency int
	S           Summary
}

// WriteHTML renders the report with its charts.
func (rep *Report) WriteHTML(w io.Writer) error {
	charts, err := rep.Charts()
	if err != nil {
		return err
	}
	rows := make([]reportRow, len(rep.Runs))
	for i, r := range rep.Runs {
		rows[i] = reportRow{Label: r.Label, Concurrency: r.Concurrency, S: r.Summary}
	}
	tmpl, err := template.New("report").Parse(reportHTML)
	if err != nil {
		return fmt.Errorf("report template: %w", err)
	}
	return tmpl.Execute(w, struct {
		Report *Report
		Rows   []reportRow
		Charts []Chart
	}{rep, rows, charts})
}

// WriteHTMLFile renders the report to path.
func (rep *Report) WriteHTMLFile(path string) error {
	var buf bytes.Buffer
	if err := rep.WriteHTML(&buf); err != nil {
		return fmt.Errorf("render HTML report: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write HTML report: %w", err)
	}
	return nil
}
