#!/bin/sh
for i in $(seq 1 100); do
  python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" $1 2>/dev/null && exit 0
  sleep 0.2
done
exit 1
