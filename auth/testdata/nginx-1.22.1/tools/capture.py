"""Capture the auth_http requests of a real nginx 1.22.1 (see README.md here).

Needs nginx running with nginx.conf (this directory) and rec.py recording into
/tmp/auth/cap. For every shape it writes NAME.req (bytes received by the auth
server) and NAME.json (the inputs, as the client side knows them).
"""
import sys, os, glob, json, time, re, base64, hashlib, hmac, subprocess
sys.path.insert(0, '/tmp/auth')
from cl import *

OUT = sys.argv[1]
CAP = '/tmp/auth/cap'
EXTRA = [["X-Secret", "s3cr et"], ["X-Two", "two"]]

def clear():
    for f in glob.glob(CAP + '/*'):
        os.unlink(f)

def last():
    for _ in range(50):
        fs = sorted(glob.glob(CAP + '/*'))
        if fs:
            time.sleep(0.1)
            return open(sorted(glob.glob(CAP + '/*'))[-1], 'rb').read()
        time.sleep(0.1)
    raise SystemExit('nothing captured')

def save(name, meta):
    meta.setdefault('host', '127.0.0.1')
    meta.setdefault('uri', '/auth?x=1')
    meta.setdefault('headers', EXTRA)
    meta.setdefault('attempt', 1)
    meta.setdefault('client_ip', '127.0.0.1')
    for k in ('user', 'pass'):
        meta[k + '_hex'] = meta.pop(k).hex()
    open(os.path.join(OUT, name + '.req'), 'wb').write(last())
    open(os.path.join(OUT, name + '.json'), 'w').write(json.dumps(meta, indent=1) + '\n')
    print(name, 'ok')

def salt_of(g):
    return re.search(rb'<[^>]*>', g).group(0).decode()

def shape(name):
    clear()
    return name

# POP3 USER/PASS, escaping of every byte class, salt present but method plain
n = shape('pop3-plain-escaping')
s = conn(22110); rd(s); tx(s, b'USER go%od\r\n')
pw = b'pass%word \x01\x7f\xc3\xa9+:"'
tx(s, b'PASS ' + pw + b'\r\n')
save(n, {'method': 'plain', 'user': b'go%od', 'pass': pw, 'protocol': 'pop3'})

n = shape('pop3-apop')
s = conn(22110); g = rd(s); salt = salt_of(g)
d = hashlib.md5(salt.encode() + b'secret').hexdigest().encode()
tx(s, b'APOP user ' + d + b'\r\n')
save(n, {'method': 'apop', 'user': b'user', 'pass': d, 'salt': salt, 'protocol': 'pop3'})

n = shape('pop3-cram-md5')
s = conn(22110); g = rd(s); salt = salt_of(g)
tx(s, b'AUTH CRAM-MD5\r\n')
d = hmac.new(b'secret', salt.encode(), hashlib.md5).hexdigest().encode()
tx(s, base64.b64encode(b'user ' + d) + b'\r\n')
save(n, {'method': 'cram-md5', 'user': b'user', 'pass': d, 'salt': salt, 'protocol': 'pop3'})

n = shape('pop3-external-salt')
s = conn(22110); g = rd(s); salt = salt_of(g)
tx(s, b'AUTH EXTERNAL ' + base64.b64encode(b'extuser') + b'\r\n')
save(n, {'method': 'external', 'user': b'extuser', 'pass': b'', 'salt': salt, 'protocol': 'pop3',
         'note': '1.22.1 sends Auth-Salt for external; mailgate follows newer nginx and does not'})

n = shape('imap-login-quoted')
s = conn(22143); rd(s); tx(s, b'a2 LOGIN good@x.org "p w"\r\n')
save(n, {'method': 'plain', 'user': b'good@x.org', 'pass': b'p w', 'protocol': 'imap'})

n = shape('imap-cram-md5')
s = conn(22143); rd(s); ch = tx(s, b'c1 AUTHENTICATE CRAM-MD5\r\n')
salt = base64.b64decode(ch[2:].strip()).decode()
d = hmac.new(b'secret', salt.encode(), hashlib.md5).hexdigest().encode()
tx(s, base64.b64encode(b'user ' + d) + b'\r\n')
save(n, {'method': 'cram-md5', 'user': b'user', 'pass': d, 'salt': salt, 'protocol': 'imap'})

n = shape('imap-external')
s = conn(22143); rd(s); tx(s, b'e1 AUTHENTICATE EXTERNAL ' + base64.b64encode(b'extuser') + b'\r\n')
save(n, {'method': 'external', 'user': b'extuser', 'pass': b'', 'protocol': 'imap'})

n = shape('imap-attempt-2')
s = conn(22143); rd(s); tx(s, b'a1 LOGIN first pw\r\n'); clear(); tx(s, b'a2 LOGIN good2 pw2\r\n')
save(n, {'method': 'plain', 'user': b'good2', 'pass': b'pw2', 'protocol': 'imap', 'attempt': 2})

n = shape('smtp-plain')
s = conn(22025); rd(s); tx(s, b'EHLO client.example\r\n')
tx(s, b'AUTH PLAIN ' + base64.b64encode(b'authz\0good\0pw') + b'\r\n')
save(n, {'method': 'plain', 'user': b'good', 'pass': b'pw', 'protocol': 'smtp', 'client_host': '[UNAVAILABLE]'})

