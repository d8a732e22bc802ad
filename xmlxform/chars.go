package xmlxform

import (
	"strings"
	"unicode/utf8"
)

// Byte classes for the ASCII range.
const (
	cNameStart = 1 << iota // may start a name: letters, '_', ':'
	cName                  // may continue a name: also digits, '-', '.'
	cSpace                 // S: space, tab, CR, LF
	cValue                 // needs a look inside an attribute value: '<', '&', tab, CR, LF
	cText                  // needs a look inside text: '&', ']', CR
)

var class [256]uint8

func init() {
	for c := 'a'; c <= 'z'; c++ {
		class[c] |= cNameStart | cName
		class[c-'a'+'A'] |= cNameStart | cName
	}
	for c := '0'; c <= '9'; c++ {
		class[c] |= cName
	}
	class['_'] |= cNameStart | cName
	class[':'] |= cNameStart | cName
	class['-'] |= cName
	class['.'] |= cName
	for _, c := range " \t\r\n" {
		class[c] |= cSpace
	}
	for _, c := range "<&\t\r\n" {
		class[c] |= cValue
	}
	for _, c := range "&]\r" {
		class[c] |= cText
	}
}

func isSpace(c byte) bool { return class[c]&cSpace != 0 }

// isChar reports whether r is an XML Char.
func isChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// isNameStartRune reports whether a non-ASCII rune may start a name
// (XML 1.0 fifth edition).
func isNameStartRune(r rune) bool {
	return r >= 0xC0 && r <= 0xD6 || r >= 0xD8 && r <= 0xF6 || r >= 0xF8 && r <= 0x2FF ||
		r >= 0x370 && r <= 0x37D || r >= 0x37F && r <= 0x1FFF || r >= 0x200C && r <= 0x200D ||
		r >= 0x2070 && r <= 0x218F || r >= 0x2C00 && r <= 0x2FEF || r >= 0x3001 && r <= 0xD7FF ||
		r >= 0xF900 && r <= 0xFDCF || r >= 0xFDF0 && r <= 0xFFFD || r >= 0x10000 && r <= 0xEFFFF
}

// isNameRune reports whether a non-ASCII rune may continue a name.
func isNameRune(r rune) bool {
	return isNameStartRune(r) || r == 0xB7 || r >= 0x300 && r <= 0x36F || r >= 0x203F && r <= 0x2040
}

// isNCName reports whether s is a name without a colon.
func isNCName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r < utf8.RuneSelf {
			c := class[r]
			if r == ':' || c&cName == 0 || i == 0 && c&cNameStart == 0 {
				return false
			}
			continue
		}
		if i == 0 && !isNameStartRune(r) || !isNameRune(r) {
			return false
		}
	}
	return true
}

// predefined resolves the five predefined entities.
func predefined(name string) (string, bool) {
	switch name {
	case "lt":
		return "<", true
	case "gt":
		return ">", true
	case "amp":
		return "&", true
	case "apos":
		return "'", true
	case "quot":
		return "\"", true
	}
	return "", false
}

