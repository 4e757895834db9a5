"""Several hosts on one machine: network namespaces joined by veth pairs (needs root, iproute2).

The chain host (anvil and the API) holds one end of a point-to-point link to this machine's
own namespace and one to each worker host; its services listen on ``chain_address``, which
every worker reaches through its link (default route) and this machine through link 0. There
is no bridge, so nothing crosses the host's forwarding path or its firewall (Docker's FORWARD
rules cannot drop it), and worker hosts cannot reach each other: what a worker gets from
another, it gets through the chain host's gateway.

Addresses come from 198.18.0.0/15, the range RFC 2544 sets aside for test networks: each link
is a /30 whose place depends on the devnet's tag, so two devnets on one machine do not collide.
The only addresses ever contacted are loopback and these.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field

from hepx.errors import ConfigError

_BASE = ipaddress.IPv4Address("198.18.0.0")
_LINKS_PER_TAG = 16  # link 0 (this machine) and up to 15 worker hosts
TAGS = 2048  # 198.18.0.0/15 holds 2048 tags x 16 links x /30


def hosts_unavailable() -> str | None:
    """Why separate hosts cannot be made here, or None."""
    if os.geteuid() != 0:
        return "separate hosts need root (ip netns add)"
    if shutil.which("ip") is None:
        return "separate hosts need iproute2's ip command"
    return None


def _ip(*args: str, netns: str | None = None) -> None:
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ConfigError(f"`{' '.join(cmd)}` failed: {done.stderr.strip()}")


def _link_addresses(tag: int, link: int) -> tuple[str, str]:
    """(chain side, other side) of link ``link`` of devnet ``tag``."""
    first = _BASE + ((tag % TAGS) * _LINKS_PER_TAG + link) * 4
    return str(first + 1), str(first + 2)


@dataclass
class Host:
    netns: str
    address: str  # this host's end of its link to the chain host

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this host (ip netns exec execs it: same pid, same signals)."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def pids(self) -> list[int]:
        done = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True)
        return [int(p) for p in done.stdout.split()]

    def kill(self) -> None:
        """SIGKILL every process on this host: the agent and any job it runs."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class HostNetwork:
    tag: int
    chain: Host
    chain_address: str  # where anvil and the API listen; reachable from every host
    workers: list[Host] = field(default_factory=list)
    _links: list[str] = field(default_factory=list)  # root-side link names, for teardown

    @classmethod
    def create(cls, tag: int, workers: int) -> HostNetwork:
        if (why := hosts_unavailable()) is not None:
            raise ConfigError(why)
        if not 0 < workers < _LINKS_PER_TAG:
            raise ConfigError(f"separate hosts: 1 to {_LINKS_PER_TAG - 1} workers, not {workers}")
        prefix = f"hepx{tag % TAGS}"
        chain_ns = f"{prefix}-chain"
        chain_side, here = _link_addresses(tag, 0)
        net = cls(tag, Host(chain_ns, chain_side), chain_side)
        try:
            net._add_netns(chain_ns)
            net._link(0, None, here)
            for i in range(1, workers + 1):
                worker_ns = f"{prefix}-w{i}"
                net._add_netns(worker_ns)
                net.workers.append(Host(worker_ns, net._link(i, worker_ns, None)))
        except BaseException:
            net.teardown()
            raise
        return net

    def _add_netns(self, name: str) -> None:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)  # a leftover
        _ip("netns", "add", name)
        _ip("link", "set", "lo", "up", netns=name)

    def _link(self, link: int, netns: str | None, here: str | None) -> str:
        """A veth pair from the chain host to ``netns`` (None: this machine); the far end's
        address."""
        chain_end, far_end = f"hx{self.tag % TAGS}l{link}c", f"hx{self.tag % TAGS}l{link}h"
        chain_address, far_address = _link_addresses(self.tag, link)
        subprocess.run(["ip", "link", "del", far_end], capture_output=True)  # a leftover
        _ip("link", "add", chain_end, "type", "veth", "peer", "name", far_end)
        if netns is None:
            self._links.append(far_end)
        _ip("link", "set", chain_end, "netns", self.chain.netns)
        _ip("addr", "add", f"{chain_address}/30", "dev", chain_end, netns=self.chain.netns)
        _ip("link", "set", chain_end, "up", netns=self.chain.netns)
        if netns is not None:
            _ip("link", "set", far_end, "netns", netns)
        _ip("addr", "add", f"{far_address}/30", "dev", far_end, netns=netns)
        _ip("link", "set", far_end, "up", netns=netns)
        if netns is not None:  # everything a worker host sends goes to the chain host
            _ip("route", "add", "default", "via", chain_address, netns=netns)
        return far_address

    def remove(self, host: Host) -> None:
        """The host disappears: its processes are killed and its namespace deleted."""
        host.kill()
        subprocess.run(["ip", "netns", "del", host.netns], capture_output=True)

    def teardown(self) -> None:
        for host in [*self.workers, self.chain]:
            self.remove(host)
        for link in self._links:  # deleting the chain namespace took its ends with it
            subprocess.run(["ip", "link", "del", link], capture_output=True)
