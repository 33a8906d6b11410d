//go:build !amd64 || purego

package nn

func addBiasAct(y, b []float32, relu bool) { addBiasActGo(y, b, relu) }

func reluMask(dy, y []float32) { reluMaskGo(dy, y) }

func sumRows(dst, m []float32, n, w int) { sumRowsGo(dst, m, n, w) }

func pool2Row(x []float32, first, C, stride, windows int, y []float32, arg []int32) {
	pool2RowGo(x, first, C, stride, windows, y, arg)
}
