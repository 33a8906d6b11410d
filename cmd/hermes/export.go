package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/nn/onnx"
)

const modelUsage = "built-in model (logreg, mlp, cnn), a model spec JSON file, or an ONNX file (*.onnx, its weights as the start)"

func isONNX(path string) bool { return strings.HasSuffix(strings.ToLower(path), ".onnx") }

// saveModel writes m to path: ONNX (with the input normalization norm in
// the graph) or safetensors, by the file's extension.
func saveModel(m *nn.Model, path string, norm data.Norm) error {
	if !isONNX(path) {
		return m.Save(path)
	}
	b, err := onnx.Export(m, []float64{norm.Mean, norm.Std})
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nn.WriteFileAtomic(path, b)
}

// loadModelFile reads a model saved by hermes (safetensors) or an ONNX
// file (built for the input shape it declares), and the input
// normalization it was trained with.
func loadModelFile(path string) (*nn.Model, data.Norm, error) {
	if isONNX(path) {
		im, err := onnx.ReadFile(path)
		if err != nil {
			return nil, data.Norm{}, err
		}
		m, err := im.Model(im.Input, im.Classes)
		if err != nil {
			return nil, data.Norm{}, fmt.Errorf("%s: %w", path, err)
		}
		return m, data.Norm{Mean: im.Spec.Norm[0], Std: im.Spec.Norm[1]}, nil
	}
	m, err := nn.LoadFile(path)
	if err != nil {
		return nil, data.Norm{}, err
	}
	norm, ok, err := data.NormFromMeta(m.Meta)
	if err != nil {
		return nil, data.Norm{}, fmt.Errorf("%s: %w", path, err)
	}
	if !ok {
		return nil, data.Norm{}, fmt.Errorf("%s has no input normalization (hermes.norm.*); it was not saved by hermes", path)
	}
	return m, norm, nil
}

func cmdExport(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	file := fs.String("model-file", "", "a model saved by hermes (.safetensors) or an ONNX file")
	out := fs.String("onnx", "", "write the model as ONNX (opset 13) here: input NCHW in [0, 1], output logits")
	torch := fs.String("torch-names", "", "write the weights as safetensors here, under the state_dict names of the equivalent torch.nn.Sequential")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *file == "" || (*out == "" && *torch == "") {
		return fmt.Errorf("export: want --model-file and --onnx or --torch-names")
	}
	m, norm, err := loadModelFile(*file)
	if err != nil {
		return err
	}
	if *out != "" {
		if err := saveModel(m, *out, norm); err != nil {
			return err
		}
		slog.Info("exported", "onnx", *out, "input_norm", []float64{norm.Mean, norm.Std})
	}
	if *torch != "" {
		ts, err := onnx.TorchStateDict(m)
		if err != nil {
			return err
		}
		meta := map[string]string{"format": "pt", "hermes.input_norm": fmt.Sprintf("%g,%g", norm.Mean, norm.Std)}
		if err := nn.WriteSafetensors(*torch, meta, ts); err != nil {
			return err
		}
		slog.Info("exported", "torch_state_dict", *torch, "tensors", len(ts))
	}
	fmt.Fprintf(stdout, "exported %s\n", *file)
	return nil
}
