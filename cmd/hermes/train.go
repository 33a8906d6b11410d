package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/hermes-go/hermes/data"
	"github.com/hermes-go/hermes/harness"
	"github.com/hermes-go/hermes/nn"
	"github.com/hermes-go/hermes/nn/onnx"
	"github.com/hermes-go/hermes/train"
)

func cmdTrain(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	var df dataFlags
	df.register(fs)
	cfg := train.Defaults
	model := fs.String("model", "mlp", modelUsage)
	inputNorm := fs.String("input-norm", "", "MEAN,STD: normalize inputs in [0, 1] by these (default: the training set's; ONNX models: none)")
	fs.IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "passes over the training data")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "mini-batch size")
	fs.StringVar(&cfg.Optimizer, "optimizer", cfg.Optimizer, "sgd, momentum or adam")
	fs.Float64Var(&cfg.LR, "lr", cfg.LR, "peak learning rate")
	fs.StringVar(&cfg.Schedule, "schedule", cfg.Schedule, "learning-rate schedule: cosine or constant")
	fs.Float64Var(&cfg.WeightDecay, "weight-decay", cfg.WeightDecay, "L2 weight decay")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of initialization, shuffles and splits")
	val := fs.Int("val", 0, "hold out this many training samples and report accuracy on them (for choosing a recipe without the test set)")
	threads := fs.Int("threads", 0, "cores to use (0: all)")
	save := fs.String("save", "", "write the trained model to this file: .safetensors, or .onnx (opset 13)")
	initFile := fs.String("init", "", "start from the parameters in this .safetensors file")
	asJSON := fs.Bool("json", false, "print one JSON object as the last line of stdout")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	norms, err := harness.ParseNorm(*inputNorm)
	if err != nil {
		return err
	}
	trainSet, testSet, norm, err := data.Open(df.dataset, df.train, df.test)
	if err != nil {
		return err
	}
	mm, err := harness.ResolveModel(*model, trainSet.Classes, norms)
	if err != nil {
		return err
	}
	d := harness.Data{Train: trainSet, Test: testSet, Norm: norm}
	d.UseNorm(mm)
	norm = d.Norm
	evalSet, evalName := testSet, "test"
	if *val > 0 {
		held, rest, err := harness.SplitValidation(trainSet, *val, cfg.Seed)
		if err != nil {
			return fmt.Errorf("--val: %w", err)
		}
		trainSet, evalSet, evalName = rest, held, "validation"
	}
	spec := mm.Spec
	m, err := mm.New(trainSet.Shape, trainSet.Classes, cfg.Seed)
	if err != nil {
		return err
	}
	m.Meta = norm.Meta()
	if *initFile != "" {
		if err := m.Load(*initFile); err != nil {
			return err
		}
	}
	slog.Info("training", "model", spec.Name, "params", len(m.Params()), "samples", trainSet.Len(), "epochs", cfg.Epochs, "batch", cfg.Batch, "optimizer", cfg.Optimizer, "lr", cfg.LR)
	start := time.Now()
	var bar *progressbar.ProgressBar // the epoch's, on a terminal
	r, err := train.Run(m, cfg, trainSet, evalSet, train.Progress{
		Batch: func(e, done, total int, loss float64) {
			if done <= cfg.Batch {
				bar = newBar(!*asJSON, int64(total), fmt.Sprintf("epoch %d/%d", e, cfg.Epochs))
			}
			if bar != nil && done%(cfg.Batch*20) < cfg.Batch {
				bar.Describe(fmt.Sprintf("epoch %d/%d loss %.4f", e, cfg.Epochs, loss))
				bar.Set(done)
			}
		},
		Epoch: func(e int, trainLoss, loss, acc float64) {
			if bar != nil {
				bar.Finish()
			}
			slog.Info("epoch", "epoch", e, "train_loss", round(trainLoss), evalName+"_loss", round(loss), evalName+"_accuracy", round(acc))
		},
	})
	if err != nil {
		return err
	}
	wall := time.Since(start).Seconds()
	loss, acc, sps := r.Loss, r.Accuracy, r.SamplesPerSecond
	if *save != "" {
		if err := saveModel(m, *save, norm); err != nil {
			return err
		}
		slog.Info("saved", "file", *save)
	}
	res := map[string]any{
		"model": spec.Name, "dataset": df.name(), "epochs": cfg.Epochs,
		"samples_per_second": round(sps), "wall_seconds": round(wall),
	}
	if *val > 0 {
		res["validation_accuracy"], res["validation_loss"] = round(acc), round(loss)
	} else {
		res["test_accuracy"], res["test_loss"] = round(acc), round(loss)
	}
	if *asJSON {
		return printJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "%s on %s: %s accuracy %.4f, loss %.4f, %.0f samples/s, %.1f s\n", spec.Name, df.name(), evalName, acc, loss, sps, wall)
	return nil
}