// parseRef reads a reference starting at s[0] == '&'. It returns the
// replacement text, the reference's length, and "" or an error message.
func parseRef(s string) (rep string, n int, msg string) {
	end := strings.IndexByte(s, ';')
	if end < 0 || end > 40 {
		return "", 0, "'&' must start a reference (write &amp; for a literal &)"
	}
	body := s[1:end]
	if body == "" {
		return "", 0, "empty reference &;"
	}
	if body[0] != '#' {
		if rep, ok := predefined(body); ok {
			return rep, end + 1, ""
		}
		if !isNCName(body) {
			return "", 0, "malformed reference &" + body + ";"
		}
		return "", 0, "undefined entity &" + body + ";"
	}
	digits, base := body[1:], 10
	if strings.HasPrefix(digits, "x") {
		digits, base = digits[1:], 16
	}
	if digits == "" {
		return "", 0, "malformed character reference &" + body + ";"
	}
	var v rune
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		var d rune
		switch {
		case c >= '0' && c <= '9':
			d = rune(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = rune(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = rune(c-'A') + 10
		default:
			return "", 0, "malformed character reference &" + body + ";"
		}
		v = v*rune(base) + d
		if v > 0x10FFFF {
			return "", 0, "character reference &" + body + "; is out of range"
		}
	}
	if !isChar(v) {
		return "", 0, "character reference &" + body + "; is not an XML character"
	}
	return string(v), end + 1, ""
}

// decodeAttr returns the value of a raw attribute value known to be
// well-formed: references resolved, line ends and white space normalized.
func decodeAttr(raw string) string {
	// A reference is never shorter than what it stands for: one
	// allocation, which the Builder hands out without a copy.
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '&':
			rep, n, _ := parseRef(raw[i:])
			b.WriteString(rep)
			i += n - 1
		case '\r':
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
			b.WriteByte(' ')
		case '\n', '\t':
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// plainText returns raw character data unchanged when it holds nothing to
// decode or skip.
func plainText(raw string) (string, bool) {
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c == '<' || c == '&' || c == '\r' {
			return "", false
		}
	}
	return raw, true
}

// appendContentText appends the character data of well-formed content that
// holds no elements: text (decoded), CDATA sections (raw); comments and
// processing instructions are skipped. Line ends become "\n".
func appendContentText(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '<':
			switch {
			case strings.HasPrefix(s[i:], "<!--"):
				i += 4 + strings.Index(s[i+4:], "-->") + 2
			case strings.HasPrefix(s[i:], "<?"):
				i += 2 + strings.Index(s[i+2:], "?>") + 1
			case strings.HasPrefix(s[i:], "<![CDATA["):
				j := strings.Index(s[i+9:], "]]>")
				b = appendNewlines(b, s[i+9:i+9+j])
				i += 9 + j + 2
			}
		case '&':
			rep, n, _ := parseRef(s[i:])
			b = append(b, rep...)
			i += n - 1
		case '\r':
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			b = append(b, '\n')
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendNewlines appends s with "\r\n" and "\r" turned into "\n".
func appendNewlines(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' {
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			c = '\n'
		}
		b = append(b, c)
	}
	return b
}

// EscapeAttr escapes s for use as an attribute value between quote
// characters: & < and the quote become references, and so do tab, CR and LF
// (which a literal value would turn into spaces). Characters XML does not
// allow, and invalid UTF-8, become U+FFFD.
func EscapeAttr(s string, quote byte) string {
	return escape(s, func(r rune) string {
		switch r {
		case '&':
			return "&amp;"
		case '<':
			return "&lt;"
		case '\n':
			return "&#10;"
		case '\r':
			return "&#13;"
		case '\t':
			return "&#9;"
		case '\'':
			if quote == '\'' {
				return "&apos;"
			}
		case '"':
			if quote != '\'' {
				return "&quot;"
			}
		}
		return ""
	})
}

// EscapeText escapes s for use as character data: & < > become references,
// and so does CR (which a literal would turn into a line feed). Characters
// XML does not allow, and invalid UTF-8, become U+FFFD.
func EscapeText(s string) string {
	return escape(s, func(r rune) string {
		switch r {
		case '&':
			return "&amp;"
		case '<':
			return "&lt;"
		case '>':
			return "&gt;"
		case '\r':
			return "&#13;"
		}
		return ""
	})
}

func escape(s string, rep func(rune) string) string {
	var b *strings.Builder
	last := 0
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		var with string
		switch {
		case r == utf8.RuneError && n == 1 || !isChar(r):
			with = "\uFFFD"
		default:
			with = rep(r)
		}
		if with != "" {
			if b == nil {
				b = new(strings.Builder)
				b.Grow(len(s) + 16)
			}
			b.WriteString(s[last:i])
			b.WriteString(with)
			last = i + n
		}
		i += n
	}
	if b == nil {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}
