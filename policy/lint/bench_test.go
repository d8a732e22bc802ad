package lint

import (
	"sync/atomic"
	"testing"

	"github.com/virt-failover/virt-failover/policy/lint/internal/corpus"
)

// BenchmarkLintCorpus lints a generated corpus of 1000 realistic domains (libvirt's shapes, a
// sixth of them without assigned devices, the rest with failover pairs of every kind) on all
// cores, parsing each file once, and reports files/s. The goal is at least 2000 files/s on a
// 2-core machine.
//
//	go test -run '^$' -bench LintCorpus ./policy/lint
func BenchmarkLintCorpus(b *testing.B) {
	const n = 1000
	files := make([][]byte, n)
	size := 0
	for i := range files {
		files[i] = corpus.Domain(i)
		size += len(files[i])
	}
	l, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size / n))
	b.ReportAllocs()
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) % n
			if _, err := l.Check("vm.xml", files[i]); err != nil {
				b.Error(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkLintOne is one typical paired domain on one core: what the hook pays at prepare.
func BenchmarkLintOne(b *testing.B) {
	src := corpus.Domain(1)
	l, err := New(Config{HookSafeOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Check("vm.xml", src); err != nil {
			b.Fatal(err)
		}
	}
}
