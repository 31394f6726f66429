// Package output renders berth's output as Docker's CLI does: --format
// values ("table", "table TEMPLATE", "json" or a Go template with
// Docker's template functions), inspect's JSON, and human times.
package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/docker/go-units"
)

// templateFuncs are the functions Docker's CLI offers in --format
// templates.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		return strings.TrimSpace(buf.String()), nil
	},
	"split": strings.Split,
	"join":  strings.Join,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		r, n := utf8.DecodeRuneInString(s)
		return strings.ToUpper(string(r)) + s[n:]
	},
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad": func(s string, before, after int) string {
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
	},
	"truncate": func(s string, n int) string {
		if utf8.RuneCountInString(s) <= n {
			return s
		}
		return string([]rune(s)[:n])
	},
	"println": fmt.Sprintln,
}

// Parse parses a --format template in Docker's dialect, with its
// functions. A bad template is a usage error.
func Parse(text string) (*template.Template, error) {
	t, err := template.New("format").Funcs(templateFuncs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %v", err)
	}
	return t, nil
}

// ParseFormat is Parse for a whole-object --format value as the docker
// CLI reads one: "json" stands for {{json .}}.
func ParseFormat(format string) (*template.Template, error) {
	if format == "json" {
		format = "{{json .}}"
	}
	return Parse(format)
}

// Rows prints rows (string fields keyed by Docker's field names)
// per a --format value: "" or "table" for the default table, "table TMPL"
// for a table with headers, "json" for one JSON object per line, else a
// template executed per row.
type Rows struct {
	tmpl    *template.Template
	table   bool
	headers map[string]string
	out     io.Writer
	tw      *tabwriter.Writer
	wrote   bool
}

// NewRows prepares format; def is the default table template
// (without the "table" prefix) and headers map field names to titles.
func NewRows(out io.Writer, format, def string, headers map[string]string) (*Rows, error) {
	f := &Rows{headers: headers, out: out}
	text := format
	switch {
	case format == "" || format == "table":
		text, f.table = def, true
	case format == "json":
		text = "{{json .}}"
	case strings.HasPrefix(format, "table "):
		text, f.table = strings.TrimPrefix(format, "table "), true
	}
	text = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(text)
	t, err := Parse(text)
	if err != nil {
		return nil, err
	}
	f.tmpl = t
	if f.table {
		f.tw = tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
	}
	return f, nil
}

// Row prints one row (and, the first time, the table header).
func (f *Rows) Row(row map[string]string) error {
	w := f.out
	if f.table {
		w = f.tw
		if !f.wrote {
			if err := f.header(); err != nil {
				return err
			}
		}
	}
	f.wrote = true
	var buf bytes.Buffer
	if err := f.tmpl.Execute(&buf, row); err != nil {
		return fmt.Errorf("template: %v", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

func (f *Rows) header() error {
	var buf bytes.Buffer
	if err := f.tmpl.Execute(&buf, f.headers); err != nil {
		return fmt.Errorf("template: %v", err)
	}
	buf.WriteByte('\n')
	_, err := f.tw.Write(buf.Bytes())
	return err
}

// Flush ends the output; a table with no rows still gets its header.
func (f *Rows) Flush() error {
	if !f.table {
		return nil
	}
	if !f.wrote {
		if err := f.header(); err != nil {
			return err
		}
	}
	return f.tw.Flush()
}

// inspectFormat prints v (a value that marshals to a JSON object) per
// `inspect -f`: the template runs against the object's JSON form, so the
// field names are the JSON keys Docker documents ({{.Id}}, {{.Config.Cmd}}).
func inspectFormat(w io.Writer, tmpl *template.Template, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var obj any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, obj); err != nil {
		return fmt.Errorf("template: %v", err)
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// PrintInspect prints objs as Docker's inspect does: an indented JSON
// array, or each through tmpl.
func PrintInspect(w io.Writer, format string, objs []any) error {
	if format != "" && format != "json" {
		tmpl, err := Parse(format)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if err := inspectFormat(w, tmpl, o); err != nil {
				return err
			}
		}
		return nil
	}
	if objs == nil {
		objs = []any{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(objs); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// Ago renders a past time as Docker does: "5 seconds ago", "2 weeks ago".
func Ago(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	return units.HumanDuration(time.Since(t)) + " ago"
}

// Ellipsis shortens s to n runes, ending in "…", as Docker's tables do.
func Ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
