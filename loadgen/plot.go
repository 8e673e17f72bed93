package loadgen

import (
	"fmt"
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// WritePNG renders throughput (top) and latency (bottom) over the run.
func (r *Report) WritePNG(w io.Writer) error {
	if len(r.Series) == 0 {
		return fmt.Errorf("plot: the run has no data")
	}
	tx, sig, errs := make(plotter.XYs, len(r.Series)), make(plotter.XYs, len(r.Series)), make(plotter.XYs, len(r.Series))
	var p50, p95 plotter.XYs
	for i, p := range r.Series {
		x := float64(p.Second)
		tx[i] = plotter.XY{X: x, Y: float64(p.Transactions)}
		sig[i] = plotter.XY{X: x, Y: float64(p.Signatures)}
		errs[i] = plotter.XY{X: x, Y: float64(p.Errors)}
		if p.Transactions > 0 {
			p50 = append(p50, plotter.XY{X: x, Y: p.P50})
			p95 = append(p95, plotter.XY{X: x, Y: p.P95})
		}
	}
	top := plot.New()
	top.Title.Text = fmt.Sprintf("firmactl bench: %d node(s), %d workers — %.1f tx/s, %.1f signatures/s, %d errors",
		len(r.Nodes), r.Workers, r.TxPerSecond, r.SigPerSecond, r.Failed)
	top.X.Label.Text = "seconds"
	top.Y.Label.Text = "per second"
	top.Add(plotter.NewGrid())
	bottom := plot.New()
	bottom.X.Label.Text = "seconds"
	bottom.Y.Label.Text = "transaction latency (ms)"
	bottom.Add(plotter.NewGrid())
	for _, s := range []struct {
		p    *plot.Plot
		xy   plotter.XYs
		name string
		c    color.RGBA
	}{
		{top, tx, "transactions/s", color.RGBA{R: 31, G: 119, B: 180, A: 255}},
		{top, sig, "signatures/s", color.RGBA{R: 44, G: 160, B: 44, A: 255}},
		{top, errs, "errors/s", color.RGBA{R: 214, G: 39, B: 40, A: 255}},
		{bottom, p50, "p50", color.RGBA{R: 31, G: 119, B: 180, A: 255}},
		{bottom, p95, "p95", color.RGBA{R: 255, G: 127, B: 14, A: 255}},
	} {
		if len(s.xy) == 0 {
			continue
		}
		l, err := plotter.NewLine(s.xy)
		if err != nil {
			return fmt.Errorf("plot %s: %w", s.name, err)
		}
		l.Color = s.c
		l.Width = vg.Points(1.2)
		if s.name == "signatures/s" {
			// With one document per transaction it lies on the
			// transactions line: dashed, both stay visible.
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		}
		s.p.Add(l)
		s.p.Legend.Add(s.name, l)
	}
	top.Legend.Top = true
	bottom.Legend.Top = true
	const width, height = 28 * vg.Centimeter, 20 * vg.Centimeter
	img := vgimg.New(width, height)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2,
		PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2, PadY: vg.Millimeter * 4}
	plots := [][]*plot.Plot{{top}, {bottom}}
	canvases := plot.Align(plots, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	png := vgimg.PngCanvas{Canvas: img}
	if _, err := png.WriteTo(w); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}
