import socket, threading, os, time, sys, select, glob
CAP='/tmp/auth/cap'
RESP='/tmp/auth/resp'   # response bytes; first line "#delay N" / "#close" / "#hang" optional
n=[0]; lock=threading.Lock()
def handle(c, tag):
    data=b''
    c.settimeout(5)
    try:
        while b'\r\n\r\n' not in data:
            d=c.recv(65536)
            if not d: break
            data+=d
    except Exception as e:
        pass
    with lock:
        n[0]+=1; k=n[0]
    open('%s/%03d-%s.bin'%(CAP,k,tag),'wb').write(data)
    seq='/tmp/auth/seq/%d'%k
    with lock:
        q=sorted(glob.glob('/tmp/auth/seq/q*'))
        nxt=q[0] if q else None
        if nxt:
            resp=open(nxt,'rb').read(); os.unlink(nxt)
    if nxt: pass
    elif os.path.exists(seq): resp=open(seq,'rb').read()
    else:
     try: resp=open(RESP,'rb').read()
     except: resp=b'HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\n\r\n'
    open('/tmp/auth/answers.log','ab').write(b'%03d ' % k + resp.split(b'\r\n')[1] + b' | ' + data.split(b'\r\n')[3] + b'\n')  # ANSWERLOG
    while resp.startswith(b'#'):
        line,_,resp=resp.partition(b'\n')
        w=line.split()
        if w[0]==b'#delay': time.sleep(float(w[1]))
        elif w[0]==b'#close': c.close(); return
        elif w[0]==b'#rst':
            import struct
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii',1,0)); c.close(); return
        elif w[0]==b'#hang': time.sleep(30); c.close(); return
        elif w[0]==b'#hangafter': c.sendall(resp); time.sleep(30); c.close(); return
    try:
        c.sendall(resp)
        time.sleep(0.2)
    except Exception: pass
    c.close()
def serve(s, tag):
    while True:
        c,_=s.accept()
        threading.Thread(target=handle,args=(c,tag),daemon=True).start()
s1=socket.socket(); s1.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s1.bind(('127.0.0.1',22001)); s1.listen(50)
s2=socket.socket(socket.AF_INET6); s2.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s2.bind(('::1',22002)); s2.listen(50)
try: os.unlink('/tmp/auth/auth.sock')
except: pass
s3=socket.socket(socket.AF_UNIX); s3.bind('/tmp/auth/auth.sock'); os.chmod('/tmp/auth/auth.sock',0o777); s3.listen(50)
for s,t in ((s1,'tcp'),(s2,'tcp6'),(s3,'unix')):
    threading.Thread(target=serve,args=(s,t),daemon=True).start()
while True: time.sleep(100)
