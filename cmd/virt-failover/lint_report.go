package main

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/virt-failover/virt-failover/policy/lint"
)

// The output formats of virt-failover lint. They live here, not in policy/lint, because only the
// command line prints: the hook logs findings its own way, and the rules stay free of encoders.
var lintFormats = []string{"text", "json", "sarif", "junit", "github"}

func isFormat(f string) bool {
	for _, x := range lintFormats {
		if x == f {
			return true
		}
	}
	return false
}

// report is the outcome of one lint run.
type report struct {
	files    int
	names    []string // the files linted, in order
	findings []lint.Finding
	failOn   lint.Severity
	version  string
	// unread are the inputs that could not be linted, as the error messages stderr shows.
	unread []string
}

// failing counts the findings at or above --fail-on.
func (r *report) failing() int {
	n := 0
	for _, f := range r.findings {
		if f.Severity >= r.failOn {
			n++
		}
	}
	return n
}

func (r *report) write(w io.Writer, format string) error {
	switch format {
	case "json":
		return r.writeJSON(w)
	case "sarif":
		return r.writeSARIF(w)
	case "junit":
		return r.writeJUnit(w)
	case "github":
		return r.writeGitHub(w)
	}
	return r.writeText(w)
}

// writeText writes each finding as the project's messages read:
//
//	examples/web-01.xml:57:7: error VF007: <teaming persistent='ua-net1'> names an alias no <interface> defines
//		examples/web-01.xml:41:7: the virtio standby interface here is 'ua-net0'
//		hint: set persistent='ua-net0', or give the standby <alias name='ua-net1'/>
//
// and a summary line.
func (r *report) writeText(w io.Writer) error {
	var b strings.Builder
	for i := range r.findings {
		f := &r.findings[i]
		b.WriteString(f.String())
		b.WriteByte('\n')
		for _, rel := range f.Related {
			fmt.Fprintf(&b, "\t%s: %s\n", rel.Position, rel.Message)
		}
		if f.Hint != "" {
			fmt.Fprintf(&b, "\thint: %s\n", f.Hint)
		}
	}
	if s := r.summary(); s != "" {
		b.WriteString(s + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// summary is "3 files: 2 errors, 1 warning" or "3 files: no findings", with "; 1 not read" when
// inputs could not be linted. When nothing could be linted there is no summary: the errors on
// stderr say it all, and "0 files: no findings" would contradict them.
func (r *report) summary() string {
	if r.files == 0 && len(r.unread) > 0 {
		return ""
	}
	var n [4]int
	for _, f := range r.findings {
		if f.Severity >= lint.Info && f.Severity <= lint.Error {
			n[f.Severity]++
		}
	}
	var parts []string
	for _, s := range []lint.Severity{lint.Error, lint.Warning, lint.Info} {
		if n[s] > 0 {
			parts = append(parts, plural(n[s], s.String()))
		}
	}
	if len(parts) == 0 {
		parts = []string{"no findings"}
	}
	s := plural(r.files, "file") + ": " + strings.Join(parts, ", ")
	if len(r.unread) > 0 {
		s += fmt.Sprintf("; %d not read", len(r.unread))
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// jsonReport is the JSON format, documented in docs/lint.md. Fields are only ever added.
type jsonReport struct {
	Version  int           `json:"version"`
	Files    int           `json:"files"`
	Findings []jsonFinding `json:"findings"`
	// Errors are the inputs that could not be linted (exit status 2); absent when there are none.
	Errors []string `json:"errors,omitempty"`
}

type jsonFinding struct {
	Rule     string        `json:"rule"`
	Name     string        `json:"name"`
	Severity string        `json:"severity"`
	File     string        `json:"file"`
	Line     int           `json:"line"`
	Column   int           `json:"column"`
	Message  string        `json:"message"`
	Hint     string        `json:"hint"`
	Related  []jsonRelated `json:"related"`
}

type jsonRelated struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Message string `json:"message"`
}

func (r *report) writeJSON(w io.Writer) error {
	out := jsonReport{Version: 1, Files: r.files, Findings: []jsonFinding{}, Errors: r.unread}
	for _, f := range r.findings {
		jf := jsonFinding{Rule: f.Rule, Name: f.Name, Severity: f.Severity.String(), File: f.File, Line: f.Line,
			Column: f.Col, Message: f.Message, Hint: f.Hint, Related: []jsonRelated{}}
		for _, rel := range f.Related {
			jf.Related = append(jf.Related, jsonRelated{File: rel.File, Line: rel.Line, Column: rel.Col, Message: rel.Message})
		}
		out.Findings = append(out.Findings, jf)
	}
	return encodeJSON(w, out)
}

func encodeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // findings quote XML: keep <teaming> readable
	return enc.Encode(v)
}

// SARIF 2.1.0 (OASIS), the subset GitHub code scanning reads: the tool with its rules and their
// help, and results with physical locations and related locations.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations,omitempty"`
	Results     []sarifResult     `json:"results"`
}

// sarifInvocation reports inputs that could not be linted (only then is there one).
type sarifInvocation struct {
	ExecutionSuccessful        bool                `json:"executionSuccessful"`
	ToolExecutionNotifications []sarifNotification `json:"toolExecutionNotifications"`
}

type sarifNotification struct {
	Level   string    `json:"level"`
	Message sarifText `json:"message"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string            `json:"id"`
	Name                 string            `json:"name"`
	ShortDescription     sarifText         `json:"shortDescription"`
	FullDescription      sarifText         `json:"fullDescription"`
	Help                 sarifHelp         `json:"help"`
	DefaultConfiguration sarifRuleConfig   `json:"defaultConfiguration"`
	Properties           map[string]string `json:"properties,omitempty"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifHelp struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown"`
}

type sarifRuleConfig struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID           string          `json:"ruleId"`
	RuleIndex        int             `json:"ruleIndex"`
	Level            string          `json:"level"`
	Message          sarifText       `json:"message"`
	Locations        []sarifLocation `json:"locations"`
	RelatedLocations []sarifLocation `json:"relatedLocations,omitempty"`
}

type sarifLocation struct {
	ID               *int                  `json:"id,omitempty"`
	PhysicalLocation sarifPhysicalLocation `json:"physicalLocation"`
	Message          *sarifText            `json:"message,omitempty"`
}

type sarifPhysicalLocation struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn,omitempty"`
}

