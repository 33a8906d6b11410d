//go:build amd64 && !purego

#include "textflag.h"

// The element-wise passes of a training step, eight lanes at a time (AVX2):
// in Go they cost as much as a third of the CNN's step. Widths are
// multiples of 8; the Go wrappers (elementwise_amd64.go) take the rest.

// func biasActAVX2(y *float32, rows int, b *float32, w int, relu bool)
//
// Each of rows rows of y (w values) += b, then max(·, 0) if relu. The max
// takes y as its second operand, which VMAXPS returns when either is NaN:
// a diverged value stays NaN, as with Go's max.
TEXT ·biasActAVX2(SB), NOSPLIT, $0-33
	MOVQ y+0(FP), DI
	MOVQ rows+8(FP), CX
	MOVQ b+16(FP), SI
	MOVQ w+24(FP), DX
	SHLQ $2, DX
	MOVBLZX relu+32(FP), AX
	VXORPS Y15, Y15, Y15
	TESTQ CX, CX
	JZ biasdone

biasrow:
	XORQ R8, R8

biascol:
	VMOVUPS (DI)(R8*1), Y0
	VADDPS (SI)(R8*1), Y0, Y0
	TESTQ AX, AX
	JZ biasstore
	VMAXPS Y0, Y15, Y0

biasstore:
	VMOVUPS Y0, (DI)(R8*1)
	ADDQ $32, R8
	CMPQ R8, DX
	JB biascol
	ADDQ DX, DI
	DECQ CX
	JNZ biasrow

biasdone:
	VZEROUPPER
	RET

// func colSumsAVX2(dst *float32, m *float32, rows int, w int)
//
// dst[j] = Σ_r m[r·w + j]: columns 32 at a time in four accumulators (four
// independent add chains down the rows), then 8 at a time.
TEXT ·colSumsAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ m+8(FP), SI
	MOVQ rows+16(FP), CX
	MOVQ w+24(FP), DX
	SHLQ $2, DX
	XORQ R8, R8 // byte offset of the column block

sum32:
	LEAQ 128(R8), AX
	CMPQ AX, DX
	JA sum8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	LEAQ (SI)(R8*1), R9
	MOVQ CX, R10
	TESTQ R10, R10
	JZ sum32store

sum32row:
	VADDPS (R9), Y0, Y0
	VADDPS 32(R9), Y1, Y1
	VADDPS 64(R9), Y2, Y2
	VADDPS 96(R9), Y3, Y3
	ADDQ DX, R9
	DECQ R10
	JNZ sum32row

sum32store:
	VMOVUPS Y0, (DI)(R8*1)
	VMOVUPS Y1, 32(DI)(R8*1)
	VMOVUPS Y2, 64(DI)(R8*1)
	VMOVUPS Y3, 96(DI)(R8*1)
	MOVQ AX, R8
	JMP sum32

sum8:
	CMPQ R8, DX
	JAE sumdone
	VXORPS Y0, Y0, Y0
	LEAQ (SI)(R8*1), R9
	MOVQ CX, R10
	TESTQ R10, R10
	JZ sum8store

sum8row:
	VADDPS (R9), Y0, Y0
	ADDQ DX, R9
	DECQ R10
	JNZ sum8row

sum8store:
	VMOVUPS Y0, (DI)(R8*1)
	ADDQ $32, R8
	JMP sum8

sumdone:
	VZEROUPPER
	RET

// func reluMaskAVX2(dy *float32, y *float32, n int)
//
// dy[i] = 0 where y[i] <= 0 (a ReLU output of +0), n a multiple of 8.
TEXT ·reluMaskAVX2(SB), NOSPLIT, $0-24
	MOVQ dy+0(FP), DI
	MOVQ y+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ maskdone
	VXORPS Y15, Y15, Y15

maskloop:
	VMOVUPS (SI), Y0
	VCMPPS $0x0e, Y15, Y0, Y1 // y > 0
	VANDPS (DI), Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ maskloop

