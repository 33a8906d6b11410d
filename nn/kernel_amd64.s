//go:build amd64 && !purego

#include "textflag.h"

// func kernel6x16(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, store bool)
//
// C[0:6, 0:16] (+)= A[0:6, 0:k] · B[0:k, 0:16], all row-major with the given
// row strides. Y0..Y11 accumulate C (two YMM per row), Y12/Y13 hold a row of
// B, Y14/Y15 broadcast elements of A. A's six rows are addressed from SI and
// R11 = SI + 3·lda so that every row is one scaled-index operand.
TEXT ·kernel6x16(SB), NOSPLIT, $0-57
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R10
	SHLQ $2, R10
	MOVQ b+24(FP), DI
	MOVQ ldb+32(FP), R9
	SHLQ $2, R9
	MOVQ c+40(FP), DX
	MOVQ ldc+48(FP), R8
	SHLQ $2, R8
	LEAQ (SI)(R10*2), R11
	ADDQ R10, R11

	// C's block is read and written after the loop: ask for its lines
	// now, so that their misses overlap the arithmetic.
	MOVQ DX, AX
	PREFETCHT0 (AX)
	PREFETCHT0 60(AX)
	ADDQ R8, AX
	PREFETCHT0 (AX)
	PREFETCHT0 60(AX)
	ADDQ R8, AX
	PREFETCHT0 (AX)
	PREFETCHT0 60(AX)
	ADDQ R8, AX
	PREFETCHT0 (AX)
	PREFETCHT0 60(AX)
	ADDQ R8, AX
	PREFETCHT0 (AX)
	PREFETCHT0 60(AX)
	ADDQ R8, AX
	PREFETCHT0 (AX)
	PREFETCHT0 60(AX)

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

loop:
	VMOVUPS (DI), Y12
	VMOVUPS 32(DI), Y13
	VBROADCASTSS (SI), Y14
	VBROADCASTSS (SI)(R10*1), Y15
	VFMADD231PS Y12, Y14, Y0
	VFMADD231PS Y13, Y14, Y1
	VFMADD231PS Y12, Y15, Y2
	VFMADD231PS Y13, Y15, Y3
	VBROADCASTSS (SI)(R10*2), Y14
	VBROADCASTSS (R11), Y15
	VFMADD231PS Y12, Y14, Y4
	VFMADD231PS Y13, Y14, Y5
	VFMADD231PS Y12, Y15, Y6
	VFMADD231PS Y13, Y15, Y7
	VBROADCASTSS (SI)(R10*4), Y14
	VBROADCASTSS (R11)(R10*2), Y15
	VFMADD231PS Y12, Y14, Y8
	VFMADD231PS Y13, Y14, Y9
	VFMADD231PS Y12, Y15, Y10
	VFMADD231PS Y13, Y15, Y11
	ADDQ $4, SI
	ADDQ $4, R11
	ADDQ R9, DI
	DECQ CX
	JNZ loop

	MOVBLZX store+56(FP), AX
	TESTQ AX, AX
	JNZ overwrite

	VADDPS (DX), Y0, Y0
	VMOVUPS Y0, (DX)
	VADDPS 32(DX), Y1, Y1
	VMOVUPS Y1, 32(DX)
	ADDQ R8, DX
	VADDPS (DX), Y2, Y2
	VMOVUPS Y2, (DX)
	VADDPS 32(DX), Y3, Y3
	VMOVUPS Y3, 32(DX)
	ADDQ R8, DX
	VADDPS (DX), Y4, Y4
	VMOVUPS Y4, (DX)
	VADDPS 32(DX), Y5, Y5
	VMOVUPS Y5, 32(DX)
	ADDQ R8, DX
	VADDPS (DX), Y6, Y6
	VMOVUPS Y6, (DX)
	VADDPS 32(DX), Y7, Y7
	VMOVUPS Y7, 32(DX)
	ADDQ R8, DX
	VADDPS (DX), Y8, Y8
	VMOVUPS Y8, (DX)
	VADDPS 32(DX), Y9, Y9
	VMOVUPS Y9, 32(DX)
	ADDQ R8, DX
	VADDPS (DX), Y10, Y10
	VMOVUPS Y10, (DX)
	VADDPS 32(DX), Y11, Y11
	VMOVUPS Y11, 32(DX)
	VZEROUPPER
	RET

