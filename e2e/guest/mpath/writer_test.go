package main

import (
	"errors"
	"strings"
	"testing"
)

// memDevice is a block device in memory; it can fail I/O or return stale data.
type memDevice struct {
	data  []byte
	fail  bool
	stale map[int64][]byte // offset -> what a read returns instead of the data
}

func (m *memDevice) ReadAt(b []byte, off int64) (int, error) {
	if m.fail {
		return 0, errors.New("input/output error")
	}
	if s, ok := m.stale[off]; ok {
		return copy(b, s), nil
	}
	return copy(b, m.data[off:off+int64(len(b))]), nil
}

func (m *memDevice) WriteAt(b []byte, off int64) (int, error) {
	if m.fail {
		return 0, errors.New("input/output error")
	}
	return copy(m.data[off:], b), nil
}

func TestBlocks(t *testing.T) {
	b := make([]byte, blockSize)
	fillBlock(b, 7, 2)
	if err := checkBlock(b, 7, 2); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		block, gen uint64
		want       string
	}{
		{7, 3, "holds block 7 generation 2, want generation 3"},
		{8, 2, "holds block 7 generation 2"},
	} {
		if err := checkBlock(b, tc.block, tc.gen); !errors.Is(err, errBadBlock) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("block %d gen %d: %v", tc.block, tc.gen, err)
		}
	}
	b[100] ^= 1
	if err := checkBlock(b, 7, 2); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("a flipped bit: %v", err)
	}
	other := make([]byte, blockSize)
	fillBlock(other, 7, 1)
	if string(other[24:64]) == string(b[24:64]) {
		t.Error("two generations of a block have the same payload")
	}
}

func TestWriter(t *testing.T) {
	const blocks = 4
	dev := &memDevice{data: make([]byte, blocks*blockSize)}
	var c counters
	var logged []string
	w := newWriter(dev, blocks, make([]byte, blockSize), make([]byte, blockSize), &c, func(f string, a ...any) {
		logged = append(logged, f)
	})
	for range 10 { // two and a half passes
		w.step()
	}
	if c.Written.Load() != 10 || c.IOErrors.Load() != 0 || c.Bad.Load() != 0 || c.Verified.Load() < 10 {
		t.Fatalf("written %d verified %d ioerr %d bad %d", c.Written.Load(), c.Verified.Load(), c.IOErrors.Load(), c.Bad.Load())
	}
	if w.gens[1] != 3 || w.gens[3] != 2 {
		t.Errorf("generations %v", w.gens)
	}

	// A path that returns an old generation of block 2 (written as generation 3 next).
	old := make([]byte, blockSize)
	fillBlock(old, 2, 2)
	dev.stale = map[int64][]byte{2 * blockSize: old}
	w.step() // write 10: block 2, generation 3
	if c.Bad.Load() == 0 {
		t.Error("a stale read is not counted bad")
	}
	dev.stale = nil

	dev.fail = true
	written := c.Written.Load()
	w.step()
	if c.IOErrors.Load() != 1 || c.Written.Load() != written {
		t.Errorf("failed write: ioerr %d written %d", c.IOErrors.Load(), c.Written.Load())
	}
	if w.gens[3] != 0 {
		t.Error("a block whose write failed is still expected to verify")
	}
	if len(logged) == 0 {
		t.Error("errors are not logged")
	}
}
