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

// pki writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA, as PEM files in dir.
func pki(t *testing.T, dir string) (ca, serverCert, serverKey, clientCert, clientKey string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hermes test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kb)
	}
	ca = write("ca.pem", "CERTIFICATE", caDER)
	serverCert, serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	clientCert, clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return
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
		c.Security = Security{NKeyUsers: []string{friendPub}, TLSCert: srvCert, TLSKey: srvKey, TLSCA: ca}
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
	os.WriteFile(users, []byte("# workers\nUDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4\nSUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU\n"), 0o600)
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
		if got := Name(in); got != want || !validName(got) {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
	if long := Name(strings.Repeat("a.", 100)); len(long) != 64 || !validName(long) {
		t.Errorf("a long name became %q", long)
	}
}