overwrite:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	ADDQ R8, DX
	VMOVUPS Y2, (DX)
	VMOVUPS Y3, 32(DX)
	ADDQ R8, DX
	VMOVUPS Y4, (DX)
	VMOVUPS Y5, 32(DX)
	ADDQ R8, DX
	VMOVUPS Y6, (DX)
	VMOVUPS Y7, 32(DX)
	ADDQ R8, DX
	VMOVUPS Y8, (DX)
	VMOVUPS Y9, 32(DX)
	ADDQ R8, DX
	VMOVUPS Y10, (DX)
	VMOVUPS Y11, 32(DX)
	VZEROUPPER
	RET

// func kernel6x16n(k int, a *float32, lda int, b *float32, ldb int, c *float32, mask *int32)
//
// C[0:6, 0:16] = A[0:6, 0:k] · B[0:k, 0:w] for a B narrower than 16 columns
// read in place: its first 8 columns whole, the rest through mask (8 lanes,
// -1 for the columns that exist), so no padded copy of B is made and no
// load touches memory past a row's end. C is written whole (ldc 16), the
// missing columns as zeros. 8 < w < 16.
TEXT ·kernel6x16n(SB), NOSPLIT, $0-56
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R10
	SHLQ $2, R10
	MOVQ b+24(FP), DI
	MOVQ ldb+32(FP), R9
	SHLQ $2, R9
	MOVQ c+40(FP), DX
	MOVQ mask+48(FP), AX
	VMOVUPS (AX), Y15
	LEAQ (SI)(R10*2), R11
	ADDQ R10, R11

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

loopn:
	VMOVUPS (DI), Y12
	VMASKMOVPS 32(DI), Y15, Y13
	VBROADCASTSS (SI), Y14
	VFMADD231PS Y12, Y14, Y0
	VFMADD231PS Y13, Y14, Y1
	VBROADCASTSS (SI)(R10*1), Y14
	VFMADD231PS Y12, Y14, Y2
	VFMADD231PS Y13, Y14, Y3
	VBROADCASTSS (SI)(R10*2), Y14
	VFMADD231PS Y12, Y14, Y4
	VFMADD231PS Y13, Y14, Y5
	VBROADCASTSS (R11), Y14
	VFMADD231PS Y12, Y14, Y6
	VFMADD231PS Y13, Y14, Y7
	VBROADCASTSS (SI)(R10*4), Y14
	VFMADD231PS Y12, Y14, Y8
	VFMADD231PS Y13, Y14, Y9
	VBROADCASTSS (R11)(R10*2), Y14
	VFMADD231PS Y12, Y14, Y10
	VFMADD231PS Y13, Y14, Y11
	ADDQ $4, SI
	ADDQ $4, R11
	ADDQ R9, DI
	DECQ CX
	JNZ loopn

	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y3, 96(DX)
	VMOVUPS Y4, 128(DX)
	VMOVUPS Y5, 160(DX)
	VMOVUPS Y6, 192(DX)
	VMOVUPS Y7, 224(DX)
	VMOVUPS Y8, 256(DX)
	VMOVUPS Y9, 288(DX)
	VMOVUPS Y10, 320(DX)
	VMOVUPS Y11, 352(DX)
	VZEROUPPER
	RET

