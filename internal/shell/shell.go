// Package shell writes words into command lines a person pastes into a POSIX shell: the hints of
// the hook and the CLI name domains and paths inside the commands they suggest, and a name such as
// x$(touch /tmp/p);id must reach the command as one word, never run.
package shell

import "strings"

// Quote returns s as one shell word: as it is when no shell treats any of its characters
// specially, else in single quotes, a single quote inside written as '\”.
func Quote(s string) string {
	safe := s != "" && s[0] != '=' // zsh expands a word that starts with '='
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.+:@%/=,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
