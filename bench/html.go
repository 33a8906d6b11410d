package bench

import (
	"html/template"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hermes-go/hermes/sim"
)

// reportHTML is report.html: one self-contained file, the plots inline as
// SVG, that opens from disk with nothing fetched.
var reportHTML = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Name}}</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #1d2433; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: .3em .5em; border-bottom: 1px solid #dde; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1.5em 0; } figure svg { width: 100%; height: auto; }
.note { color: #556; }
</style></head><body>
<h1>{{.Name}}</h1>
<p>{{.Description}}</p>
<p>Target {{printf "%.2f" .Target}} test accuracy; budget {{printf "%.0f" .Budget}} virtual s; {{.Seeds}}; {{.Workers}} workers.</p>
<table><thead><tr>{{range .Head}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}</tbody></table>
<p class="note">{{.Note}}</p>
{{range .Plots}}<figure><figcaption><h2>{{.Title}}</h2></figcaption>{{.SVG}}</figure>
{{end}}</body></html>
`))

type htmlPlot struct {
	Title string
	SVG   template.HTML // our own plot, drawn by gonum/plot
}

// writeHTML writes report.html from the runs and the SVG plots in dir.
func writeHTML(w io.Writer, dir string, sc *sim.Scenario, runs []PolicyRuns, plots []plotFile) error {
	var rows [][]string
	var table strings.Builder
	Table(&table, runs)
	for _, line := range strings.Split(table.String(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			cells := strings.Split(strings.Trim(line, "|"), "|")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			rows = append(rows, cells)
		}
	}
	head, rows := rows[0], rows[2:] // the Markdown header and its rule
	var figs []htmlPlot
	for _, p := range plots {
		b, err := os.ReadFile(filepath.Join(dir, p.file+".svg"))
		if err != nil {
			return err
		}
		svg := string(b)
		if i := strings.Index(svg, "<svg"); i > 0 {
			svg = svg[i:] // without the XML prolog
		}
		figs = append(figs, htmlPlot{Title: p.title, SVG: template.HTML(svg)})
	}
	return reportHTML.Execute(w, map[string]any{"Name": sc.Name, "Description": sc.Description, "Target": sc.TargetAccuracy,
		"Budget": sc.TimeBudgetS, "Seeds": seedsLine(runs), "Workers": sc.NumWorkers(), "Head": head, "Rows": rows, "Plots": figs,
		"Note": methodNote})
}
