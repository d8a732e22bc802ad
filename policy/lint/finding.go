package lint

import (
	"strconv"
	"strings"
)

// Severity is how bad a finding is. Higher is worse.
type Severity int

// Severities, in increasing order.
const (
	Info Severity = iota + 1
	Warning
	Error
)

// String returns "info", "warning" or "error".
func (s Severity) String() string {
	switch s {
	case Info:
		return "info"
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return "severity(" + strconv.Itoa(int(s)) + ")"
}

// ParseSeverity parses "info", "warning" or "error".
func ParseSeverity(s string) (Severity, bool) {
	switch strings.ToLower(s) {
	case "info":
		return Info, true
	case "warning":
		return Warning, true
	case "error":
		return Error, true
	}
	return 0, false
}

// Position is a place in a file. Line and Col are 1-based; Col counts bytes. Line is 0 when the
// finding is about the whole file.
type Position struct {
	File      string
	Line, Col int
}

// String returns "FILE:LINE:COL", or "FILE" when Line is 0.
func (p Position) String() string {
	if p.Line == 0 {
		return p.File
	}
	return p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col)
}

// Related is another position that explains a finding ("the standby is here").
type Related struct {
	Position
	Message string
}

// Finding is one problem found in a file.
type Finding struct {
	Rule     string // "VF007"
	Name     string // "teaming-persistent-unknown-alias"
	Severity Severity
	Position
	Message string
	Hint    string // "" when there is none
	Related []Related

	anchor int // offset of the element the finding is about, for suppressions; -1 for none
}

// String renders the finding's first line: "FILE:LINE:COL: SEVERITY VFnnn: MESSAGE".
func (f *Finding) String() string {
	return f.Position.String() + ": " + f.Severity.String() + " " + f.Rule + ": " + f.Message
}
