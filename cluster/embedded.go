package cluster

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// maxPayload is the embedded server's message limit: a chunk of 2,500
// Fashion-MNIST samples is 7.9 MB as float32.
const maxPayload = 64 << 20

// maxSenders bounds the per-sender state the server keeps for names it
// has not admitted yet (fragment receivers): a fleet's worth.
const maxSenders = 1 << 14

// connect gives the server its transport, cfg.Transport or a NATS
// connection, and subscribes to what workers send.
func (p *PS) connect() error {
	if p.tr = p.cfg.Transport; p.tr == nil {
		if err := p.dialNATS(); err != nil {
			return err
		}
		p.tr = NATSTransport(p.nc)
	}
	p.out = newSender(p.tr)
	p.pack = startPacker(p.tr, &p.bytesOut, p.log)
	if p.tr.MaxPayload() < 8<<20 {
		p.log.Warn("nats max_payload is small; large chunks will be refused", "max_payload", p.tr.MaxPayload())
	}
	// Reports and updates; large updates come in pieces, each sender's
	// reassembled apart, within two updates' bytes.
	updates := newReceivers(2*(4*len(p.model.Params())+64<<10), maxSenders)
	subs := map[string]func(Msg){
		p.subj.all(kindJoin):      func(m Msg) { p.receive(m, kindJoin, nil) },
		p.subj.all(kindHeartbeat): func(m Msg) { p.receive(m, kindHeartbeat, nil) },
		p.subj.all(kindUp):        func(m Msg) { p.receive(m, kindUp, updates.of(p.subj.sender(m.Subject))) },
		p.subj.all(kindLog):       p.receiveLog,
	}
	for subj, h := range subs {
		if _, err := p.tr.Subscribe(subj, h); err != nil {
			return err
		}
	}
	if p.nc != nil && p.cfg.RunDir != "" {
		var err error
		if p.objects, err = openObjectStore(p.nc, p.cfg.Prefix); err != nil {
			p.log.Info("no JetStream object store: checkpoints are kept in the run dir only", "err", err)
		}
	}
	return nil
}

// dialNATS starts the embedded NATS server, unless cfg.NATS names one,
// and connects to it.
func (p *PS) dialNATS() error {
	cfg := p.cfg
	opts := []nats.Option{nats.Name("hermes-ps"), nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			if errors.Is(err, nats.ErrSlowConsumer) {
				// NATS dropped messages the loop could not take in time.
				p.reject(rejectSlowConsumer, "", "subscription", subject)
				return
			}
			p.log.Warn("nats", "subscription", subject, "err", err)
		})}
	url := cfg.NATS
	if url == "" {
		host, port, err := splitListen(cfg.Listen)
		if err != nil {
			return err
		}
		// nats-server reports a taken port only in its log; asking first
		// turns a 10 s wait into a clear error.
		if port > 0 {
			l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			l.Close()
		}
		o := &server.Options{Host: host, Port: port, NoLog: true, NoSigs: true, MaxPayload: cmp.Or(cfg.MaxPayload, maxPayload)}
		if cfg.RunDir != "" {
			o.JetStream, o.StoreDir = true, filepath.Join(cfg.RunDir, "jetstream")
		}
		own, err := cfg.Security.serverOptions(o, p.subj)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(host); cfg.Security.mode() == "none" && (ip == nil || !ip.IsLoopback()) && host != "localhost" {
			p.log.Warn("no authentication on a network address: any client that reaches it can join, read all traffic and act as any worker; give each worker its own key (--nkey-file) or certificate (--tls-ca)", "listen", cfg.Listen)
		}
		if cfg.Security.Token != "" {
			p.log.Warn("token authentication: every client shares one identity, so any worker can read the others' traffic and act in their names; give each worker its own key (--nkey-file) or certificate (--tls-ca) to isolate them")
		}
		if p.ns, err = server.NewServer(o); err != nil {
			return fmt.Errorf("embedded nats: %w", err)
		}
		go p.ns.Start()
		if !p.ns.ReadyForConnections(10 * time.Second) {
			return fmt.Errorf("embedded nats on %s: not ready (is the port taken?)", cfg.Listen)
		}
		// In process: no TLS to itself (hence nats://), no port to reach.
		url = strings.Replace(p.ns.ClientURL(), "tls://", "nats://", 1)
		opts = append(opts, nats.InProcessServer(p.ns))
		opts = append(opts, own...)
	} else {
		co, err := cfg.Security.clientOptions()
		if err != nil {
			return err
		}
		opts = append(opts, co...)
	}
	var err error
	if p.nc, err = nats.Connect(url, opts...); err != nil {
		return fmt.Errorf("connect %s: %w", url, err)
	}
	return nil
}

func splitListen(listen string) (string, int, error) {
	if listen == "" {
		return "127.0.0.1", -1, nil
	}
	i := strings.LastIndex(listen, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("--listen %q: want host:port", listen)
	}
	var port int
	if _, err := fmt.Sscanf(listen[i+1:], "%d", &port); err != nil {
		return "", 0, fmt.Errorf("--listen %q: bad port", listen)
	}
	return listen[:i], port, nil
}

// URL returns the NATS URL workers connect to; empty on a transport of
// cfg.Transport.
func (p *PS) URL() string {
	switch {
	case p.ns != nil:
		return p.ns.ClientURL()
	case p.nc != nil:
		return p.nc.ConnectedUrl()
	}
	return ""
}
