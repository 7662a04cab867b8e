"""Run auth_http answers through real nginx 1.22.1 and record what it did.

Each case writes the answer bytes into /tmp/auth/resp (served by rec.py),
makes one login through nginx and records the client's reply, whether the
connection stayed open, how long the reply took and the new error_log lines.
Output: one JSON object per line.
"""
import sys, os, json, time, re, base64, hashlib, socket
sys.path.insert(0, '/tmp/auth')
LOG = '/tmp/auth/ng/logs/error.log'
UP = b'Auth-Server: 127.0.0.1\r\nAuth-Port: 22199\r\n'
OKH = b'HTTP/1.0 200 OK\r\nAuth-Status: OK\r\n'

def pad(total, tail=b'\r\n\r\n'):
    head = OKH + UP + b'X-Pad: '
    return head + b'x' * (total - len(head) - len(tail)) + tail

CASES = [
 # name, login kind, answer
 ('status-line-500', 'pop3', b'HTTP/1.1 500 Oops\r\nAuth-Status: OK\r\n' + UP + b'\r\n'),
 ('no-status-line-lf-only', 'pop3', b'Auth-Status: OK\nAuth-Server: 127.0.0.1\nAuth-Port: 22199\n\n'),
 ('no-auth-status', 'pop3', b'HTTP/1.0 200 OK\r\n' + UP + b'\r\n'),
 ('tab-before-ok', 'pop3', b'HTTP/1.0 200 OK\r\nAuth-Status:\tOK\r\n' + UP + b'\r\n'),
 ('lowercase-ok', 'pop3', b'HTTP/1.0 200 OK\r\nAuth-Status: ok\r\n' + UP + b'\r\n'),
 ('fail-then-ok', 'pop3', b'HTTP/1.0 200 OK\r\nAuth-Status: Bad one\r\nAuth-Status: OK\r\n' + UP + b'\r\n'),
 ('fail-then-fail', 'pop3', b'HTTP/1.0 200 OK\r\nAuth-Status: First bad\r\nAuth-Status: Second bad\r\n\r\n'),
 ('fail-then-wait', 'pop3', b'HTTP/1.0 200 OK\r\nAuth-Status: Bad\r\nAuth-Status: WAIT\r\n\r\n'),
 ('status-no-colon-pop3', 'pop3', b'HTTP/1.0 200 OK\r\nAuth-Status\r\n' + UP + b'\r\n'),
 ('status-empty-pop3', 'pop3', b'HTTP/1.0 200 OK\r\nAuth-Status:   \r\n' + UP + b'\r\n'),
 ('status-empty-smtp', 'smtp', b'HTTP/1.0 200 OK\r\nAuth-Status: \r\n' + UP + b'\r\n'),
 ('fail-then-empty-smtp', 'smtp', b'HTTP/1.0 200 OK\r\nAuth-Status: Bad\r\nAuth-Status:\r\n' + UP + b'\r\n'),
 ('fail-then-empty-pop3', 'pop3', b'HTTP/1.0 200 OK\r\nAuth-Status: Bad\r\nAuth-Status:\r\n' + UP + b'\r\n'),
 ('ok-trailing-spaces', 'pop3', b'HTTP/1.0 200 OK\r\nAuth-Status: OK   \r\n' + UP + b'\r\n'),
 ('fail-inner-trailing-spaces', 'pop3', b'HTTP/1.0 200 OK\r\nAuth-Status:   Bad  msg \t x  \r\n\r\n'),
 ('names-case-insensitive', 'pop3', b'HTTP/1.0 200 OK\r\nAUTH-STATUS: OK\r\nauth-server: 127.0.0.1\r\nAuth-PORT: 22199\r\n\r\n'),
 ('repeat-server-last-wins', 'pop3', OKH + b'Auth-Server: 10.0.0.1\r\nAuth-Server: 127.0.0.1\r\nAuth-Port: 1\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-no-colon-clears', 'pop3', OKH + UP + b'Auth-Server\r\n\r\n'),
 ('unknown-no-colon-ignored', 'pop3', OKH + b'X-Whatever\r\n' + UP + b'\r\n'),
 ('server-leading-zeros', 'pop3', OKH + b'Auth-Server: 127.000.0.01\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-empty-part', 'pop3', OKH + b'Auth-Server: 127..0.1\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-broadcast', 'pop3', OKH + b'Auth-Server: 255.255.255.255\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-five-parts', 'pop3', OKH + b'Auth-Server: 1.2.3.4.5\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-localhost', 'pop3', OKH + b'Auth-Server: localhost\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-ipv6', 'pop3', OKH + b'Auth-Server: ::1\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-ipv6-brackets', 'pop3', OKH + b'Auth-Server: [::1]\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-ipv6-zone', 'pop3', OKH + b'Auth-Server: fe80::1%lo\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-ipv4-mapped', 'pop3', OKH + b'Auth-Server: ::ffff:127.0.0.1\r\nAuth-Port: 22199\r\n\r\n'),
 ('port-plus', 'pop3', OKH + b'Auth-Server: 127.0.0.1\r\nAuth-Port: +22199\r\n\r\n'),
 ('port-zero', 'pop3', OKH + b'Auth-Server: 127.0.0.1\r\nAuth-Port: 0\r\n\r\n'),
 ('port-70000', 'pop3', OKH + b'Auth-Server: 127.0.0.1\r\nAuth-Port: 70000\r\n\r\n'),
 ('port-leading-zero', 'pop3', OKH + b'Auth-Server: 127.0.0.1\r\nAuth-Port: 022199\r\n\r\n'),
 ('bad-server-and-port', 'pop3', OKH + b'Auth-Server: localhost\r\nAuth-Port: 70000\r\n\r\n'),
 ('no-port', 'pop3', OKH + b'Auth-Server: 127.0.0.1\r\n\r\n'),
 ('no-server', 'pop3', OKH + b'Auth-Port: 22199\r\n\r\n'),
 ('empty-block', 'pop3', b'\r\n'),
 ('wait-non-numeric', 'pop3', b'HTTP/1.0 200 OK\r\nAuth-Status: Bad\r\nAuth-Wait: soon\r\n\r\n'),
 ('wait-numeric-then-junk', 'pop3', b'HTTP/1.0 200 OK\r\nAuth-Status: Bad\r\nAuth-Wait: 1\r\nAuth-Wait: x\r\n\r\n'),
 ('wait-zero', 'pop3', b'HTTP/1.0 200 OK\r\nAuth-Status: Bad\r\nAuth-Wait: 0\r\n\r\n'),
 ('underscore-name', 'pop3', b'HTTP/1.0 200 OK\r\nAuth_Status: OK\r\n' + UP + b'\r\n'),
 ('space-in-name', 'pop3', b'HTTP/1.0 200 OK\r\nAuth-Status OK\r\n' + UP + b'\r\n'),
 ('dash-first', 'pop3', b'HTTP/1.0 200 OK\r\n-X: y\r\n' + UP + b'\r\n'),
 ('digit-first', 'pop3', OKH + b'1X: y\r\n' + UP + b'\r\n'),
 ('garbage', 'pop3', b'garbage line\r\n\r\n'),
 ('status-line-bare-cr', 'pop3', b'HTTP/1.0 200 OK\rX\r\n' + UP + b'\r\n'),
 ('header-bare-cr', 'pop3', b'HTTP/1.0 200 OK\r\nAuth-Status: OK\rX\r\n' + UP + b'\r\n'),
 ('end-bare-cr', 'pop3', OKH + UP + b'\rX'),
 ('size-1024', 'pop3', pad(1024)),
 ('size-1025', 'pop3', pad(1025)),
 ('size-1024-lf', 'pop3', pad(1024, b'\n\n')),
 ('size-1024-then-more', 'pop3', pad(1024) + b'trailing body'),
 ('incomplete-1024-hang', 'pop3', b'#hangafter\n' + pad(1030)[:1024]),
 ('close-without-answer', 'pop3', b'#close\n'),
 ('partial-then-close', 'pop3', OKH),
 ('delay-over-timeout', 'pop3', b'#delay 3\n' + OKH + UP + b'\r\n'),
 ('hang', 'pop3', b'#hang\n'),
 ('apop-no-pass', 'apop', OKH + UP + b'\r\n'),
 ('apop-empty-pass', 'apop', OKH + UP + b'Auth-Pass:\r\n\r\n'),
 ('smtp-no-pass-ok', 'smtp', OKH + UP + b'\r\n'),
 ('smtp-error-code', 'smtp', b'HTTP/1.0 200 OK\r\nAuth-Status: Temporary server problem, try again later\r\nAuth-Error-Code: 451 4.3.0\r\n\r\n'),
 ('smtp-error-code-empty', 'smtp', b'HTTP/1.0 200 OK\r\nAuth-Status: Nope\r\nAuth-Error-Code:\r\n\r\n'),
 ('smtp-wait-1', 'smtp', b'HTTP/1.0 200 OK\r\nAuth-Status: Later\r\nAuth-Wait: 1\r\n\r\n'),
 ('user-override-fail', 'pop3', b'HTTP/1.0 200 OK\r\nAuth-Status: Bad\r\nAuth-User: other\r\n\r\n'),
 ('user-override-ok', 'pop3', OKH + UP + b'Auth-User: other\r\n\r\n'),
 ('server-ipv6-upper-mapped', 'pop3', OKH + b'Auth-Server: ::FFFF:127.0.0.1\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-ipv6-full', 'pop3', OKH + b'Auth-Server: 0000:0000:0000:0000:0000:0000:0000:0001\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-ipv6-mapped-zeros', 'pop3', OKH + b'Auth-Server: ::ffff:127.000.0.01\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-ipv6-five-digits', 'pop3', OKH + b'Auth-Server: 00001::1\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-trailing-tab', 'pop3', OKH + b'Auth-Server: 127.0.0.1\t\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-empty-parts-only', 'pop3', OKH + b'Auth-Server: ...\r\nAuth-Port: 22199\r\n\r\n'),
 ('reset-after-request', 'pop3', b'#rst\n'),
 ('server-ipv6-leading-colon', 'pop3', OKH + b'Auth-Server: :1:2:3:4:5:6:7:8\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-ipv6-trailing-colon', 'pop3', OKH + b'Auth-Server: 1::2:\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-ipv6-triple-colon', 'pop3', OKH + b'Auth-Server: :::\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-ipv6-v4-tail-too-late', 'pop3', OKH + b'Auth-Server: 1:2:3:4:5:6:7:1.2.3.4\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-ipv6-seven-then-double-colon', 'pop3', OKH + b'Auth-Server: 1:2:3:4:5:6:7::\r\nAuth-Port: 22199\r\n\r\n'),
 ('server-ipv6-v4-tail', 'pop3', OKH + b'Auth-Server: ::1:2:3:4:5:1.2.3.4\r\nAuth-Port: 22199\r\n\r\n'),
 ('refused', 'refused', b''),
 ('unix-nonexistent', 'unix-nonexistent', b''),
 ('unix-stale', 'unix-stale', b''),
]

