"""Capture whole auth_http sequences around Auth-Status: WAIT from nginx 1.22.1.

For each scenario the recorder answers the requests in order with the listed
answers (then "Auth-Status: Default stop"). Writes NAME.N.req (every request
nginx sent, in order) and NAME.json (first request's inputs, the answers,
the client's reply and the new error_log lines).
"""
import sys, os, glob, json, time, re, hashlib, socket
sys.path.insert(0, '/tmp/auth')
from cl import *

OUT = sys.argv[1]
CAP = '/tmp/auth/cap'
SEQ = '/tmp/auth/seq'
LOG = '/tmp/auth/ng/logs/error.log'
EXTRA = [["X-Secret", "s3cr et"], ["X-Two", "two"]]
H = 'HTTP/1.0 200 OK\r\n'
UP = 'Auth-Server: 127.0.0.1\r\nAuth-Port: 22199\r\n'

def apop(s, g):
    salt = re.search(rb'<[^>]*>', g).group(0).decode()
    d = hashlib.md5(salt.encode() + b'secret').hexdigest().encode()
    s.sendall(b'APOP user ' + d + b'\r\n')
    return {'method': 'apop', 'user': b'user', 'pass': d, 'salt': salt, 'protocol': 'pop3'}

def imap(s, g):
    s.sendall(b'a LOGIN good pw\r\n')
    return {'method': 'plain', 'user': b'good', 'pass': b'pw', 'protocol': 'imap'}

SCENARIOS = [
    ('requery-apop', 22110, apop, [H + 'Auth-Status: WAIT\r\nAuth-Wait: 1\r\n\r\n', H + 'Auth-Status: Invalid\r\n\r\n']),
    ('requery-apop-pass-override', 22110, apop, [H + 'Auth-Status: WAIT\r\nAuth-Pass: given\r\n\r\n',
                                                 H + 'Auth-Status: Invalid\r\nAuth-Wait: 1\r\n\r\n', H + 'Auth-Status: Last\r\n\r\n']),
    ('requery-user-override', 22143, imap, [H + 'Auth-Status: WAIT\r\nAuth-User: changed\r\n\r\n', H + 'Auth-Status: Bad\r\n\r\n']),
    ('sticky-wait-ok', 22143, imap, [H + 'Auth-Status: WAIT\r\n\r\n', H + 'Auth-Status: OK\r\n' + UP + '\r\n', H + 'Auth-Status: Bad\r\n\r\n']),
    ('sticky-wait-no-server', 22143, imap, [H + 'Auth-Status: WAIT\r\n\r\n', H + 'Auth-Status: OK\r\n\r\n', H + 'Auth-Status: Bad\r\n\r\n']),
    ('sticky-wait-fail-with-wait', 22143, imap, [H + 'Auth-Status: WAIT\r\n\r\n', H + 'Auth-Status: Bad\r\nAuth-Wait: 1\r\n\r\n',
                                                 H + 'Auth-Status: OK\r\n' + UP + '\r\n']),
    ('wait-timer-clears', 22143, imap, [H + 'Auth-Status: WAIT\r\nAuth-Wait: 1\r\n\r\n', H + 'Auth-Status: OK\r\n' + UP + '\r\n']),
    ('fail-with-wait-then-retry', 22143, imap, [H + 'Auth-Status: Bad\r\nAuth-Wait: 1\r\n\r\n']),
]

def logmsg(line):
    m = re.match(r'\S+ \S+ \[(\w+)\] \d+#\d+: (?:\*\d+ )?(.*)$', line)
    msg = m.group(2)
    up = re.search(r', upstream: (\S+?)(,|$)', msg)
    msg = re.sub(r', client: .*$', '', msg)
    return m.group(1) + ': ' + msg + (' [upstream: %s]' % up.group(1) if up else '')

open('/tmp/auth/resp', 'wb').write((H + 'Auth-Status: Default stop\r\n\r\n').encode())
os.makedirs(SEQ, exist_ok=True)
for name, port, login, answers in SCENARIOS:
    for f in glob.glob(CAP + '/*') + glob.glob(SEQ + '/*'):
        os.unlink(f)
    for i, a in enumerate(answers):
        open('%s/q%02d' % (SEQ, i), 'wb').write(a.encode())
    size = os.path.getsize(LOG)
    s = socket.create_connection(('127.0.0.1', port), timeout=8)
    g = s.recv(1000)
    meta = login(s, g)
    try:
        reply = s.recv(1000)
    except socket.timeout:
        reply = b'<timeout>'
    s.close()
    time.sleep(0.5)
    with open(LOG) as f:
        f.seek(size)
        lines = [logmsg(l.rstrip('\n')) for l in f if 'connected to' not in l and 'session done' not in l]
    reqs = sorted(glob.glob(CAP + '/*'))
    for i, r in enumerate(reqs):
        open(os.path.join(OUT, '%s.%d.req' % (name, i + 1)), 'wb').write(open(r, 'rb').read())
    meta.update({'host': '127.0.0.1', 'uri': '/auth?x=1', 'headers': EXTRA, 'attempt': 1, 'client_ip': '127.0.0.1',
                 'answers': answers, 'default_answer': H + 'Auth-Status: Default stop\r\n\r\n',
                 'reply': reply.decode('latin-1'), 'log': lines, 'requests': len(reqs)})
    for k in ('user', 'pass'):
        meta[k + '_hex'] = meta.pop(k).hex()
    open(os.path.join(OUT, name + '.json'), 'w').write(json.dumps(meta, indent=1) + '\n')
    print(name, len(reqs), repr(reply), lines)
