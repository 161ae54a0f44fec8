#!/usr/bin/env python3
"""Forwards a port on the host's loopback to an address inside a network namespace.

    forward.py NETNS_PATH TARGET_IP TARGET_PORT PORT_FILE

The listening socket is made first, on 127.0.0.1 with a port the kernel picks (written
to PORT_FILE), in the namespace the process starts in; then the process joins
NETNS_PATH, so every connection it makes to TARGET_IP:TARGET_PORT is made inside that
namespace. A socket stays in the namespace it was made in, so one process bridges the
two without any address outside loopback. Used by scripts/k8s-node.sh for the
apiserver of the test node.
"""

import asyncio
import ctypes
import os
import socket
import sys

CLONE_NEWNET = 0x40000000


def join_netns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            chunk = await reader.read(1 << 16)
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            writer.close()


async def main() -> None:
    netns, target_ip, target_port, port_file = sys.argv[1:5]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    join_netns(netns)

    async def serve(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(target_ip, int(target_port))
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))
        client_w.close()
        server_w.close()

    server = await asyncio.start_server(serve, sock=listener)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{listener.getsockname()[1]}\n")
    os.rename(tmp, port_file)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
