package lint

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/virt-failover/virt-failover/xmlxform"
)

// SchemaProblem is one complaint of a schema validator: the line it names (0 when none), the
// element it names ("" when none) and its message.
type SchemaProblem struct {
	Line    int
	Element string
	Message string
}

// The patterns are compiled on first use: the hook links this package and starts for every
// libvirt operation, and never reads validator output.
var (
	// /path/f.xml:5: element devices: Relax-NG validity error : Element domain failed to validate content
	xmllintLine = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^.*?:(\d+): element ([^:\s]+): Relax-NG validity error : (.*)$`)
	})
	// Relax-NG validity error : Extra element devices in interleave
	xmllintBare = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^Relax-NG validity error : (.*)$`) })
	invalidAttr = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`Invalid attribute (\S+) for element (\S+)`)
	})
)

// ParseValidatorOutput turns the output of virt-xml-validate (xmllint's RelaxNG messages) into
// problems. A message without a position (xmllint prints some before the positioned one they
// explain) is joined to the next positioned message. Lines that are neither ("FILE fails to
// validate") are left out; when failed is true and nothing was recognised, the whole output is one
// problem without a line.
func ParseValidatorOutput(out string, failed bool) []SchemaProblem {
	var probs []SchemaProblem
	var pending []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if m := xmllintLine().FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			msg := m[3]
			if len(pending) > 0 {
				msg += " (" + strings.Join(pending, "; ") + ")"
				pending = nil
			}
			probs = append(probs, SchemaProblem{Line: n, Element: m[2], Message: msg})
		} else if m := xmllintBare().FindStringSubmatch(line); m != nil {
			pending = append(pending, m[1])
		}
	}
	if len(pending) > 0 {
		probs = append(probs, SchemaProblem{Message: strings.Join(pending, "; ")})
	}
	if failed && len(probs) == 0 {
		msg := strings.TrimSpace(out)
		if msg == "" {
			msg = "the validator failed without a message"
		}
		probs = append(probs, SchemaProblem{Message: msg})
	}
	return probs
}

// schemaFindings places schema problems as precisely as the document allows: the named element on
// the named line (its attribute when the message names one), else the line's first non-blank
// byte, else the root element.
func schemaFindings(file string, doc *xmlxform.Doc, probs []SchemaProblem) []*Finding {
	var out []*Finding
	for _, p := range probs {
		off := doc.Root.Start.Start
		if p.Line > 0 {
			off = lineOffset(doc, p.Line)
			for e := range doc.Elements() {
				if e.QName == p.Element && doc.Pos(e.Start.Start).Line == p.Line {
					off = e.Start.Start
					if m := invalidAttr().FindStringSubmatch(p.Message); m != nil && m[2] == e.QName {
						for _, a := range e.Attrs {
							if a.QName == m[1] {
								off = a.Span.Start
							}
						}
					}
					break
				}
			}
		}
		pos := doc.Pos(off)
		out = append(out, &Finding{Rule: ruleSchema.ID, Name: ruleSchema.Name, Severity: ruleSchema.Severity,
			Position: Position{File: file, Line: pos.Line, Col: pos.Col},
			Message:  "libvirt's schema rejects this: " + p.Message,
			Hint:     "virsh define would refuse it with --validate, and without it libvirt drops what it does not know; see formatdomain in the libvirt docs",
			anchor:   off})
	}
	return out
}

// lineOffset returns the offset of the first non-blank byte of a 1-based line (clamped).
func lineOffset(doc *xmlxform.Doc, line int) int {
	src := doc.Src
	off, ln := 0, 1
	for ln < line {
		i := bytes.IndexByte(src[off:], '\n')
		if i < 0 {
			break
		}
		off += i + 1
		ln++
	}
	for off < len(src) && (src[off] == ' ' || src[off] == '\t') {
		off++
	}
	return off
}
