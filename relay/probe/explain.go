package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"syscall"

	"github.com/turnwall/turnwall/relay/turnclient"
)

// explainRedirect says why an Allocate that was redirected failed.
func explainRedirect(transport string, r *turnclient.Redirect, err error) string {
	var re *turnclient.RedirectError
	if errors.As(err, &re) {
		if re.Loop() {
			return fmt.Sprintf("%s; the alternate sent it back to %s (redirect loop between relays that drain or are full; one redirect is followed, as a browser does)", r, re.Next)
		}
		return fmt.Sprintf("%s; the alternate redirected again (to %s): only one redirect is followed, as a browser does; both relays drain or are full", r, re.Next)
	}
	return r.String() + "; on the alternate: " + explain(transport, r.To, err)
}

// explain says in plain words why a step towards server over transport failed.
func explain(transport string, server netip.AddrPort, err error) string {
	proto, what := "UDP", "outbound UDP"
	switch transport {
	case TCP:
		proto, what = "TCP", "outbound TCP"
	case TLS:
		proto, what = "TLS over TCP", "outbound TCP"
	}
	to := fmt.Sprintf("%s %d to %s", proto, server.Port(), server.Addr())
	switch code := turnclient.Code(err); code {
	case 0:
	case 401:
		return fmt.Sprintf("%s: the relay refused the credentials (401 Unauthorized): wrong username or password, or a TURN REST username that expired or was signed with another shared secret", to)
	case 403:
		return fmt.Sprintf("%s: the relay refuses this peer (403 Forbidden): its peer policy does not allow the address", to)
	case 437:
		return fmt.Sprintf("%s: allocation mismatch (437): a stale allocation from the same address; retry", to)
	case 438:
		return fmt.Sprintf("%s: stale nonce (438) not recovered", to)
	case 440:
		return fmt.Sprintf("%s: the relay does not support this address family (440)", to)
	case 441:
		return fmt.Sprintf("%s: wrong credentials for the existing allocation (441)", to)
	case 442:
		return fmt.Sprintf("%s: the relay does not support this transport (442)", to)
	case 300:
		return fmt.Sprintf("%s: the relay redirects new allocations elsewhere (300 Try Alternate: it drains or is at capacity) without a usable alternate", to)
	case 486:
		return fmt.Sprintf("%s: the relay's allocation quota is reached (486): too many allocations for this user, or in total", to)
	case 508:
		return fmt.Sprintf("%s: the relay is out of capacity (508 Insufficient Capacity): no relay ports left", to)
	default:
		return fmt.Sprintf("%s: the relay answered with error %d", to, code)
	}
	var cerr *tls.CertificateVerificationError
	var uerr x509.UnknownAuthorityError
	var herr x509.HostnameError
	var ierr x509.CertificateInvalidError
	var rerr tls.RecordHeaderError
	switch {
	case errors.As(err, &cerr), errors.As(err, &uerr), errors.As(err, &herr), errors.As(err, &ierr):
		return fmt.Sprintf("%s: the certificate is refused: %v", to, err)
	case errors.As(err, &rerr):
		return fmt.Sprintf("%s: the server does not speak TLS on this port (wrong port, or a proxy answers)", to)
	case errors.Is(err, syscall.ECONNREFUSED):
		if transport == UDP {
			return fmt.Sprintf("%s was refused (ICMP port unreachable): nothing listens there", to)
		}
		return fmt.Sprintf("%s was refused: nothing listens there, or a firewall rejects it", to)
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return fmt.Sprintf("%s: this machine's own firewall refuses the packet (the kernel said %q): a local nftables/iptables output rule or security policy blocks %s", to, "operation not permitted", what)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Sprintf("%s: no route (host or network unreachable): a firewall rejects it or routing is missing", to)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("%s: the connection was reset or closed: a firewall or proxy cut it, or the server refused the handshake", to)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err), strings.Contains(err.Error(), "timeout"):
		if transport == UDP {
			return fmt.Sprintf("%s timed out: the firewall drops %s (or nothing listens)", to, what)
		}
		return fmt.Sprintf("%s timed out: the firewall drops %s to this port", to, what)
	}
	return fmt.Sprintf("%s failed: %v", to, err)
}
