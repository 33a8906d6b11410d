package cluster

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Security says how clients prove who they are and how their connections
// are encrypted. Token and nkeys exclude each other; TLS goes with either.
type Security struct {
	// Token is a shared secret: the embedded server requires it of every
	// client, and clients present it.
	Token string
	// NKeySeed is a file holding this client's nkey seed (see `hermes
	// keygen`); the client signs the server's challenge with it.
	NKeySeed string
	// NKeyUsers are the public user nkeys the embedded server admits.
	NKeyUsers []string
	// TLSCert and TLSKey are the embedded server's certificate, or a
	// client's certificate for mutual TLS.
	TLSCert, TLSKey string
	// TLSCA is, for the embedded server, the CA that must have signed every
	// client's certificate (mutual TLS); for a client, the CA that signed
	// the server's.
	TLSCA string
}

// Validate checks that the settings go together and their files can be
// read, so that a mistake is one clear error at start, not a refused
// connection later.
func (s Security) Validate() error {
	if s.Token != "" && (len(s.NKeyUsers) > 0 || s.NKeySeed != "") {
		return fmt.Errorf("--token and nkeys: choose one way to authenticate")
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together")
	}
	for _, f := range []string{s.NKeySeed, s.TLSCert, s.TLSKey, s.TLSCA} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return err
		}
	}
	if s.NKeySeed != "" {
		if _, err := readSeed(s.NKeySeed); err != nil {
			return err
		}
	}
	return nil
}

// ReadNKeyUsers reads public user nkeys, one per line; blank lines and
// lines starting with # are skipped.
func ReadNKeyUsers(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !nkeys.IsValidPublicUserKey(line) {
			return nil, fmt.Errorf("%s:%d: %.12q… is not a public user nkey (they start with U)", path, n, line)
		}
		keys = append(keys, line)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no public user nkeys", path)
	}
	return keys, nil
}

func readSeed(path string) (nkeys.KeyPair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	kp, err := nkeys.FromSeed(bytes.TrimSpace(b))
	if err != nil {
		return nil, fmt.Errorf("%s: not an nkey seed: %w", path, err)
	}
	return kp, nil
}

// NewNKey returns a fresh user nkey: its seed, to keep secret on the
// device, and its public key, to list on the server.
func NewNKey() (seed []byte, public string, err error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, "", err
	}
	if seed, err = kp.Seed(); err != nil {
		return nil, "", err
	}
	public, err = kp.PublicKey()
	return seed, public, err
}

// clientOptions returns the NATS options that present s's credentials.
func (s Security) clientOptions() ([]nats.Option, error) {
	var opts []nats.Option
	if s.Token != "" {
		opts = append(opts, nats.Token(s.Token))
	}
	if s.NKeySeed != "" {
		o, err := nats.NkeyOptionFromSeed(s.NKeySeed)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.NKeySeed, err)
		}
		opts = append(opts, o)
	}
	if s.TLSCA != "" {
		opts = append(opts, nats.RootCAs(s.TLSCA))
	}
	if s.TLSCert != "" {
		opts = append(opts, nats.ClientCert(s.TLSCert, s.TLSKey))
	}
	return opts, nil
}

// serverOptions sets up the embedded server's authentication and TLS. self
// is the parameter server's own key: it is admitted beside the workers'.
func (s Security) serverOptions(o *server.Options, self nkeys.KeyPair) error {
	o.Authorization = s.Token
	if len(s.NKeyUsers) > 0 {
		pub, err := self.PublicKey()
		if err != nil {
			return err
		}
		for _, k := range append([]string{pub}, s.NKeyUsers...) {
			o.Nkeys = append(o.Nkeys, &server.NkeyUser{Nkey: k})
		}
	}
	if s.TLSCert != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: s.TLSCert, KeyFile: s.TLSKey,
			CaFile: s.TLSCA, Verify: s.TLSCA != ""})
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		o.TLSConfig, o.TLS, o.TLSVerify, o.TLSTimeout = tc, true, s.TLSCA != "", 5
	} else if s.TLSCA != "" {
		return fmt.Errorf("--tls-ca needs --tls-cert and --tls-key on the server")
	}
	return nil
}