maskdone:
	VZEROUPPER
	RET

// iota8 is the int32 lanes 0..7.
DATA iota8<>+0(SB)/4, $0
DATA iota8<>+4(SB)/4, $1
DATA iota8<>+8(SB)/4, $2
DATA iota8<>+12(SB)/4, $3
DATA iota8<>+16(SB)/4, $4
DATA iota8<>+20(SB)/4, $5
DATA iota8<>+24(SB)/4, $6
DATA iota8<>+28(SB)/4, $7
GLOBL iota8<>(SB), RODATA|NOPTR, $32

// func pool2AVX2(x *float32, first int, c int, stride int, windows int, y *float32, arg *int32)
//
// windows adjacent 2×2 max-pooling windows along a row: the first's
// top-left value at x[first], c channels (a multiple of 8) per position,
// rows stride values apart, each next window 2c further. Writes each
// window's c maxima to y and their indexes into x to arg, consecutively.
// Ties go to the first position in (top-left, top-right, bottom-left,
// bottom-right) order: a later one replaces the maximum only if greater.
TEXT ·pool2AVX2(SB), NOSPLIT, $0-56
	MOVQ x+0(FP), SI
	MOVQ first+8(FP), BX
	MOVQ c+16(FP), DX
	MOVQ stride+24(FP), R9
	MOVQ windows+32(FP), CX
	MOVQ y+40(FP), DI
	MOVQ arg+48(FP), R11

	// Index offsets as int32 lanes: Y13 = c, Y14 = stride, Y15 = stride+c.
	VMOVDQU iota8<>(SB), Y12
	MOVQ DX, X13
	VPBROADCASTD X13, Y13
	MOVQ R9, X14
	VPBROADCASTD X14, Y14
	VPADDD Y13, Y14, Y15
	LEAQ (DX)(DX*1), R13 // 2c: the next window
	SHLQ $2, DX          // c in bytes
	SHLQ $2, R9          // stride in bytes
	TESTQ CX, CX
	JZ pooldone

poolwin:
	XORQ R8, R8           // byte offset of the channel block
	MOVQ BX, AX           // its index in x
	LEAQ (SI)(BX*4), R10  // &x[first]

poolch:
	MOVQ AX, X0
	VPBROADCASTD X0, Y0
	VPADDD Y12, Y0, Y0      // indexes of the top-left values
	VMOVUPS (R10)(R8*1), Y1 // maximum so far
	VMOVDQU Y0, Y2          // its index
	LEAQ (R10)(DX*1), R12
	VMOVUPS (R12)(R8*1), Y3
	VCMPPS $0x0e, Y1, Y3, Y4 // top-right > max
	VBLENDVPS Y4, Y3, Y1, Y1
	VPADDD Y13, Y0, Y5
	VBLENDVPS Y4, Y5, Y2, Y2
	LEAQ (R10)(R9*1), R12
	VMOVUPS (R12)(R8*1), Y3
	VCMPPS $0x0e, Y1, Y3, Y4 // bottom-left > max
	VBLENDVPS Y4, Y3, Y1, Y1
	VPADDD Y14, Y0, Y5
	VBLENDVPS Y4, Y5, Y2, Y2
	ADDQ DX, R12
	VMOVUPS (R12)(R8*1), Y3
	VCMPPS $0x0e, Y1, Y3, Y4 // bottom-right > max
	VBLENDVPS Y4, Y3, Y1, Y1
	VPADDD Y15, Y0, Y5
	VBLENDVPS Y4, Y5, Y2, Y2
	VMOVUPS Y1, (DI)
	VMOVDQU Y2, (R11)
	ADDQ $32, DI
	ADDQ $32, R11
	ADDQ $8, AX
	ADDQ $32, R8
	CMPQ R8, DX
	JB poolch

	ADDQ R13, BX
	DECQ CX
	JNZ poolwin

pooldone:
	VZEROUPPER
	RET
