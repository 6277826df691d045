package email

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// testCA is a self-signed certificate for 127.0.0.1 and localhost, and a pool trusting it.
func testCA(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mx.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

// delivered is what the fake SMTP server received in one transaction.
type delivered struct {
	user, pass string
	tls        bool
	helo       string
	from       string
	rcpts      []string
	data       []byte
}

// fakeSMTP is a real go-smtp server whose backend records messages and can be told to refuse
// at RCPT or DATA.
type fakeSMTP struct {
	addr string
	port string

	mu       sync.Mutex
	got      []delivered
	rcptErr  error
	dataErr  error
	password string
}

type fakeSMTPOptions struct {
	implicitTLS bool        // listen with TLS from the first byte
	tls         *tls.Config // offered with STARTTLS when not implicit
}

func newFakeSMTP(t *testing.T, o fakeSMTPOptions) *fakeSMTP {
	t.Helper()
	f := &fakeSMTP{password: "s3cret"}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &fakeSession{f: f, cur: delivered{tls: isTLS, helo: c.Hostname()}, conn: c}, nil
	}))
	s.Domain = "mx.test"
	s.AllowInsecureAuth = true
	s.ErrorLog = nopLogger{}
	var ln net.Listener
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.implicitTLS {
		ln = tls.NewListener(ln, o.tls)
	} else {
		s.TLSConfig = o.tls
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	f.addr = ln.Addr().String()
	_, f.port, _ = net.SplitHostPort(f.addr)
	return f
}

func (f *fakeSMTP) messages() []delivered {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]delivered(nil), f.got...)
}

func (f *fakeSMTP) fail(rcpt, data error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rcptErr, f.dataErr = rcpt, data
}

type fakeSession struct {
	f    *fakeSMTP
	conn *smtp.Conn
	cur  delivered
}

func (s *fakeSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *fakeSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if pass != s.f.password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		s.cur.user, s.cur.pass = user, pass
		return nil
	}), nil
}

func (s *fakeSession) Mail(from string, _ *smtp.MailOptions) error {
	_, s.cur.tls = s.conn.TLSConnectionState()
	s.cur.from = from
	return nil
}

func (s *fakeSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.f.mu.Lock()
	err := s.f.rcptErr
	s.f.mu.Unlock()
	if err != nil {
		return err
	}
	s.cur.rcpts = append(s.cur.rcpts, to)
	return nil
}

func (s *fakeSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.f.dataErr != nil {
		return s.f.dataErr
	}
	d := s.cur
	d.data = b
	s.f.got = append(s.f.got, d)
	return nil
}

func (s *fakeSession) Reset() {
	s.cur = delivered{user: s.cur.user, pass: s.cur.pass, tls: s.cur.tls, helo: s.cur.helo}
}
func (s *fakeSession) Logout() error { return nil }

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}