n = shape('smtp-cram-md5')
s = conn(22025); rd(s); tx(s, b'EHLO client.example\r\n'); ch = tx(s, b'AUTH CRAM-MD5\r\n')
salt = base64.b64decode(ch[4:].strip()).decode()
d = hmac.new(b'pw', salt.encode(), hashlib.md5).hexdigest().encode()
tx(s, base64.b64encode(b'good ' + d) + b'\r\n')
save(n, {'method': 'cram-md5', 'user': b'good', 'pass': d, 'salt': salt, 'protocol': 'smtp', 'client_host': '[UNAVAILABLE]'})

n = shape('smtp-none')
s = conn(22025); rd(s); tx(s, b'EHLO client.example\r\n'); tx(s, b'MAIL FROM:<from@x.org> SIZE=100\r\n')
tx(s, b'RCPT TO:<to@y.org>\r\n')
save(n, {'method': 'none', 'user': b'', 'pass': b'', 'protocol': 'smtp', 'client_host': '[UNAVAILABLE]',
         'smtp_helo': 'client.example', 'smtp_from': 'MAIL FROM:<from@x.org> SIZE=100', 'smtp_to': 'RCPT TO:<to@y.org>'})

n = shape('smtp-none-helo-stale')
s = conn(22025); rd(s); tx(s, b'HELO h\r\n'); tx(s, b'AUTH LOGIN\r\n'); tx(s, base64.b64encode(b'wait') + b'\r\n')
tx(s, base64.b64encode(b'secretpw') + b'\r\n'); clear()
tx(s, b'MAIL FROM:<a@b>\r\n'); tx(s, b'RCPT TO:<c@d> NOTIFY=NEVER\r\n')
save(n, {'method': 'none', 'user': b'wait', 'pass': b'secretpw', 'protocol': 'smtp', 'client_host': '[UNAVAILABLE]', 'attempt': 2,
         'smtp_helo': 'h', 'smtp_from': 'MAIL FROM:<a@b>', 'smtp_to': 'RCPT TO:<c@d> NOTIFY=NEVER',
         'note': '1.22.1 keeps the failed AUTH credentials; newer nginx clears them at MAIL (the SMTP module decides, the writer sends what it is given)'})

n = shape('pop3-proxy-protocol')
s = conn(22111, pre=b'PROXY TCP4 192.0.2.10 198.51.100.5 40000 993\r\n'); rd(s); tx(s, b'USER good\r\n'); tx(s, b'PASS pw\r\n')
save(n, {'method': 'plain', 'user': b'good', 'pass': b'pw', 'protocol': 'pop3', 'client_ip': '192.0.2.10',
         'proxy': ['192.0.2.10', '40000', '198.51.100.5', '993']})

n = shape('pop3-unix-auth')
s = conn(22112); rd(s); tx(s, b'USER good\r\n'); tx(s, b'PASS pw\r\n')
save(n, {'method': 'plain', 'user': b'good', 'pass': b'pw', 'protocol': 'pop3', 'host': 'localhost', 'uri': '/u'})

n = shape('imap-ipv6')
s = conn(22144, host='::1', fam=socket.AF_INET6); rd(s); tx(s, b'a LOGIN good pw\r\n')
save(n, {'method': 'plain', 'user': b'good', 'pass': b'pw', 'protocol': 'imap', 'host': '[::1]', 'uri': '/', 'client_ip': '::1'})

n = shape('pop3-localhost-url')
s = conn(22113); rd(s); tx(s, b'USER good\r\n'); tx(s, b'PASS pw\r\n')
save(n, {'method': 'plain', 'user': b'good', 'pass': b'pw', 'protocol': 'pop3', 'host': 'localhost', 'uri': '/'})

def certinfo(path):
    def o(*a):
        return subprocess.run(['openssl', 'x509', '-in', path, '-noout'] + list(a), capture_output=True, text=True).stdout.strip()
    return {'subject': o('-subject', '-nameopt', 'RFC2253').split('=', 1)[1],
            'issuer': o('-issuer', '-nameopt', 'RFC2253').split('=', 1)[1],
            'serial': o('-serial').split('=', 1)[1],
            'fingerprint': o('-fingerprint', '-sha1').split('=', 1)[1].replace(':', '').lower()}

crt = os.path.join(OUT, 'client.crt')
n = shape('imaps-client-cert')
s = conn(22993, tls=True, cert=(crt, '/tmp/auth/certs/client.key')); rd(s); tx(s, b'a LOGIN good pw\r\n')
tls = {'protocol': s.version(), 'cipher': s.cipher()[0], 'verify': 'FAILED:self-signed certificate', 'cert_file': 'client.crt'} | certinfo(crt)
save(n, {'method': 'plain', 'user': b'good', 'pass': b'pw', 'protocol': 'imap', 'tls': tls})

n = shape('imaps-verify-no-cert')
s = conn(22993, tls=True); rd(s); tx(s, b'a LOGIN good pw\r\n')
save(n, {'method': 'plain', 'user': b'good', 'pass': b'pw', 'protocol': 'imap', 'tls': {'protocol': s.version(), 'cipher': s.cipher()[0], 'verify': 'NONE'}})

n = shape('imaps-no-verify')
s = conn(22994, tls=True); rd(s); tx(s, b'a LOGIN good pw\r\n')
save(n, {'method': 'plain', 'user': b'good', 'pass': b'pw', 'protocol': 'imap', 'tls': {'protocol': s.version(), 'cipher': s.cipher()[0]}})


