package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority for tests: its certificate and the
// leaves it signs are PEM files in dir.
type testCA struct {
	t    *testing.T
	dir  string
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	file string // the CA's certificate
}

func newTestCA(t *testing.T, dir string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hermes test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{t: t, dir: dir, key: key, cert: cert}
	ca.file = ca.write("ca.pem", "CERTIFICATE", der)
	return ca
}

func (ca *testCA) write(name, typ string, der []byte) string {
	path := filepath.Join(ca.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		ca.t.Fatal(err)
	}
	return path
}

// leaf returns the certificate and key files of a certificate for the
// common name cn, valid for 127.0.0.1.
func (ca *testCA) leaf(cn string, usage x509.ExtKeyUsage) (cert, key string) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	return ca.write(cn+".pem", "CERTIFICATE", der), ca.write(cn+"-key.pem", "EC PRIVATE KEY", kb)
}

// pki writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA, as PEM files in dir.
func pki(t *testing.T, dir string) (ca, serverCert, serverKey, clientCert, clientKey string) {
	t.Helper()
	c := newTestCA(t, dir)
	serverCert, serverKey = c.leaf("server", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey = c.leaf("client", x509.ExtKeyUsageClientAuth)
	return c.file, serverCert, serverKey, clientCert, clientKey
}

// With nkeys and mutual TLS, a client is refused without the CA, without a
// client certificate, or with a key not on the list; one with all three
// joins and trains.
func TestNKeysAndTLS(t *testing.T) {
	dir := t.TempDir()
	ca, srvCert, srvKey, cliCert, cliKey := pki(t, dir)
	seedFile := func(name string) (string, string) {
		seed, pub, err := NewNKey()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name+".nk")
		os.WriteFile(path, seed, 0o600)
		return path, pub
	}
	friendSeed, friendPub := seedFile("friend")
	strangerSeed, _ := seedFile("stranger")
	ps := startFixturePS(t, func(c *PSConfig) {
		c.Settings.Epochs, c.Target = 1, 0.5
		c.Security = Security{NKeyUsers: []NKeyUser{{"friend", friendPub}}, TLSCert: srvCert, TLSKey: srvKey, TLSCA: ca}
	})
	url := strings.Replace(ps.URL(), "nats://", "tls://", 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	refused := []struct {
		name string
		sec  Security
		want string
	}{
		{"no-ca", Security{NKeySeed: friendSeed, TLSCert: cliCert, TLSKey: cliKey}, "certificate"},
		{"no-client-cert", Security{NKeySeed: friendSeed, TLSCA: ca}, "client certificate"},
		{"stranger", Security{NKeySeed: strangerSeed, TLSCA: ca, TLSCert: cliCert, TLSKey: cliKey}, "authorization"},
		{"no-nkey", Security{TLSCA: ca, TLSCert: cliCert, TLSKey: cliKey}, "authorization"},
	}
	for _, c := range refused {
		err := RunWorker(ctx, WorkerConfig{URL: url, Name: c.name, Security: c.sec, GiveUp: time.Second, Log: quietLog})
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), c.want) || !strings.Contains(err.Error(), "worker "+c.name) {
			t.Errorf("%s: %v, want an error about %s", c.name, err, c.want)
		}
		t.Logf("refused: %v", err)
	}
	sum := runWorkers(t, ps, WorkerConfig{URL: url, Name: "friend",
		Security: Security{NKeySeed: friendSeed, TLSCA: ca, TLSCert: cliCert, TLSKey: cliKey}})
	if !sum.ReachedTarget || sum.Workers != 1 {
		t.Fatalf("run with credentials: %+v", sum)
	}
}

// Mistakes in the security settings are caught at start, each with the
// flag or file at fault.
func TestSecurityValidate(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.nk")
	os.WriteFile(bad, []byte("SUAxxxx"), 0o600)
	users := filepath.Join(dir, "users")
	os.WriteFile(users, []byte("# workers\npi1 UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4\npi2 SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU\n"), 0o600)
	cases := []struct {
		sec  Security
		want string
	}{
		{Security{Token: "t", NKeySeed: bad}, "choose one"},
		{Security{TLSCert: "x.pem"}, "go together"},
		{Security{NKeySeed: filepath.Join(dir, "missing.nk")}, "missing.nk"},
		{Security{NKeySeed: bad}, "not an nkey seed"},
	}
	for _, c := range cases {
		if err := c.sec.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.sec, err, c.want)
		}
	}
	if _, err := ReadNKeyUsers(users); err == nil || !strings.Contains(err.Error(), "users:3") {
		t.Errorf("a seed in the users file: %v", err)
	}
}

// Host names and labels become valid worker names.
func TestName(t *testing.T) {
	for in, want := range map[string]string{"pi.local": "pi_local", "w1-x2.5": "w1-x2_5", "büro 3": "b_ro_3"} {
		if got := Name(in); got != want || !ValidName(got) {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
	if long := Name(strings.Repeat("a.", 100)); len(long) != 64 || !ValidName(long) {
		t.Errorf("a long name became %q", long)
	}
}