func sarifLevel(s lint.Severity) string {
	switch s {
	case lint.Error:
		return "error"
	case lint.Warning:
		return "warning"
	}
	return "note"
}

// sarifURI turns a file name into a relative URI reference ("testdata/a b.xml" -> "testdata/a%20b.xml").
func sarifURI(name string) string {
	if name == "<stdin>" {
		name = "stdin"
	}
	return (&url.URL{Path: filepath.ToSlash(name)}).String()
}

func sarifPhysical(p lint.Position) sarifPhysicalLocation {
	loc := sarifPhysicalLocation{ArtifactLocation: sarifArtifact{URI: sarifURI(p.File)}}
	if p.Line > 0 {
		loc.Region = &sarifRegion{StartLine: p.Line, StartColumn: p.Col}
	}
	return loc
}

func (r *report) writeSARIF(w io.Writer) error {
	driver := sarifDriver{Name: "virt-failover", Version: r.version, Rules: []sarifRule{}}
	index := map[string]int{}
	for i, rule := range lint.Rules() {
		index[rule.ID] = i
		text, md := ruleHelp(rule)
		hook := "no"
		if rule.HookSafe {
			hook = "yes"
		}
		driver.Rules = append(driver.Rules, sarifRule{
			ID: rule.ID, Name: rule.Name,
			ShortDescription:     sarifText{Text: rule.Summary},
			FullDescription:      sarifText{Text: rule.Doc.What},
			Help:                 sarifHelp{Text: text, Markdown: md},
			DefaultConfiguration: sarifRuleConfig{Level: sarifLevel(rule.Severity)},
			Properties:           map[string]string{"hook-safe": hook},
		})
	}
	run := sarifRun{Tool: sarifTool{Driver: driver}, Results: []sarifResult{}}
	if len(r.unread) > 0 {
		inv := sarifInvocation{}
		for _, e := range r.unread {
			inv.ToolExecutionNotifications = append(inv.ToolExecutionNotifications, sarifNotification{Level: "error", Message: sarifText{Text: e}})
		}
		run.Invocations = []sarifInvocation{inv}
	}
	for _, f := range r.findings {
		msg := f.Message
		if f.Hint != "" {
			msg += "\nhint: " + f.Hint
		}
		res := sarifResult{RuleID: f.Rule, RuleIndex: index[f.Rule], Level: sarifLevel(f.Severity),
			Message: sarifText{Text: msg}, Locations: []sarifLocation{{PhysicalLocation: sarifPhysical(f.Position)}}}
		for i, rel := range f.Related {
			id := i + 1
			res.RelatedLocations = append(res.RelatedLocations, sarifLocation{ID: &id, PhysicalLocation: sarifPhysical(rel.Position), Message: &sarifText{Text: rel.Message}})
		}
		run.Results = append(run.Results, res)
	}
	return encodeJSON(w, sarifLog{Schema: "https://json.schemastore.org/sarif-2.1.0.json", Version: "2.1.0", Runs: []sarifRun{run}})
}

// ruleHelp renders a rule's doc as plain text and as Markdown.
func ruleHelp(r *lint.Rule) (text, md string) {
	text = r.Doc.What + "\n\nWhy: " + r.Doc.Why + "\n\nBad:\n" + indent(r.Doc.Bad, "  ") + "\n\nGood:\n" + indent(r.Doc.Good, "  ")
	md = r.Doc.What + "\n\n**Why:** " + r.Doc.Why + "\n\nBad:\n\n```xml\n" + r.Doc.Bad + "\n```\n\nGood:\n\n```xml\n" + r.Doc.Good + "\n```"
	return text, md
}

