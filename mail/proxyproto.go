package mail

// Inbound PROXY protocol (listen ... proxy_protocol) and realip, as nginx
// 1.22.1 reads them: one peek of at most 107 bytes, no waiting for the rest
// of a header split across segments.

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"mailgate/auth"
	"mailgate/mail/errlog"
)

// proxyPeekSize is nginx 1.22.1's NGX_PROXY_PROTOCOL_MAX_HEADER.
const proxyPeekSize = 107

var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// proxyHeader is a parsed PROXY header. Src and friends are empty when the
// header carried no addresses (UNKNOWN, LOCAL, unsupported family).
type proxyHeader struct {
	size                       int
	src, dst, srcPort, dstPort string
	srcAP                      netip.AddrPort
	hasAddrs                   bool
	// errLog replaces "broken header: ..." for v2 errors nginx names.
	errLog string
}

func isHexDotColon(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':'
}

// parseProxyHeader parses the start of buf. ok is false for a broken
// header.
func parseProxyHeader(buf []byte) (h proxyHeader, ok bool) {
	if len(buf) >= 16 && bytes.Equal(buf[:12], proxyV2Sig) {
		return parseProxyV2(buf)
	}
	if len(buf) < 8 || !bytes.HasPrefix(buf, []byte("PROXY ")) {
		return h, false
	}
	p := buf[6:]
	skip := func(p []byte) (proxyHeader, bool) {
		if i := bytes.Index(p, []byte("\r\n")); i >= 0 {
			h.size = len(buf) - len(p) + i + 2
			return h, true
		}
		return h, false
	}
	if bytes.HasPrefix(p, []byte("UNKNOWN")) {
		return skip(p[7:])
	}
	if !bytes.HasPrefix(p, []byte("TCP4 ")) && !bytes.HasPrefix(p, []byte("TCP6 ")) {
		return h, false
	}
	p = p[5:]
	field := func(sep byte, addr bool) (string, bool) {
		i := 0
		for i < len(p) && p[i] != sep {
			if addr && !isHexDotColon(p[i]) {
				return "", false
			}
			if !addr && (p[i] < '0' || p[i] > '9') {
				return "", false
			}
			i++
		}
		if i == len(p) || i == 0 {
			return "", false
		}
		v := string(p[:i])
		p = p[i+1:]
		return v, true
	}
	var okk bool
	if h.src, okk = field(' ', true); !okk {
		return h, false
	}
	if h.dst, okk = field(' ', true); !okk {
		return h, false
	}
	if h.srcPort, okk = field(' ', false); !okk {
		return h, false
	}
	if h.dstPort, okk = field('\r', false); !okk {
		return h, false
	}
	for _, port := range []string{h.srcPort, h.dstPort} {
		if n, err := strconv.Atoi(port); err != nil || n > 65535 {
			return h, false
		}
	}
	if len(p) == 0 || p[0] != '\n' {
		return h, false
	}
	h.size = len(buf) - len(p) + 1
	h.hasAddrs = true
	if a, err := netip.ParseAddr(h.src); err == nil {
		n, _ := strconv.Atoi(h.srcPort)
		h.srcAP = netip.AddrPortFrom(a, uint16(n))
	}
	return h, true
}

func parseProxyV2(buf []byte) (h proxyHeader, ok bool) {
	if buf[12]&0xf0 != 0x20 {
		h.errLog = "unknown PROXY protocol version: " + strconv.Itoa(int(buf[12]>>4))
		return h, false
	}
	n := int(binary.BigEndian.Uint16(buf[14:16]))
	if 16+n > len(buf) {
		h.errLog = "header is too large"
		return h, false
	}
	h.size = 16 + n
	if buf[12]&0x0f != 1 || buf[13]&0x0f != 1 {
		return h, true // LOCAL, unknown command or not STREAM: no addresses
	}
	body := buf[16 : 16+n]
	var src, dst netip.Addr
	var sp, dp uint16
	switch buf[13] >> 4 {
	case 1:
		if len(body) < 12 {
			return h, false
		}
		src = netip.AddrFrom4([4]byte(body[0:4]))
		dst = netip.AddrFrom4([4]byte(body[4:8]))
		sp = binary.BigEndian.Uint16(body[8:10])
		dp = binary.BigEndian.Uint16(body[10:12])
	case 2:
		if len(body) < 36 {
			return h, false
		}
		src = netip.AddrFrom16([16]byte(body[0:16]))
		dst = netip.AddrFrom16([16]byte(body[16:32]))
		sp = binary.BigEndian.Uint16(body[32:34])
		dp = binary.BigEndian.Uint16(body[34:36])
	default:
		return h, true
	}
	h.src, h.dst = src.String(), dst.String()
	h.srcPort, h.dstPort = strconv.Itoa(int(sp)), strconv.Itoa(int(dp))
	h.srcAP = netip.AddrPortFrom(src, sp)
	h.hasAddrs = true
	return h, true
}

// peek reads what has arrived without consuming it, waiting until
// deadline for the first byte.
func peek(c net.Conn, buf []byte, deadline time.Time) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, syscall.EINVAL
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	c.SetReadDeadline(deadline)          //nolint:errcheck
	defer c.SetReadDeadline(time.Time{}) //nolint:errcheck
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK)
		return rerr != syscall.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

// readProxyProtocol reads the PROXY header and applies realip. It reports
// whether the session goes on.
func (e *engine) readProxyProtocol() bool {
	s := e.s
	buf := make([]byte, proxyPeekSize)
	n, err := peek(s.Conn, buf, time.Now().Add(e.timeout()))
	if err != nil {
		if errlog.IsTimeout(err) {
			s.Logf(errlog.Info, "client timed out (110: Connection timed out)")
		} else if en := errlog.Errno(err); en != 0 {
			s.Logf(errlog.Info, "recv() failed %s", errlog.ErrnoText(en))
		}
		return false
	}
	h, ok := parseProxyHeader(buf[:n])
	if !ok {
		if h.errLog != "" {
			s.Logf(errlog.Error, "%s", h.errLog)
		} else {
			s.Logf(errlog.Error, "broken header: \"%s\"", buf[:n])
		}
		return false
	}
	if _, err := io.ReadFull(s.Conn, buf[:h.size]); err != nil {
		return false
	}
	if !h.hasAddrs {
		return true
	}
	s.ProxyInfo = &auth.ProxyInfo{Addr: h.src, Port: h.srcPort, ServerAddr: h.dst, ServerPort: h.dstPort}
	if e.trustedPeer() && h.srcAP.IsValid() {
		s.Client = h.srcAP
		s.ClientIP = h.src
	}
	return true
}

// trustedPeer applies set_real_ip_from to the TCP peer.
func (e *engine) trustedPeer() bool {
	ri := e.sc.conf.RealIP
	peer := addrPortOf(e.s.Conn.RemoteAddr())
	if !peer.IsValid() {
		return ri.FromUnix
	}
	a := peer.Addr()
	for _, p := range ri.From {
		if p.Contains(a) || p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}
