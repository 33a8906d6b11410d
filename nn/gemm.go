package nn

import (
	"runtime"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// gemm computes c = op(a)·op(b) + beta·c for row-major matrices, where op(a)
// is m×k and op(b) is k×n.
//
// It runs our own blocked GEMM around an assembly micro-kernel
// (kernel_amd64.s: 8×32 with AVX-512, 6×16 with AVX2 and FMA;
// kernel_arm64.s: 6×16 with NEON): gonum's float32 kernels top out near a
// third of the machine's FMA throughput on these shapes and allocate on
// every call. Without assembly (armv7, the purego tag) the driver runs a Go
// micro-kernel, and gonum's blas32.Gemm takes the large products.
func gemm(ta, tb blas.Transpose, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	record(ta, tb, m, n, k)
	g := gemmArgs{ta: ta == blas.Trans, tb: tb == blas.Trans, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc}
	if runtime.GOMAXPROCS(0) == 1 || m*n*k < 1<<21 {
		buf := getBuf()
		gemmOn(buf, &g)
		putBuf(buf)
		return
	}
	splitGemm(g)
}

// splitGemm is gemm across cores. It is a function of its own so that the
// closures below, which escape to the heap, are only made when it runs.
func splitGemm(g gemmArgs) {
	// Split C into row blocks, or column blocks when it has few rows, in
	// whole micro-tiles.
	sp := getSplit()
	sp.g = g
	sp.rows = g.m >= 2*mr*runtime.GOMAXPROCS(0) || g.m >= g.n
	if sp.rows {
		parallel((g.m+mr-1)/mr, sp.fn)
	} else {
		parallel((g.n+nr-1)/nr, sp.fn)
	}
	sp.g = gemmArgs{} // drop the operands
	select {
	case splits <- sp:
	default:
	}
}

// gemmSplit is one split GEMM's shared state. Its range function is bound
// once and the structs are recycled, so a split GEMM allocates nothing
// (a closure over the arguments would escape to the workers every call).
type gemmSplit struct {
	g    gemmArgs
	rows bool
	fn   func(lo, hi int, buf *gemmBuf)
}

var splits = make(chan *gemmSplit, 16)

func getSplit() *gemmSplit {
	select {
	case sp := <-splits:
		return sp
	default:
		sp := new(gemmSplit)
		sp.fn = sp.run
		return sp
	}
}

// run computes the row blocks [lo, hi) (in micro-tiles) of C, or its
// column blocks.
func (sp *gemmSplit) run(lo, hi int, buf *gemmBuf) {
	s := sp.g
	if sp.rows {
		s.m = min(hi*mr, sp.g.m) - lo*mr
		s.c = s.c[lo*mr*s.ldc:]
		if s.ta {
			s.a = s.a[lo*mr:]
		} else {
			s.a = s.a[lo*mr*s.lda:]
		}
	} else {
		s.n = min(hi*nr, sp.g.n) - lo*nr
		s.c = s.c[lo*nr:]
		if s.tb {
			s.b = s.b[lo*nr*s.ldb:]
		} else {
			s.b = s.b[lo*nr:]
		}
	}
	gemmOn(buf, &s)
}

// gemmOn runs a GEMM on the calling goroutine with the given packing space.
// Code that already runs in parallel (one batch range per core) calls it
// instead of gemm.
func gemmOn(buf *gemmBuf, g *gemmArgs) {
	if g.m == 0 || g.n == 0 {
		return
	}
	// One transposed operand and a short side: computing Cᵀ reads the
	// large operand in place (see transposedGemm). A·Bᵀ with a short A is
	// the input gradient of a dense layer, Aᵀ·B with a narrow B its weight
	// gradient when the layer has few outputs (logistic regression's 10).
	if haveKernel && g.ta != g.tb && ((g.tb && 4*g.m <= g.n) || (g.ta && g.n <= nr && 4*g.n <= g.m)) {
		transposedGemm(buf, g)
		return
	}
	if !haveKernel || (!kernelReadsBInPlace && g.m*g.n*g.k >= goKernelMax) {
		ta, tb := blas.NoTrans, blas.NoTrans
		if g.ta {
			ta = blas.Trans
		}
		if g.tb {
			tb = blas.Trans
		}
		gonumGemm(ta, tb, g.m, g.n, g.k, g.a, g.lda, g.b, g.ldb, g.beta, g.c, g.ldc)
		return
	}
	serialGemm(g, buf)
}

func gonumGemm(ta, tb blas.Transpose, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ar, ac := m, k
	if ta == blas.Trans {
		ar, ac = k, m
	}
	br, bc := k, n
	if tb == blas.Trans {
		br, bc = n, k
	}
	blas32.Gemm(ta, tb, 1,
		blas32.General{Rows: ar, Cols: ac, Stride: lda, Data: a},
		blas32.General{Rows: br, Cols: bc, Stride: ldb, Data: b},
		beta,
		blas32.General{Rows: m, Cols: n, Stride: ldc, Data: c})
}

// Register blocking of the micro-kernel and cache blocking of the driver:
// a kc×nc panel of B (256 KB) stays in L2 while mr-row slivers of A stream
// through L1. The kernel's block mr×nr is chosen with the kernel (useISA):
// 6×16 (two AVX2 registers a row, four NEON ones, the Go kernel's strips)
// or 8×32 (two AVX-512 registers a row).
var mr, nr = 6, 16

const (
	mrMax = 8
	nrMax = 32
	kc    = 256
	nc    = 256

	l2Floats    = 96 << 10  // 384 KB of B per block when it is read in place
	bigB        = 1 << 20   // floats of a B (4 MB) that will not be in cache
	inPlaceSpan = 100 << 10 // at most 400 KB between a k-block's first and last row of B
)

type gemmArgs struct {
	ta, tb  bool
	m, n, k int
	a       []float32
	lda     int
	b       []float32
	ldb     int
	beta    float32
	c       []float32
	ldc     int

	// packed, when set, is op(b) already packed by packAllB (so n ≤ nc,
	// one column block): a GEMM repeated on many blocks of A against the
	// same B (a convolution's weights, one chunk of samples at a time)
	// packs it once.
	packed []float32
}

// gemmBuf is one goroutine's packing space, reused across calls.
type gemmBuf struct {
	pa  [mrMax * kc]float32
	pb  [kc * nc]float32
	tmp [mrMax * nrMax]float32
	t   []float32 // result of transposedGemm before it is transposed back

	// scratch is the calling layer's, for a block it computes and
	// consumes within one range (a convolution's lowered gradient).
	scratch []float32
}

// transposedGemm computes C = A·Bᵀ for a short A (few rows, e.g. a
// mini-batch) as Cᵀ = B·Aᵀ, and C = Aᵀ·B for a narrow B as Cᵀ = Bᵀ·A: the
// large operand is then read in place instead of being packed transposed
// on every call, and only the small one and the m×n result are shuffled.
func transposedGemm(buf *gemmBuf, g *gemmArgs) {
	m, n := g.m, g.n
	buf.t = grow(buf.t, m*n)
	t := gemmArgs{ta: !g.tb, tb: !g.ta, m: n, n: m, k: g.k, a: g.b, lda: g.ldb, b: g.a, ldb: g.lda, c: buf.t, ldc: m}
	serialGemm(&t, buf)
	// Back to C one row of Cᵀ at a time: reads are sequential and the
	// strided writes stay within C, which is small on this path.
	j := 0
	if g.beta == 0 {
		// Four rows of Cᵀ at a time fill four adjacent values of each
		// row of C.
		for ; j+4 <= n; j += 4 {
			t0, t1, t2, t3 := buf.t[j*m:j*m+m], buf.t[(j+1)*m:(j+1)*m+m], buf.t[(j+2)*m:(j+2)*m+m], buf.t[(j+3)*m:(j+3)*m+m]
			for i := range t0 {
				c := g.c[i*g.ldc+j : i*g.ldc+j+4 : i*g.ldc+j+4]
				c[0], c[1], c[2], c[3] = t0[i], t1[i], t2[i], t3[i]
			}
		}
	}
	for ; j < n; j++ {
		src := buf.t[j*m : j*m+m]
		c := g.c[j:]
		switch g.beta {
		case 0:
			for i, v := range src {
				c[i*g.ldc] = v
			}
		case 1:
			for i, v := range src {
				c[i*g.ldc] += v
			}
		default:
			for i, v := range src {
				c[i*g.ldc] = g.beta*c[i*g.ldc] + v
			}
		}
	}
}

// serialGemm is the blocked GEMM on one core: for each kc×nc panel of
// op(b), packed once, it packs each mr-row sliver of op(a) and runs the
// micro-kernel over the panel's nr-column strips.
func serialGemm(g *gemmArgs, buf *gemmBuf) {
	if g.k == 0 || g.beta != 0 {
		scaleC(g)
	}
	// A B read in place with long rows spans many pages per k-block (a
	// weight gradient's lowered input: 256 rows of 3,200 bytes are 200
	// pages, more than the first-level TLB holds): shorter k-blocks keep
	// the span near 400 KB. On 64×800×3136 TN, k-blocks of 125 rows ran
	// 3-8% faster than 256 in five alternating runs (AVX-512).
	kcb := kc
	if !g.tb && kernelReadsBInPlace && g.packed == nil {
		kcb = min(kc, max(64, inPlaceSpan/g.ldb))
	}
	for pc := 0; pc < g.k; pc += kcb {
		kb := min(kcb, g.k-pc)
		// With beta = 0 the first k-block overwrites C, so C is neither
		// cleared beforehand nor read.
		store := pc == 0 && g.beta == 0
		// A row-major B is read in place by the assembly kernels:
		// packing it would copy the largest operand of the
		// weight-gradient GEMMs on every call. Its last, partial strip
		// goes to a kernel that masks the missing columns (a narrow
		// layer's weights, 10 columns, would otherwise be copied and
		// padded on every step). Without a pack buffer to fill, the
		// column block can be as wide as fits in L2, so that A is
		// packed fewer times.
		inPlace := !g.tb && kernelReadsBInPlace && g.packed == nil
		// A weight gradient's B (a layer's input, lowered) streams from
		// memory, at a stride the hardware prefetchers miss: the kernel
		// prefetches it itself (for every sliver of A: prefetching for
		// the first only gained half as much). So does a B larger than
		// the caches hold between two uses: the CNN's dense weights
		// (6.4 MB) in the forward pass, evicted by the rest of the step
		// (its training step +4%, median of 8 alternations).
		stream := inPlace && (g.ta || g.k*g.n > bigB)
		ncb := nc
		if inPlace {
			ncb = max(nc, l2Floats/kb/nr*nr)
		}
		for jc := 0; jc < g.n; jc += ncb {
			nb := min(ncb, g.n-jc)
			pbuf := buf.pb[:]
			switch {
			case g.packed != nil:
				pbuf = g.packed[pc*roundUp(g.n, nr):]
			case !inPlace:
				packB(g, pbuf, pc, kb, jc, nb)
			}
			for ir := 0; ir < g.m; ir += mr {
				mb := min(mr, g.m-ir)
				// A row-major A with mr rows is read in place too; a
				// transposed or short sliver is packed as mr rows of kb.
				// So is a transposed A by the kernels that can
				// (transposedA), when B is read in place too.
				aT := g.ta && mb == mr && inPlace && transposedA()
				pa, lda := buf.pa[:], kb
				switch {
				case aT:
					pa, lda = g.a[pc*g.lda+ir:], g.lda
				case !g.ta && mb == mr:
					pa, lda = g.a[ir*g.lda+pc:], g.lda
				default:
					packA(g, buf.pa[:], ir, mb, pc, kb)
				}
				for jr := 0; jr < nb; jr += nr {
					wb := min(nr, nb-jr)
					var pb []float32
					ldb := nr
					if inPlace {
						pb, ldb = g.b[pc*g.ldb+jc+jr:], g.ldb
					} else {
						pb = pbuf[jr*kb:]
					}
					if aT && wb == nr {
						// Every whole strip left in one call.
						s := (nb - jr) / nr
						kernelT(kb, pa, lda, pb, ldb, s, g.c[ir*g.ldc+jc+jr:], g.ldc, store, stream)
						jr += (s - 1) * nr
						continue
					}
					// A packed strip no wider than half the kernel
					// (zero-padded to nr) goes to the half-width
					// kernel: a C = A·Bᵀ computed as Cᵀ for a
					// mini-batch of 16 has 16 columns.
					half := wide && !inPlace && 2*wb <= nr
					switch {
					case aT:
						kernelTNarrow(kb, pa, lda, pb, ldb, wb, buf.tmp[:])
					case half && mb == mr && 2*wb == nr:
						kernelHalf(kb, pa, lda, pb, ldb, g.c[ir*g.ldc+jc+jr:], g.ldc, store)
						continue
					case half:
						kernelHalf(kb, pa, lda, pb, ldb, buf.tmp[:], nr, true)
					case mb == mr && wb == nr && stream:
						kernelStream(kb, pa, lda, pb, ldb, g.c[ir*g.ldc+jc+jr:], g.ldc, store)
						continue
					case mb == mr && wb == nr:
						kernel(kb, pa, lda, pb, ldb, g.c[ir*g.ldc+jc+jr:], g.ldc, store)
						continue
					case inPlace && wb < nr:
						narrowKernel(kb, pa, lda, pb, ldb, buf.tmp[:], wb, buf.pb[:])
					default:
						kernel(kb, pa, lda, pb, ldb, buf.tmp[:], nr, true)
					}
					for i := 0; i < mb; i++ {
						row := g.c[(ir+i)*g.ldc+jc+jr : (ir+i)*g.ldc+jc+jr+wb]
						tmp := buf.tmp[i*nr : i*nr+wb]
						if store {
							copy(row, tmp)
							continue
						}
						for j, v := range tmp {
							row[j] += v
						}
					}
				}
			}
		}
	}
}

// packA copies op(a)[ir:ir+mb, pc:pc+kb] into pa as mr rows of kb values,
// zero-padding missing rows.
func packA(g *gemmArgs, pa []float32, ir, mb, pc, kb int) {
	if g.ta && mb == mr {
		// A transposed is read a row of op(a)ᵀ at a time: each read
		// takes mr adjacent values (one cache line) for the mr rows,
		// where a row of pa at a time would touch mr lines per value.
		for p := range kb {
			src := g.a[(pc+p)*g.lda+ir : (pc+p)*g.lda+ir+mr]
			for i, v := range src {
				pa[i*kb+p] = v
			}
		}
		return
	}
	for i := 0; i < mr; i++ {
		row := pa[i*kb : i*kb+kb]
		switch {
		case i >= mb:
			clear(row)
		case !g.ta:
			copy(row, g.a[(ir+i)*g.lda+pc:])
		default:
			for p := range row {
				row[p] = g.a[(pc+p)*g.lda+ir+i]
			}
		}
	}
}

// packB copies op(b)[pc:pc+kb, jc:jc+nb] into pb as nr-column strips, each
// kb rows of nr values, zero-padding the last strip.
func packB(g *gemmArgs, pb []float32, pc, kb, jc, nb int) {
	if !g.tb {
		// Row by row across the strips: B is read in the order it lies,
		// one page after another, not one value per row per strip.
		for p := 0; p < kb; p++ {
			row := g.b[(pc+p)*g.ldb+jc : (pc+p)*g.ldb+jc+nb]
			for jr := 0; jr < nb; jr += nr {
				d := pb[jr*kb+p*nr : jr*kb+p*nr+nr]
				if jr+nr <= nb {
					copy(d, row[jr:jr+nr])
					continue
				}
				wb := nb - jr
				for j := range d {
					if j < wb {
						d[j] = row[jr+j]
					} else {
						d[j] = 0
					}
				}
			}
		}
		return
	}
	for jr := 0; jr < nb; jr += nr {
		wb := min(nr, nb-jr)
		strip := pb[jr*kb : jr*kb+kb*nr]
		if wb < nr {
			clear(strip)
		}
		for j := 0; j < wb; j++ {
			src := g.b[(jc+jr+j)*g.ldb+pc : (jc+jr+j)*g.ldb+pc+kb]
			for p, v := range src {
				strip[p*nr+j] = v
			}
		}
	}
}

// packAllB packs the whole op(b) of g, k-block after k-block as serialGemm
// reads them (g.packed), into dst, grown as needed. It needs op(b) in one
// column block (n ≤ nc) and a B that serialGemm packs (g.tb, or a kernel
// that does not read B in place).
func packAllB(g *gemmArgs, dst []float32) []float32 {
	w := roundUp(g.n, nr)
	dst = grow(dst, g.k*w)
	for pc := 0; pc < g.k; pc += kc {
		kb := min(kc, g.k-pc)
		packB(g, dst[pc*w:], pc, kb, 0, g.n)
	}
	return dst
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// packNarrow copies the k×w B (w < nr) into pb as k rows of nr values,
// padded with zeros: a whole strip for kernels that cannot mask.
func packNarrow(k int, b []float32, ldb, w int, pb []float32) {
	for p := 0; p < k; p++ {
		d := pb[p*nr : p*nr+nr : p*nr+nr]
		for j, v := range b[p*ldb : p*ldb+w] {
			d[j] = v
		}
		for j := w; j < nr; j++ {
			d[j] = 0
		}
	}
}

// scaleC applies beta to c before the k-blocks are added to it.
func scaleC(g *gemmArgs) {
	for i := 0; i < g.m; i++ {
		row := g.c[i*g.ldc : i*g.ldc+g.n]
		if g.beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= g.beta
		}
	}
}