PORTS = {'pop3': 22113, 'apop': 22110, 'smtp': 22025, 'refused': 22114, 'unix-nonexistent': 22115, 'unix-stale': 22116}

def login(kind):
    s = socket.create_connection(('127.0.0.1', PORTS[kind]), timeout=6)
    g = s.recv(1000)
    def tx(b):
        s.sendall(b)
        return s.recv(1000)
    if kind == 'apop':
        salt = re.search(rb'<[^>]*>', g).group(0)
        s.sendall(b'APOP good ' + hashlib.md5(salt + b'pw').hexdigest().encode() + b'\r\n')
    elif kind == 'smtp':
        tx(b'EHLO c\r\n')
        s.sendall(b'AUTH PLAIN ' + base64.b64encode(b'\0good\0pw') + b'\r\n')
    else:
        tx(b'USER good\r\n')
        s.sendall(b'PASS pw\r\n')
    return s

def logmsg(line):
    m = re.match(r'\S+ \S+ \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*)$', line)
    if not m:
        return line
    msg = m.group(2)
    up = re.search(r', upstream: (\S+?)(,|$)', msg)
    msg = re.sub(r', client: .*$', '', msg)
    return m.group(1) + ': ' + msg + (' [upstream: %s]' % up.group(1) if up else '')

out = []
only = sys.argv[1:]
for name, kind, resp in CASES:
    if only and name not in only:
        continue
    open('/tmp/auth/resp', 'wb').write(resp)
    size = os.path.getsize(LOG)
    t0 = time.time()
    s = login(kind)
    s.settimeout(8)
    try:
        reply = s.recv(1000)
    except socket.timeout:
        reply = b'<timeout>'
    dt = time.time() - t0
    s.settimeout(0.5)
    try:
        more = s.recv(1000)
        state = 'closed' if more == b'' else 'data'
    except socket.timeout:
        state = 'open'
    except ConnectionResetError:
        state = 'reset'
    s.close()
    time.sleep(0.3)
    with open(LOG) as f:
        f.seek(size)
        lines = [logmsg(l.rstrip('\n')) for l in f if 'connected to' not in l and 'session done' not in l]
    rec = {'name': name, 'kind': kind, 'answer': resp.decode('latin-1'), 'reply': reply.decode('latin-1'),
           'after': state, 'seconds': round(dt, 1), 'log': lines}
    print(json.dumps(rec), flush=True)
