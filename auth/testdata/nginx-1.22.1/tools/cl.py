import socket, ssl, time, sys, base64, hmac, hashlib, re
def conn(port, host='127.0.0.1', fam=socket.AF_INET, pre=b'', tls=False, cert=None):
    s=socket.socket(fam); s.settimeout(6); s.connect((host,port))
    if pre: s.sendall(pre)
    if tls:
        ctx=ssl.create_default_context(); ctx.check_hostname=False; ctx.verify_mode=ssl.CERT_NONE
        ctx.maximum_version=ssl.TLSVersion.TLSv1_2
        if cert: ctx.load_cert_chain(*cert)
        s=ctx.wrap_socket(s)
    return s
def rd(s):
    try:
        d=s.recv(65536)
        time.sleep(0.15)
        s.setblocking(False)
        try:
            d+=s.recv(65536)
        except Exception: pass
        s.setblocking(True); s.settimeout(6)
        return d
    except Exception as e: return repr(e).encode()
def tx(s, line):
    s.sendall(line); return rd(s)
