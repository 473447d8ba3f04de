"""Machines on one machine: network namespaces that stand for other hosts.

`lan(["gpu1", "gpu2"])` makes a bridge in this (the "api") namespace with an address of a
subnet no interface here uses, and one namespace per name, each joined to the bridge by a
veth pair and given an address of its own. Those hosts reach this one only through its
bridge address: anything they need from here must listen there. Postgres and Redis on this
machine listen on loopback only, so `forwarded()` relays a port of the bridge address to
them. Everything is removed when the block ends, however it ends.
"""

import random
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass


@dataclass(frozen=True)
class Host:
    name: str  # the namespace
    address: str

    def command(self, *argv: str) -> list[str]:
        """`argv` run on this host."""
        return ["ip", "netns", "exec", self.name, *argv]

    def pids(self) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]


@dataclass(frozen=True)
class Lan:
    gateway: str  # this namespace's address on the bridge
    hosts: dict[str, Host]


def can_make_namespaces() -> bool:
    probe = f"asr-probe-{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode == 0
    if made:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return made


@contextmanager
def lan(names: list[str]) -> Iterator[Lan]:
    tag = uuid.uuid4().hex[:6]
    bridge = f"asrbr{tag}"  # interface names: 15 characters at most
    subnet = _unused_subnet()
    made_namespaces: list[str] = []
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{subnet}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        hosts = {}
        for n, name in enumerate(names, start=2):
            namespace, outside, inside = f"asr-{tag}-{name}", f"asr{tag}{n}o", f"asr{tag}{n}i"
            _ip("netns", "add", namespace)
            made_namespaces.append(namespace)
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", inside, "netns", namespace)
            _ip("link", "set", outside, "master", bridge, "up")
            inner = ["netns", "exec", namespace, "ip"]
            _ip(*inner, "addr", "add", f"{subnet}.{n}/24", "dev", inside)
            _ip(*inner, "link", "set", inside, "up")
            _ip(*inner, "link", "set", "lo", "up")
            hosts[name] = Host(namespace, f"{subnet}.{n}")
        yield Lan(f"{subnet}.1", hosts)
    finally:
        for namespace in made_namespaces:
            for pid in Host(namespace, "").pids():
                subprocess.run(["kill", "-9", str(pid)], capture_output=True)
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def _unused_subnet() -> str:
    taken = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    while True:
        subnet = f"10.{random.randint(100, 250)}.{random.randint(0, 255)}"
        if f" {subnet}." not in taken:
            return subnet


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextmanager
def forwarded(listen_address: str, targets: dict[str, int]) -> Iterator[dict[str, int]]:
    """For each name, a port on `listen_address` relaying to 127.0.0.1:<target port>."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(_relay(listen_address, target))
            for name, target in targets.items()
        }


@contextmanager
def _relay(listen_address: str, target_port: int) -> Iterator[int]:
    server = socket.create_server((listen_address, 0))
    closing = threading.Event()

    def accept() -> None:
        while not closing.is_set():
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", target_port))
            except OSError:
                client.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        closing.set()
        server.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
