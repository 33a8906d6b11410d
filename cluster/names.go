package cluster

import "strings"

// ValidName reports whether name can be a worker's name: a NATS subject
// token and a file name, of letters, digits, - and _.
func ValidName(name string) bool {
	return name != "" && len(name) <= 64 && !strings.ContainsFunc(name, func(r rune) bool { return !nameRune(r) })
}

func nameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
}

// Name turns s (a host name, a label) into a worker name: other
// characters become _, and it is cut to 64 bytes.
func Name(s string) string {
	n := strings.Map(func(r rune) rune {
		if nameRune(r) {
			return r
		}
		return '_'
	}, s)
	return n[:min(len(n), 64)]
}
