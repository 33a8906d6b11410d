// Package nn is Hermes-Go's neural-network engine: a small set of layers,
// a numerically stable softmax cross-entropy loss and two optimizers, all in
// pure Go on top of gonum's float32 BLAS.
//
// The engine is built around what a parameter server ships: a Model keeps
// every parameter in one flat []float32 and every gradient in another, so a
// whole update is a single vector that can be summed, scaled, encoded and
// applied without knowing about layers.
//
// Speed comes from doing each layer as a few large GEMMs over the whole
// mini-batch (im2col for convolution, NHWC activations so that one GEMM covers
// the batch), from buffers that are allocated once per batch size, and from
// fusing the cheap element-wise passes (bias + ReLU into the layer, softmax
// into the loss). A steady-state training step allocates nothing.
//
// Activations are row-major with one row per sample. Images are stored
// channel-last (H, W, C); shapes in model specs are written [C, H, W] as
// users know them from PyTorch.
package nn
