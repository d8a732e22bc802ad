// Command parsecheck reads a document on stdin as the hook does (at most
// 64 MiB, with io.ReadAll), parses it with xmlxform.Parse, and prints one
// line of figures:
//
//	outcome=ok size=1048576 elements=20000 parse=12.3ms cpu=12ms hwm=41232KiB vmpeak=812345KiB
//
// parse is the wall time of Parse and cpu the CPU time of the process in it;
// hwm and vmpeak are the peak resident set and the peak address space of the
// process (VmHWM and VmPeak, which ulimit -v limits).
//
// The outcome is ok, limit (errors.Is(err, xmlxform.ErrLimit)) or syntax
// (any other *xmlxform.SyntaxError); the line then ends with the error. It
// exits 0 for each of these, and 1 when it cannot read its input. The limits
// test runs it under ulimit -v; it also serves whole-process measurements
// (/usr/bin/time -v parsecheck < in.xml).
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/virt-failover/virt-failover/xmlxform"
)

// maxInput is the hook's input cap (hooks.DefaultMaxInput).
const maxInput = 64 << 20

func main() {
	src, err := io.ReadAll(io.LimitReader(os.Stdin, maxInput+1))
	if err != nil || len(src) > maxInput {
		fmt.Fprintf(os.Stderr, "parsecheck: stdin: %v (%d bytes)\n", err, len(src))
		os.Exit(1)
	}
	cpu0 := cpuTime()
	start := time.Now()
	d, err := xmlxform.Parse(src)
	took := time.Since(start)
	cpu := cpuTime() - cpu0
	outcome, n := "ok", 0
	var se *xmlxform.SyntaxError
	switch {
	case err == nil:
		n = d.Len()
	case errors.Is(err, xmlxform.ErrLimit):
		outcome = "limit"
	case errors.As(err, &se):
		outcome = "syntax"
	default:
		outcome = "other"
	}
	fmt.Printf("outcome=%s size=%d elements=%d parse=%v cpu=%v hwm=%dKiB vmpeak=%dKiB",
		outcome, len(src), n, took.Round(time.Microsecond), cpu.Round(time.Millisecond), status("VmHWM:"), status("VmPeak:"))
	if err != nil {
		fmt.Printf(" err=%q", err.Error())
	}
	fmt.Println()
}

// cpuTime returns the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// status returns a figure in KiB from /proc/self/status. (getrusage's
// ru_maxrss will not do: it counts the parent's resident set from before
// exec, as Go starts children with vfork.)
func status(field string) int64 {
	b, _ := os.ReadFile("/proc/self/status")
	_, rest, _ := bytes.Cut(b, []byte(field))
	var kib int64
	fmt.Sscan(string(rest), &kib)
	return kib
}
