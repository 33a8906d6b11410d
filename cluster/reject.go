package cluster

import (
	"maps"
	"sync"
)

// Reasons the server turns a message away; a summary counts them.
const (
	// rejectUndecodable: not a wire message, a bad checksum, a non-finite
	// value, a bad fragment.
	rejectUndecodable = "undecodable"
	// rejectWrongSubject: a message of a type its subject does not carry.
	rejectWrongSubject = "wrong_subject"
	// rejectForged: the body names another worker than the subject's
	// sender, whose identity NATS vouches for.
	rejectForged = "forged_identity"
	// rejectReplySubject: a request whose reply subject is not in the
	// sender's own inbox: the server would answer into another's subjects.
	rejectReplySubject = "foreign_reply_subject"
	// rejectStale: from a session that is over (timed out, replaced by a
	// rejoin, or of a server before a restart).
	rejectStale = "stale_session"
	// rejectJoin: a join with a bad name or another wire version, or
	// beyond the run's number of workers.
	rejectJoin = "bad_join"
	// rejectJoinRate: a name that joins too often.
	rejectJoinRate = "join_rate"
	// rejectNotJoined: a log line of a name that never joined.
	rejectNotJoined = "not_joined"
	// rejectProtocol: refused by the protocol's own checks (wrong shape,
	// a chunk the worker does not hold).
	rejectProtocol = "protocol"
	// rejectLog: a log line that is not a JSON object, or too long.
	rejectLog = "bad_log_line"
	// rejectSlowConsumer: NATS dropped messages for a subscription of the
	// server's that fell behind its pending limits (counted once a report
	// of NATS's, not per message).
	rejectSlowConsumer = "slow_consumer"
	// An update the protocol took but did not merge is counted under the
	// reason of its protocol.Discarded: protocol.DiscardNorm,
	// DiscardStale, DiscardNonFinite, DiscardWorse.
)

// rejections counts rejected messages by reason. The NATS goroutines that
// decode and the server's loop both count, hence the lock.
type rejections struct {
	mu sync.Mutex
	n  map[string]int64
}

func (r *rejections) add(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int64{}
	}
	r.n[reason]++
}

// counts returns a copy of the counts, nil when nothing was rejected.
func (r *rejections) counts() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.n) == 0 {
		return nil
	}
	return maps.Clone(r.n)
}
