package cluster

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
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
	// NKeyUsers are the workers the embedded server admits, each bound to
	// its key: the name is the only one it may join and publish under.
	NKeyUsers []NKeyUser
	// TLSCert and TLSKey are the embedded server's certificate, or a
	// client's certificate for mutual TLS.
	TLSCert, TLSKey string
	// TLSCA is, for the embedded server, the CA that must have signed every
	// client's certificate (mutual TLS); for a client, the CA that signed
	// the server's.
	TLSCA string
}

// mode names how clients prove who they are (see Summary.Auth).
func (s Security) mode() string {
	switch {
	case s.Token != "":
		return "token"
	case len(s.NKeyUsers) > 0 || s.NKeySeed != "":
		return "nkey"
	case s.TLSCA != "":
		return "mtls"
	}
	return "none"
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

// NKeyUser is a worker name bound to the public nkey that proves it: a
// worker may join, and publish, only under the name of its key. The name
// "ps" binds the parameter server's own key (for an external NATS, see
// NATSConfig).
type NKeyUser struct {
	Name, Key string
}

// nkeyLineFormat is how an --nkey-file line looks; errors show it.
const nkeyLineFormat = "NAME UPUBKEY, as `hermes keygen --name NAME` prints it"

// ReadNKeyUsers reads a users file: one "NAME UPUBKEY" a line, as hermes
// keygen prints them; blank lines and lines starting with # are skipped.
// Names and keys must be unique.
func ReadNKeyUsers(path string) ([]NKeyUser, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var users []NKeyUser
	names, keys := map[string]int{}, map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("%s:%d: %.16q…: want %s", path, n, line, nkeyLineFormat)
		}
		u := NKeyUser{Name: f[0], Key: f[1]}
		if !ValidName(u.Name) {
			return nil, fmt.Errorf("%s:%d: name %q: use letters, digits, - and _ (want %s)", path, n, u.Name, nkeyLineFormat)
		}
		if !nkeys.IsValidPublicUserKey(u.Key) {
			return nil, fmt.Errorf("%s:%d: %.12q… is not a public user nkey (they start with U; want %s)", path, n, u.Key, nkeyLineFormat)
		}
		if prev, dup := names[u.Name]; dup {
			return nil, fmt.Errorf("%s:%d: name %s is bound on line %d already", path, n, u.Name, prev)
		}
		if prev, dup := keys[u.Key]; dup {
			return nil, fmt.Errorf("%s:%d: this key is bound on line %d already: one key, one name", path, n, prev)
		}
		names[u.Name], keys[u.Key] = n, n
		users = append(users, u)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%s: no users (want lines of %s)", path, nkeyLineFormat)
	}
	return users, nil
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

// serverOptions sets up the embedded server's authentication, permissions
// and TLS, and returns the options with which the parameter server's own
// in-process connection authenticates. The server's user may do anything;
// a worker's user only what subj.permissions grants its name. A token is
// one identity that every client shares: it gets no permissions to tell
// workers apart (hermes ps warns of it).
func (s Security) serverOptions(o *server.Options, subj subjects) ([]nats.Option, error) {
	var own []nats.Option
	switch {
	case s.Token != "":
		o.Authorization = s.Token
		own = append(own, nats.Token(s.Token))
	case len(s.NKeyUsers) > 0:
		// The server admits itself by a key of its own, made for this run.
		self, err := nkeys.CreateUser()
		if err != nil {
			return nil, err
		}
		pub, err := self.PublicKey()
		if err != nil {
			return nil, err
		}
		o.Nkeys = []*server.NkeyUser{{Nkey: pub}}
		for _, u := range s.NKeyUsers {
			nu := &server.NkeyUser{Nkey: u.Key, Permissions: subj.permissions(u.Name)}
			if u.Name == "ps" {
				nu.Permissions = nil
			}
			o.Nkeys = append(o.Nkeys, nu)
		}
		own = append(own, nats.Nkey(pub, self.Sign))
	case s.TLSCA != "":
		// Mutual TLS without nkeys: the certificate is the identity.
		secret := rand.Text()
		o.CustomClientAuthentication = certAuth{subj: subj, secret: secret}
		own = append(own, nats.Token(secret))
	}
	if s.TLSCert != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: s.TLSCert, KeyFile: s.TLSKey,
			CaFile: s.TLSCA, Verify: s.TLSCA != ""})
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		o.TLSConfig, o.TLS, o.TLSVerify, o.TLSTimeout = tc, true, s.TLSCA != "", 5
	} else if s.TLSCA != "" {
		return nil, fmt.Errorf("--tls-ca needs --tls-cert and --tls-key on the server")
	}
	return own, nil
}

// certAuth admits clients of a mutual-TLS server by their certificates, as
// nats-server's verify_and_map does: the certificate's common name is the
// worker's name, and the worker gets that name's permissions. The TLS
// handshake has verified the certificate against the CA before Check is
// called. The parameter server's own in-process connection, which has no
// certificate, proves itself with a secret made for the run.
type certAuth struct {
	subj   subjects
	secret string
}

// Check implements server.Authentication.
func (a certAuth) Check(c server.ClientAuthentication) bool {
	if o := c.GetOpts(); o != nil && o.Token != "" {
		if subtle.ConstantTimeCompare([]byte(o.Token), []byte(a.secret)) != 1 {
			return false
		}
		c.RegisterUser(&server.User{Username: "ps"})
		return true
	}
	tls := c.GetTLSConnectionState()
	if tls == nil || len(tls.PeerCertificates) == 0 {
		return false
	}
	name := certName(tls.PeerCertificates[0])
	if !ValidName(name) || name == "ps" {
		return false
	}
	c.RegisterUser(&server.User{Username: name, Permissions: a.subj.permissions(name)})
	return true
}

// certName is the worker name a client certificate stands for: its common
// name.
func certName(c *x509.Certificate) string { return c.Subject.CommonName }