func cmdEval(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	var df dataFlags
	df.register(fs)
	file := fs.String("model-file", "", "a model saved by 'hermes train --save', or an ONNX file")
	inputNorm := fs.String("input-norm", "", "MEAN,STD: the ONNX model's input normalization of values in [0, 1] (default none)")
	asJSON := fs.Bool("json", false, "print one JSON object as the last line of stdout")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return fmt.Errorf("eval: --model-file is required")
	}
	if df.train != "" {
		return fmt.Errorf("eval: --train is not used; the normalization comes from %s", *file)
	}
	norms, err := harness.ParseNorm(*inputNorm)
	if err != nil {
		return err
	}
	if norms != nil && !isONNX(*file) {
		return fmt.Errorf("eval: --input-norm applies to ONNX files; %s carries its own", *file)
	}
	var (
		m    *nn.Model
		norm data.Norm
		im   *onnx.Imported // built below, for the data's sample shape
	)
	classes := 0
	if isONNX(*file) {
		if im, err = onnx.ReadFile(*file); err != nil {
			return err
		}
		classes, norm = im.Classes, data.Norm{Mean: im.Spec.Norm[0], Std: im.Spec.Norm[1]}
	} else {
		if m, norm, err = loadModelFile(*file); err != nil {
			return err
		}
		classes = m.Classes()
	}
	testSet, err := data.OpenTest(df.dataset, df.test, classes)
	if err != nil {
		return err
	}
	if im != nil {
		// An MLP exported from PyTorch takes flat vectors: it is built
		// for the data's images, and nn.Build checks that they fit.
		if m, err = im.Model(testSet.Shape, classes); err != nil {
			return fmt.Errorf("%s: %w", *file, err)
		}
	}
	if norms != nil {
		norm = data.Norm{Mean: norms[0], Std: norms[1]}
	}
	norm.Apply(testSet)
	if !nn.Shape(testSet.Shape).Equal(m.Input()) {
		return fmt.Errorf("eval: %s expects samples of shape %v, %s has %v", *file, m.Input(), df.name(), testSet.Shape)
	}
	loss, acc := train.Evaluate(m, testSet)
	if *asJSON {
		return printJSON(stdout, map[string]any{"model_file": *file, "dataset": df.name(), "test_accuracy": round(acc), "test_loss": round(loss), "samples": testSet.Len()})
	}
	fmt.Fprintf(stdout, "%s on %s: test accuracy %.4f, loss %.4f (%d samples)\n", *file, df.name(), acc, loss, testSet.Len())
	return nil
}

// newBar returns a progress bar on stderr when it is a terminal and bars are
// wanted, nil otherwise.
func newBar(want bool, total int64, desc string) *progressbar.ProgressBar {
	if !want || !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(total, progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(desc), progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
}

// round keeps JSON and logs readable: 4 significant decimals is more than
// any of our measurements can resolve.
func round(v float64) float64 { return math.Round(v*1e4) / 1e4 }