// func kernel6x8n(k int, a *float32, lda int, b *float32, ldb int, c *float32, mask *int32)
//
// kernel6x16n for w <= 8: B's columns all through the mask, and only
// C[0:6, 0:8] written (ldc 16).
TEXT ·kernel6x8n(SB), NOSPLIT, $0-56
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R10
	SHLQ $2, R10
	MOVQ b+24(FP), DI
	MOVQ ldb+32(FP), R9
	SHLQ $2, R9
	MOVQ c+40(FP), DX
	MOVQ mask+48(FP), AX
	VMOVUPS (AX), Y15
	LEAQ (SI)(R10*2), R11
	ADDQ R10, R11

	VXORPS Y0, Y0, Y0
	VXORPS Y2, Y2, Y2
	VXORPS Y4, Y4, Y4
	VXORPS Y6, Y6, Y6
	VXORPS Y8, Y8, Y8
	VXORPS Y10, Y10, Y10

loop8:
	VMASKMOVPS (DI), Y15, Y12
	VBROADCASTSS (SI), Y14
	VFMADD231PS Y12, Y14, Y0
	VBROADCASTSS (SI)(R10*1), Y13
	VFMADD231PS Y12, Y13, Y2
	VBROADCASTSS (SI)(R10*2), Y14
	VFMADD231PS Y12, Y14, Y4
	VBROADCASTSS (R11), Y13
	VFMADD231PS Y12, Y13, Y6
	VBROADCASTSS (SI)(R10*4), Y14
	VFMADD231PS Y12, Y14, Y8
	VBROADCASTSS (R11)(R10*2), Y13
	VFMADD231PS Y12, Y13, Y10
	ADDQ $4, SI
	ADDQ $4, R11
	ADDQ R9, DI
	DECQ CX
	JNZ loop8

	VMOVUPS Y0, (DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y4, 128(DX)
	VMOVUPS Y6, 192(DX)
	VMOVUPS Y8, 256(DX)
	VMOVUPS Y10, 320(DX)
	VZEROUPPER
	RET

// func fmaLoop256(n int)
//
// n iterations of 12 independent 8-lane FMAs on registers only: the
// core's FMA throughput with nothing else in the way (12 chains cover the
// latency of two FMA pipes).
TEXT ·fmaLoop256(SB), NOSPLIT, $0-8
	MOVQ n+0(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13

fma256:
	VFMADD231PS Y12, Y13, Y0
	VFMADD231PS Y12, Y13, Y1
	VFMADD231PS Y12, Y13, Y2
	VFMADD231PS Y12, Y13, Y3
	VFMADD231PS Y12, Y13, Y4
	VFMADD231PS Y12, Y13, Y5
	VFMADD231PS Y12, Y13, Y6
	VFMADD231PS Y12, Y13, Y7
	VFMADD231PS Y12, Y13, Y8
	VFMADD231PS Y12, Y13, Y9
	VFMADD231PS Y12, Y13, Y10
	VFMADD231PS Y12, Y13, Y11
	DECQ CX
	JNZ fma256
	VZEROUPPER
	RET

// func fmaLoop512(n int)
//
// fmaLoop256 with 16-lane AVX-512 registers.
TEXT ·fmaLoop512(SB), NOSPLIT, $0-8
	MOVQ n+0(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13

fma512:
	VFMADD231PS Z12, Z13, Z0
	VFMADD231PS Z12, Z13, Z1
	VFMADD231PS Z12, Z13, Z2
	VFMADD231PS Z12, Z13, Z3
	VFMADD231PS Z12, Z13, Z4
	VFMADD231PS Z12, Z13, Z5
	VFMADD231PS Z12, Z13, Z6
	VFMADD231PS Z12, Z13, Z7
	VFMADD231PS Z12, Z13, Z8
	VFMADD231PS Z12, Z13, Z9
	VFMADD231PS Z12, Z13, Z10
	VFMADD231PS Z12, Z13, Z11
	DECQ CX
	JNZ fma512
	VZEROUPPER
	RET

// STEP832 is one k step of the 8×32 kernels: the row of B in Z16/Z17 times
// each of A's eight values, into Z0..Z15, then on to the next k.
#define STEP832 \
	VBROADCASTSS (SI), Z18; \
	VBROADCASTSS (SI)(R10*1), Z19; \
	VBROADCASTSS (SI)(R10*2), Z20; \
	VBROADCASTSS (R11), Z21; \
	VBROADCASTSS (SI)(R10*4), Z22; \
	VBROADCASTSS (R11)(R10*2), Z23; \
	VBROADCASTSS (R12), Z24; \
	VBROADCASTSS (R12)(R10*1), Z25; \
	VFMADD231PS Z16, Z18, Z0; \
	VFMADD231PS Z17, Z18, Z1; \
	VFMADD231PS Z16, Z19, Z2; \
	VFMADD231PS Z17, Z19, Z3; \
	VFMADD231PS Z16, Z20, Z4; \
	VFMADD231PS Z17, Z20, Z5; \
	VFMADD231PS Z16, Z21, Z6; \
	VFMADD231PS Z17, Z21, Z7; \
	VFMADD231PS Z16, Z22, Z8; \
	VFMADD231PS Z17, Z22, Z9; \
	VFMADD231PS Z16, Z23, Z10; \
	VFMADD231PS Z17, Z23, Z11; \
	VFMADD231PS Z16, Z24, Z12; \
	VFMADD231PS Z17, Z24, Z13; \
	VFMADD231PS Z16, Z25, Z14; \
	VFMADD231PS Z17, Z25, Z15; \
	ADDQ BX, SI; \
	ADDQ BX, R11; \
	ADDQ BX, R12; \
	ADDQ R9, DI;

// ADD832 adds Z0..Z15 to the 8×32 block of C at DX (row stride R8).
#define ADD832 \
	VADDPS (DX), Z0, Z0; \
	VMOVUPS Z0, (DX); \
	VADDPS 64(DX), Z1, Z1; \
	VMOVUPS Z1, 64(DX); \
	ADDQ R8, DX; \
	VADDPS (DX), Z2, Z2; \
	VMOVUPS Z2, (DX); \
	VADDPS 64(DX), Z3, Z3; \
	VMOVUPS Z3, 64(DX); \
	ADDQ R8, DX; \
	VADDPS (DX), Z4, Z4; \
	VMOVUPS Z4, (DX); \
	VADDPS 64(DX), Z5, Z5; \
	VMOVUPS Z5, 64(DX); \
	ADDQ R8, DX; \
	VADDPS (DX), Z6, Z6; \
	VMOVUPS Z6, (DX); \
	VADDPS 64(DX), Z7, Z7; \
	VMOVUPS Z7, 64(DX); \
	ADDQ R8, DX; \
	VADDPS (DX), Z8, Z8; \
	VMOVUPS Z8, (DX); \
	VADDPS 64(DX), Z9, Z9; \
	VMOVUPS Z9, 64(DX); \
	ADDQ R8, DX; \
	VADDPS (DX), Z10, Z10; \
	VMOVUPS Z10, (DX); \
	VADDPS 64(DX), Z11, Z11; \
	VMOVUPS Z11, 64(DX); \
	ADDQ R8, DX; \
	VADDPS (DX), Z12, Z12; \
	VMOVUPS Z12, (DX); \
	VADDPS 64(DX), Z13, Z13; \
	VMOVUPS Z13, 64(DX); \
	ADDQ R8, DX; \
	VADDPS (DX), Z14, Z14; \
	VMOVUPS Z14, (DX); \
	VADDPS 64(DX), Z15, Z15; \
	VMOVUPS Z15, 64(DX);

// STORE832 writes Z0..Z15 over the 8×32 block of C at DX (row stride R8).
#define STORE832 \
	VMOVUPS Z0, (DX); \
	VMOVUPS Z1, 64(DX); \
	ADDQ R8, DX; \
	VMOVUPS Z2, (DX); \
	VMOVUPS Z3, 64(DX); \
	ADDQ R8, DX; \
	VMOVUPS Z4, (DX); \
	VMOVUPS Z5, 64(DX); \
	ADDQ R8, DX; \
	VMOVUPS Z6, (DX); \
	VMOVUPS Z7, 64(DX); \
	ADDQ R8, DX; \
	VMOVUPS Z8, (DX); \
	VMOVUPS Z9, 64(DX); \
	ADDQ R8, DX; \
	VMOVUPS Z10, (DX); \
	VMOVUPS Z11, 64(DX); \
	ADDQ R8, DX; \
	VMOVUPS Z12, (DX); \
	VMOVUPS Z13, 64(DX); \
	ADDQ R8, DX; \
	VMOVUPS Z14, (DX); \
	VMOVUPS Z15, 64(DX);

// func kernel8x32(k int, a *float32, lda, astep int, b *float32, ldb int, c *float32, ldc int, strips int, store bool, stream bool)
//
// The AVX-512 kernel: C[0:8, 0:32] (+)= A[0:8, 0:k] · B[0:k, 0:32], then
// the same for the next strips-1 blocks of 32 columns of B and C. Z0..Z15
// accumulate C (two ZMM per row), Z16/Z17 hold a row of B, Z18..Z25
// broadcast elements of A: each row of B loaded feeds 16 FMAs, so B, which
// streams from L2 when it is read in place, costs a load per 8 FMAs. A's
// rows are addressed from SI, R11 = SI + 3·lda and R12 = SI + 6·lda, and
// each k step moves them astep values on (BX, in bytes): astep 1 for A
// row-major, and lda 1, astep the row stride for a transposed A read in
// place (the weight gradient's Aᵀ: each step broadcasts eight adjacent
// values, one cache line, with no packing).
//
// stream says that B comes from memory, not from cache: a weight
// gradient's lowered input, read 128 bytes a row at a stride that the
// hardware prefetchers do not follow. The loop then prefetches the row of
// B 32 rows ahead (64×800×3136 TN: 133 -> 153 GFLOP/s); where B is cached
// the extra loads cost 5-14%, so it is asked for only there.
TEXT ·kernel8x32(SB), NOSPLIT, $0-74
	MOVQ lda+16(FP), R10
	SHLQ $2, R10
	MOVQ astep+24(FP), BX
	SHLQ $2, BX
	MOVQ ldb+40(FP), R9
	SHLQ $2, R9
	MOVQ ldc+56(FP), R8
	SHLQ $2, R8

strip832:
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+32(FP), DI
	MOVQ c+48(FP), DX
	LEAQ (SI)(R10*2), R11
	ADDQ R10, R11
	LEAQ (R11)(R10*2), R12
	ADDQ R10, R12

	// C's block (128 bytes a row, up to three lines) is read and written
	// after the loop: ask for its lines now.
	MOVQ DX, AX
	PREFETCHT0 (AX)
	PREFETCHT0 64(AX)
	PREFETCHT0 124(AX)
	ADDQ R8, AX
	PREFETCHT0 (AX)
	PREFETCHT0 64(AX)
	PREFETCHT0 124(AX)
	ADDQ R8, AX
	PREFETCHT0 (AX)
	PREFETCHT0 64(AX)
	PREFETCHT0 124(AX)
	ADDQ R8, AX
	PREFETCHT0 (AX)
	PREFETCHT0 64(AX)
	PREFETCHT0 124(AX)
	ADDQ R8, AX
	PREFETCHT0 (AX)
	PREFETCHT0 64(AX)
	PREFETCHT0 124(AX)
	ADDQ R8, AX
	PREFETCHT0 (AX)
	PREFETCHT0 64(AX)
	PREFETCHT0 124(AX)
	ADDQ R8, AX
	PREFETCHT0 (AX)
	PREFETCHT0 64(AX)
	PREFETCHT0 124(AX)
	ADDQ R8, AX
	PREFETCHT0 (AX)
	PREFETCHT0 64(AX)
	PREFETCHT0 124(AX)

	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15

	MOVBLZX stream+73(FP), AX
	TESTQ AX, AX
	JNZ stream832

loop832:
	VMOVUPS (DI), Z16
	VMOVUPS 64(DI), Z17
	STEP832
	DECQ CX
	JNZ loop832
	JMP done832

stream832:
	MOVQ R9, R13
	SHLQ $5, R13 // 32 rows of B ahead

stream832loop:
	PREFETCHT0 (DI)(R13*1)
	PREFETCHT0 64(DI)(R13*1)
	VMOVUPS (DI), Z16
	VMOVUPS 64(DI), Z17
	STEP832
	DECQ CX
	JNZ stream832loop

done832:
	MOVBLZX store+72(FP), AX
	TESTQ AX, AX
	JNZ overwrite832
	ADD832
	JMP next832

overwrite832:
	STORE832

next832:
	// On to the next 32 columns of B and C, with the same A.
	ADDQ $128, b+32(FP)
	ADDQ $128, c+48(FP)
	DECQ strips+64(FP)
	JNZ strip832
	VZEROUPPER
	RET

// func kernel8x32n(k int, a *float32, lda, astep int, b *float32, ldb int, c *float32, mask uint32)
//
// kernel8x32 for a B narrower than 32 columns read in place: mask has a
// bit set for each column that exists, and AVX-512's masked loads neither
// read the others nor fault on them. C is written whole (ldc 32), the
// missing columns as zeros.
TEXT ·kernel8x32n(SB), NOSPLIT, $0-60
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R10
	SHLQ $2, R10
	MOVQ astep+24(FP), BX
	SHLQ $2, BX
	MOVQ b+32(FP), DI
	MOVQ ldb+40(FP), R9
	SHLQ $2, R9
	MOVQ c+48(FP), DX
	MOVL mask+56(FP), AX
	KMOVW AX, K1
	SHRL $16, AX
	KMOVW AX, K2
	LEAQ (SI)(R10*2), R11
	ADDQ R10, R11
	LEAQ (R11)(R10*2), R12
	ADDQ R10, R12

	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15

loop832n:
	VMOVUPS.Z (DI), K1, Z16
	VMOVUPS.Z 64(DI), K2, Z17
	STEP832
	DECQ CX
	JNZ loop832n

	VMOVUPS Z0, 0(DX)
	VMOVUPS Z1, 64(DX)
	VMOVUPS Z2, 128(DX)
	VMOVUPS Z3, 192(DX)
	VMOVUPS Z4, 256(DX)
	VMOVUPS Z5, 320(DX)
	VMOVUPS Z6, 384(DX)
	VMOVUPS Z7, 448(DX)
	VMOVUPS Z8, 512(DX)
	VMOVUPS Z9, 576(DX)
	VMOVUPS Z10, 640(DX)
	VMOVUPS Z11, 704(DX)
	VMOVUPS Z12, 768(DX)
	VMOVUPS Z13, 832(DX)
	VMOVUPS Z14, 896(DX)
	VMOVUPS Z15, 960(DX)
	VZEROUPPER
	RET

// func kernel8x16(k int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, store bool)
//
// kernel8x32's left half, for a block of C at most 16 columns wide (C = A·Bᵀ
// with a mini-batch of 16 is computed as Cᵀ, 16 columns): the 32-wide
// kernel would spend half its FMAs on padding. Z0..Z7 accumulate C, Z16
// holds a row of B. Each element of A feeds one FMA only, so it is
// broadcast by the FMA's own memory operand (.BCST): a VBROADCASTSS per
// FMA held the loop to 74% of the FMA peak in L1 (AMD EPYC), the embedded
// broadcast runs it at 97% (the dense input gradient 16×3136×512: 79 ->
// 104 GFLOP/s, alternating runs). kernel8x32, two FMAs per element, gained
// nothing from it.
TEXT ·kernel8x16(SB), NOSPLIT, $0-57
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R10
	SHLQ $2, R10
	MOVQ b+24(FP), DI
	MOVQ ldb+32(FP), R9
	SHLQ $2, R9
	MOVQ c+40(FP), DX
	MOVQ ldc+48(FP), R8
	SHLQ $2, R8
	LEAQ (SI)(R10*2), R11
	ADDQ R10, R11
	LEAQ (R11)(R10*2), R12
	ADDQ R10, R12

	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7

loop816:
	VMOVUPS (DI), Z16
	VFMADD231PS.BCST (SI), Z16, Z0
	VFMADD231PS.BCST (SI)(R10*1), Z16, Z1
	VFMADD231PS.BCST (SI)(R10*2), Z16, Z2
	VFMADD231PS.BCST (R11), Z16, Z3
	VFMADD231PS.BCST (SI)(R10*4), Z16, Z4
	VFMADD231PS.BCST (R11)(R10*2), Z16, Z5
	VFMADD231PS.BCST (R12), Z16, Z6
	VFMADD231PS.BCST (R12)(R10*1), Z16, Z7
	ADDQ $4, SI
	ADDQ $4, R11
	ADDQ $4, R12
	ADDQ R9, DI
	DECQ CX
	JNZ loop816

	MOVBLZX store+56(FP), AX
	TESTQ AX, AX
	JNZ overwrite816

	VADDPS (DX), Z0, Z0
	VMOVUPS Z0, (DX)
	ADDQ R8, DX
	VADDPS (DX), Z1, Z1
	VMOVUPS Z1, (DX)
	ADDQ R8, DX
	VADDPS (DX), Z2, Z2
	VMOVUPS Z2, (DX)
	ADDQ R8, DX
	VADDPS (DX), Z3, Z3
	VMOVUPS Z3, (DX)
	ADDQ R8, DX
	VADDPS (DX), Z4, Z4
	VMOVUPS Z4, (DX)
	ADDQ R8, DX
	VADDPS (DX), Z5, Z5
	VMOVUPS Z5, (DX)
	ADDQ R8, DX
	VADDPS (DX), Z6, Z6
	VMOVUPS Z6, (DX)
	ADDQ R8, DX
	VADDPS (DX), Z7, Z7
	VMOVUPS Z7, (DX)
	VZEROUPPER
	RET

overwrite816:
	VMOVUPS Z0, (DX)
	ADDQ R8, DX
	VMOVUPS Z1, (DX)
	ADDQ R8, DX
	VMOVUPS Z2, (DX)
	ADDQ R8, DX
	VMOVUPS Z3, (DX)
	ADDQ R8, DX
	VMOVUPS Z4, (DX)
	ADDQ R8, DX
	VMOVUPS Z5, (DX)
	ADDQ R8, DX
	VMOVUPS Z6, (DX)
	ADDQ R8, DX
	VMOVUPS Z7, (DX)
	VZEROUPPER
	RET

// func kernel8x32seg(segs, kseg int, a *float32, offs *int, lda int, b *float32, c *float32, ldc int, store bool)
//
// kernel8x32 for an A gathered from segs segments of kseg columns: segment
// t of A's eight rows starts at a + offs[t] (in values), rows lda apart,
// and B is packed (32 values a row), one row per k step across all
// segments. A convolution's output is this product with A's segments the
// taps' windows of the input image (shifted copies, see conv_forward.go),
// so the input is never lowered.
TEXT ·kernel8x32seg(SB), NOSPLIT, $0-65
	MOVQ segs+0(FP), R13
	MOVQ offs+24(FP), AX
	MOVQ lda+32(FP), R10
	SHLQ $2, R10
	MOVQ $4, BX
	MOVQ b+40(FP), DI
	MOVQ $128, R9
	MOVQ c+48(FP), DX
	MOVQ ldc+56(FP), R8
	SHLQ $2, R8

	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15

seg832:
	MOVQ (AX), SI
	SHLQ $2, SI
	ADDQ a+16(FP), SI
	LEAQ (SI)(R10*2), R11
	ADDQ R10, R11
	LEAQ (R11)(R10*2), R12
	ADDQ R10, R12
	MOVQ kseg+8(FP), CX

seg832loop:
	VMOVUPS (DI), Z16
	VMOVUPS 64(DI), Z17
	STEP832
	DECQ CX
	JNZ seg832loop
	ADDQ $8, AX
	DECQ R13
	JNZ seg832

	MOVBLZX store+64(FP), AX
	TESTQ AX, AX
	JNZ overwriteseg
	ADD832
	VZEROUPPER
	RET

overwriteseg:
	STORE832
	VZEROUPPER
	RET
