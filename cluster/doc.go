// Package cluster is the real driver of the protocol state machines: a
// parameter server and edge workers as processes that talk over NATS, with
// the wire package's binary messages. It runs the same protocol.Server and
// protocol.Worker as the simulator; only time (the wall clock) and the
// transport differ.
//
// The subjects a run uses, and the NATS permissions that confine each
// worker to its own, are laid out in subjects.go. The server takes a
// sender's identity from the subject, never from the message body.
//
// The parameter server, by job:
//
//	ps.go          the loop: configuration, Run, step and act, measurements
//	embedded.go    the embedded NATS server and the server's connection
//	intake.go      decoding and vetting what workers send (reject.go: why)
//	members.go     joins, sessions, timeouts: who is live under which name
//	chunks.go      a chunk's samples packed into messages for its worker
//	checkpoint.go  checkpoints, resume, and the end of a run
//	rundir.go      the run directory: logs, files, archive
//	meter.go       test-accuracy measurements off the loop
//
// The worker: worker.go joins (and joins again), session.go trains one
// membership's chunks and reports. Who may say what: subjects.go,
// security.go, natsconf.go. How messages travel: transport.go (the
// Transport interface, over NATS), memtransport.go (in memory, for tests),
// pieces.go (messages over the payload limit, in fragments).
package cluster
