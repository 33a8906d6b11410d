package cluster

import (
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// subjects lays out a run's NATS subjects under one prefix P. Every subject
// a worker publishes on, or listens to, carries the worker's name as a
// token, so that NATS permissions (see permissions) can confine a worker to
// its own and the server can take a sender's identity from the subject:
//
//	P.join.NAME      request/reply: NAME's wire.Join, answered by wire.Welcome
//	P.hb.NAME        request/reply: NAME's wire.Heartbeat, answered by the
//	                 same, or by wire.Rejoin when the server does not know it
//	P.up.NAME        NAME to the server: reports and updates
//	P.log.NAME       NAME's log records, JSON lines, for the central log
//	P.w.NAME.ID      the server to NAME, in its session ID: models, chunk
//	                 data, work, stop
//	P.inbox.NAME.>   replies to NAME's requests (its nats.CustomInboxPrefix)
//
// A worker subscribes to P.w.NAME.* before it joins, so nothing the server
// sends right after the welcome is lost, and drops what was sent to an
// earlier session of its own.
type subjects struct{ prefix string }

// Subject kinds a worker sends on.
const (
	kindJoin      = "join"
	kindHeartbeat = "hb"
	kindUp        = "up"
	kindLog       = "log"
)

func (s subjects) from(kind, name string) string { return s.prefix + "." + kind + "." + name }

// all returns the wildcard subject the server subscribes to for a kind.
func (s subjects) all(kind string) string { return s.prefix + "." + kind + ".*" }

func (s subjects) toWorker(name string, session int64) string {
	return s.prefix + ".w." + name + "." + strconv.FormatInt(session, 10)
}

// toSessions is the wildcard of every session's subject of a worker.
func (s subjects) toSessions(name string) string { return s.prefix + ".w." + name + ".*" }

func (s subjects) inbox(name string) string { return s.prefix + ".inbox." + name }

// sender returns the worker name in a subject the server subscribed to with
// all: its last token. NATS matched the wildcard, so there is one.
func (s subjects) sender(subject string) string {
	return subject[strings.LastIndexByte(subject, '.')+1:]
}

// replyOK reports whether reply is a subject of name's own inbox: a worker
// may not have the server answer into another worker's subjects.
func (s subjects) replyOK(name, reply string) bool {
	return strings.HasPrefix(reply, s.inbox(name)+".")
}

// permissions returns what the worker called name may do: publish its own
// requests, updates and logs; listen to what the server sends it and to
// the replies to its requests. Everything else (other workers' subjects,
// the server's, JetStream's $JS and $O, $SYS) is denied by omission.
func (s subjects) permissions(name string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			s.from(kindJoin, name), s.from(kindHeartbeat, name), s.from(kindUp, name), s.from(kindLog, name),
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			s.toSessions(name), s.inbox(name) + ".>",
		}},
	}
}
