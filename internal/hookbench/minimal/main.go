// Command minimal is the baseline of the hook benchmark: the smallest static Go program that does
// what every hook must do, read its stdin to the end and exit 0.
package main

import (
	"io"
	"os"
)

func main() {
	_, _ = io.Copy(io.Discard, os.Stdin)
}
