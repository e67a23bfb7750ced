import socket, threading, time, os
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
c = socket.create_connection(srv.getsockname()); s, _ = srv.accept()
def reader():
    while True:
        d = c.recv(1 << 20)
        if not d: break
threading.Thread(target=reader, daemon=True).start()
for size in (63_000, 242_000, 8_500_000):
    data = os.urandom(size)
    n = max(5, 20_000_000 // size)
    t0 = time.thread_time()
    for _ in range(n):
        s.sendall(data)
    dt = time.thread_time() - t0
    print(f"{size} bytes: {dt / n * 1e6:.0f} us CPU per send ({dt / n / size * 1e9:.2f} ns/byte)")
