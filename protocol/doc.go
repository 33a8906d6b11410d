// Package protocol holds the training methods as deterministic state
// machines: Hermes (worker and parameter server), its ablations, and the
// baselines BSP, ASP, SSP and LocalSGD.
//
// Like etcd's raft core, nothing here does I/O, starts goroutines, reads a
// clock or uses global randomness. A driver feeds a Server or a Worker events
// with Step, each stamped with the current time (virtual in the simulator,
// wall-clock in the cluster), and collects what to do with Ready: send this
// model, assign that chunk, send this update, train on this chunk, stop. The
// two drivers, sim/ and cluster/, run the very same state machines, so a
// behaviour shown in simulation is the behaviour on devices.
//
// Computation stays outside too: a Worker asks its driver to train (the
// driver calls a Trainer and steps the result back in), and a Server asks its
// Validator for validation losses, the one computation its decisions need.
//
// Updates are sums of mini-batch gradients; a server applies an aggregate g
// as params -= ServerLR·g, so FedAvg-style model averaging, synchronous SGD
// and Hermes's loss-aware merge are the same operation with different
// weights.
package protocol
