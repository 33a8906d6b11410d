package cluster

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSConfigOptions says what NATSConfig writes.
type NATSConfigOptions struct {
	// Prefix is the run's subject prefix; empty means "hermes".
	Prefix string
	// Listen is the client address, host:port.
	Listen string
	// StoreDir is JetStream's directory; empty leaves nats-server's default.
	StoreDir string
	// Security holds the users (one of them named ps, the parameter
	// server's) and the TLS files.
	Security Security
}

// NATSConfig returns a nats-server configuration that gives an external
// NATS server the isolation of the embedded one: every worker's nkey may
// publish and subscribe only on its own subjects (subjects.permissions),
// and only the parameter server's key (the user named ps) may do the rest,
// JetStream included. Point `hermes ps --nats URL --nkey-seed ps.nk` and
// the workers at that server.
func NATSConfig(o NATSConfigOptions) (string, error) {
	subj := subjects{cmp.Or(o.Prefix, "hermes")}
	sec := o.Security
	if len(sec.NKeyUsers) == 0 {
		return "", fmt.Errorf("nats config: no users: every worker needs a key of its own")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# nats-server configuration for Hermes runs under the subject prefix %q\n", subj.prefix)
	fmt.Fprintf(&b, "# (hermes ps --print-nats-config). Each worker may publish and subscribe\n")
	fmt.Fprintf(&b, "# only on the subjects that carry its own name; the user named ps, the\n")
	fmt.Fprintf(&b, "# parameter server, may do everything, and is the only one with JetStream.\n")
	if o.Listen != "" {
		fmt.Fprintf(&b, "listen: %q\n", o.Listen)
	}
	// Models and chunks beyond the limit travel in pieces; 8 MB keeps a
	// chunk of 2,500 images in one message.
	fmt.Fprintf(&b, "max_payload: %d\n", 8<<20)
	if o.StoreDir != "" {
		fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n}\n", o.StoreDir)
	} else {
		fmt.Fprintf(&b, "jetstream: enabled\n")
	}
	if sec.TLSCert != "" {
		fmt.Fprintf(&b, "tls {\n  cert_file: %q\n  key_file: %q\n", sec.TLSCert, sec.TLSKey)
		if sec.TLSCA != "" {
			fmt.Fprintf(&b, "  ca_file: %q\n  verify: true\n", sec.TLSCA)
		}
		fmt.Fprintf(&b, "  timeout: 5\n}\n")
	}
	ps := false
	fmt.Fprintf(&b, "authorization {\n  users: [\n")
	for _, u := range sec.NKeyUsers {
		if u.Name == "ps" {
			ps = true
			fmt.Fprintf(&b, "    # ps: the parameter server\n    {nkey: %q}\n", u.Key)
			continue
		}
		fmt.Fprintf(&b, "    # %s\n    {nkey: %q, permissions: %s}\n", u.Name, u.Key, natsPermissions(subj.permissions(u.Name)))
	}
	fmt.Fprintf(&b, "  ]\n}\n")
	if !ps {
		return "", fmt.Errorf("nats config: no user named ps: the parameter server needs a key of its own " +
			"(hermes keygen --name ps --seed-file ps.nk, then add its line to the users file)")
	}
	return b.String(), nil
}

func natsPermissions(p *server.Permissions) string {
	list := func(subjects []string) string {
		q := make([]string, len(subjects))
		for i, s := range subjects {
			q[i] = fmt.Sprintf("%q", s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	return fmt.Sprintf("{publish: {allow: %s}, subscribe: {allow: %s}}", list(p.Publish.Allow), list(p.Subscribe.Allow))
}
