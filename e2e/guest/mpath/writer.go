package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync/atomic"
	"time"
)

// The writer writes checksummed blocks through the multipath device and reads them back. A block
// holds its own identity, so a read that returns another block, an older generation of it or
// garbage is caught:
//
//	[0,8) "VFOBLK01"  [8,16) block number  [16,24) generation  [24,4092) payload  [4092,4096) CRC-32C of [0,4092)
//
// The payload is a xorshift stream seeded by block and generation. Block n%blocks of write n
// gets generation n/blocks+1.
const (
	blockSize  = 4096
	blockMagic = "VFOBLK01"
	crcAt      = blockSize - 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func fillBlock(b []byte, block, gen uint64) {
	ne := binary.LittleEndian
	copy(b[0:8], blockMagic)
	ne.PutUint64(b[8:], block)
	ne.PutUint64(b[16:], gen)
	x := block*0x9e3779b97f4a7c15 ^ gen*0xc2b2ae3d27d4eb4f | 1
	for i := 24; i+8 <= crcAt; i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		ne.PutUint64(b[i:], x)
	}
	ne.PutUint32(b[crcAt:], crc32.Checksum(b[:crcAt], castagnoli))
}

// errBadBlock is a block that reads back wrong (its checksum, identity or content).
var errBadBlock = errors.New("bad block")

// checkBlock verifies that b is block number block of generation gen.
func checkBlock(b []byte, block, gen uint64) error {
	ne := binary.LittleEndian
	if got, want := ne.Uint32(b[crcAt:]), crc32.Checksum(b[:crcAt], castagnoli); got != want {
		return fmt.Errorf("%w %d: checksum %08x, computed %08x", errBadBlock, block, got, want)
	}
	if string(b[0:8]) != blockMagic {
		return fmt.Errorf("%w %d: no block header", errBadBlock, block)
	}
	if n, g := ne.Uint64(b[8:]), ne.Uint64(b[16:]); n != block || g != gen {
		return fmt.Errorf("%w %d: holds block %d generation %d, want generation %d", errBadBlock, block, n, g, gen)
	}
	want := make([]byte, blockSize)
	fillBlock(want, block, gen)
	for i := range want {
		if b[i] != want[i] {
			return fmt.Errorf("%w %d: byte %d differs", errBadBlock, block, i)
		}
	}
	return nil
}

type blockDevice interface {
	io.ReaderAt
	io.WriterAt
}

// counters are what the heartbeat reports of the writer.
type counters struct {
	Written  atomic.Int64 // blocks written
	Verified atomic.Int64 // blocks read back and found right
	IOErrors atomic.Int64 // reads and writes that failed
	Bad      atomic.Int64 // blocks that read back wrong
}

type writer struct {
	dev      blockDevice
	blocks   uint64
	gens     []uint64 // generation each block holds; 0: unknown (never written, or a write failed)
	n        uint64   // writes so far
	rnd      uint64
	wbuf     []byte // aligned for O_DIRECT
	rbuf     []byte
	c        *counters
	logf     func(format string, args ...any)
	reported int
}

func newWriter(dev blockDevice, blocks uint64, wbuf, rbuf []byte, c *counters, logf func(string, ...any)) *writer {
	return &writer{dev: dev, blocks: blocks, gens: make([]uint64, blocks), rnd: 0x2545f4914f6cdd1d,
		wbuf: wbuf, rbuf: rbuf, c: c, logf: logf}
}

// step writes the next block, reads it back, and reads back one block written earlier.
func (w *writer) step() {
	block, gen := w.n%w.blocks, w.n/w.blocks+1
	w.n++
	fillBlock(w.wbuf, block, gen)
	if _, err := w.dev.WriteAt(w.wbuf, int64(block)*blockSize); err != nil {
		w.gens[block] = 0
		w.c.IOErrors.Add(1)
		w.report("write of block %d: %v", block, err)
		return
	}
	w.gens[block] = gen
	w.c.Written.Add(1)
	w.verify(block)
	w.rnd ^= w.rnd << 13
	w.rnd ^= w.rnd >> 7
	w.rnd ^= w.rnd << 17
	if older := w.rnd % min(w.n, w.blocks); w.gens[older] != 0 {
		w.verify(older)
	}
}

func (w *writer) verify(block uint64) {
	if _, err := w.dev.ReadAt(w.rbuf, int64(block)*blockSize); err != nil {
		w.c.IOErrors.Add(1)
		w.report("read of block %d: %v", block, err)
		return
	}
	if err := checkBlock(w.rbuf, block, w.gens[block]); err != nil {
		w.c.Bad.Add(1)
		w.report("%v", err)
		return
	}
	w.c.Verified.Add(1)
}

// report logs the first errors (the counters keep counting).
func (w *writer) report(format string, args ...any) {
	if w.reported < 20 {
		w.reported++
		w.logf("writer: "+format, args...)
	}
}

// run writes one block per period, for ever.
func (w *writer) run(period time.Duration) {
	for {
		start := time.Now()
		w.step()
		time.Sleep(period - time.Since(start))
	}
}