func indent(s, by string) string {
	return by + strings.ReplaceAll(s, "\n", "\n"+by)
}

// JUnit XML: one testcase per file, failed when it has a finding at or above --fail-on.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr,omitempty"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Error     *junitFailure `xml:"error,omitempty"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

type junitText struct {
	Text string `xml:",cdata"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

func (r *report) writeJUnit(w io.Writer) error {
	byFile := map[string][]lint.Finding{}
	for _, f := range r.findings {
		byFile[f.File] = append(byFile[f.File], f)
	}
	suite := junitSuite{Name: "virt-failover lint", Tests: len(r.names)}
	for _, name := range r.names {
		c := junitCase{Name: name, ClassName: "virt-failover.lint"}
		var failing, other strings.Builder
		nFail := 0
		worst := lint.Severity(0)
		for _, f := range byFile[name] {
			var b strings.Builder
			b.WriteString(f.String() + "\n")
			for _, rel := range f.Related {
				fmt.Fprintf(&b, "\t%s: %s\n", rel.Position, rel.Message)
			}
			if f.Hint != "" {
				fmt.Fprintf(&b, "\thint: %s\n", f.Hint)
			}
			if f.Severity >= r.failOn {
				failing.WriteString(b.String())
				nFail++
				worst = max(worst, f.Severity)
			} else {
				other.WriteString(b.String())
			}
		}
		if nFail > 0 {
			c.Failure = &junitFailure{Message: plural(nFail, "finding"), Type: worst.String(), Text: failing.String() + other.String()}
			suite.Failures++
		} else if other.Len() > 0 {
			c.SystemOut = &junitText{other.String()}
		}
		suite.Cases = append(suite.Cases, c)
	}
	for _, e := range r.unread {
		suite.Cases = append(suite.Cases, junitCase{Name: "not read", ClassName: "virt-failover.lint",
			Error: &junitFailure{Message: e, Type: "io"}})
		suite.Tests++
		suite.Errors++
	}
	out := junitSuites{Name: "virt-failover lint", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors, Suites: []junitSuite{suite}}
	b, err := xml.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, xml.Header+string(b)+"\n")
	return err
}

// writeGitHub writes GitHub Actions workflow commands: one annotation per finding.
func (r *report) writeGitHub(w io.Writer) error {
	var b strings.Builder
	for _, f := range r.findings {
		cmd := "notice"
		switch f.Severity {
		case lint.Error:
			cmd = "error"
		case lint.Warning:
			cmd = "warning"
		}
		props := "file=" + ghProperty(f.File)
		if f.Line > 0 {
			props += fmt.Sprintf(",line=%d,col=%d", f.Line, f.Col)
		}
		props += ",title=" + ghProperty(f.Rule+" "+f.Name)
		msg := f.Message
		for _, rel := range f.Related {
			msg += "\n" + rel.Position.String() + ": " + rel.Message
		}
		if f.Hint != "" {
			msg += "\nhint: " + f.Hint
		}
		fmt.Fprintf(&b, "::%s %s::%s\n", cmd, props, ghData(msg))
	}
	for _, e := range r.unread {
		fmt.Fprintf(&b, "::error title=%s::%s\n", ghProperty("not read"), ghData(e))
	}
	if s := r.summary(); s != "" {
		b.WriteString(s + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func ghProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// writeRuleList lists the rules: a table, or JSON with --format json.
func writeRuleList(w io.Writer, format string) error {
	if format == "json" {
		type rule struct {
			ID       string `json:"id"`
			Name     string `json:"name"`
			Severity string `json:"severity"`
			HookSafe bool   `json:"hook_safe"`
			Summary  string `json:"summary"`
		}
		var out []rule
		for _, r := range lint.Rules() {
			out = append(out, rule{r.ID, r.Name, r.Severity.String(), r.HookSafe, r.Summary})
		}
		return encodeJSON(w, out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSEVERITY\tHOOK\tNAME\tSUMMARY")
	for _, r := range lint.Rules() {
		hook := "-"
		if r.HookSafe {
			hook = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Severity, hook, r.Name, r.Summary)
	}
	return tw.Flush()
}

// writeExplain prints a rule's documentation.
func writeExplain(w io.Writer, r *lint.Rule) {
	hook := "not run by the hook"
	if r.HookSafe {
		hook = "hook-safe: the hook runs it at prepare"
	}
	fmt.Fprintf(w, "%s %s (%s; %s)\n%s\n\n%s\n\nWhy: %s\n\nBad:\n%s\n\nGood:\n%s\n",
		r.ID, r.Name, r.Severity, hook, r.Summary, r.Doc.What, r.Doc.Why, indent(r.Doc.Bad, "    "), indent(r.Doc.Good, "    "))
}
