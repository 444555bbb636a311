"""A private Redis Cluster on free loopback ports (masters plus replicas): for the cluster tests and local runs.

Each node is a `start_redis_server` process with cluster mode on; `redis-cli --cluster create` assigns the slots
and the replicas. Everything here is synchronous and blocking: it runs in fixtures, not on an event loop.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from redis import Redis
from redis.crc import key_slot
from redis.exceptions import RedisError

from services.local_redis import RedisServer, free_port, start_redis_server

SLOTS = 16384
Role = Literal["master", "replica"]


@dataclass
class ClusterNode:
    """One redis-server of the cluster; `role` and `master_id` are as of the last `refresh_roles`."""

    server: RedisServer
    directory: Path
    options: tuple[str, ...]
    node_id: str = ""
    role: Role = "master"
    master_id: str | None = None  # the node id of a replica's master
    killed: bool = False

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.server.process


@dataclass
class RedisClusterProcesses:
    """The processes of a running local cluster, and the few admin operations the tests need."""

    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def masters(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.role == "master" and not node.killed]

    @property
    def replicas(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.role == "replica" and not node.killed]

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """(host, port) of every live node: any of them lets a client discover the whole topology."""
        return [("127.0.0.1", node.port) for node in self.nodes if not node.killed]

    @property
    def url(self) -> str:
        """A URL for `RedisCluster.from_url`: the first live master (the client discovers the rest)."""
        return f"redis://127.0.0.1:{self.masters[0].port}/0"

    @property
    def all_nodes_url(self) -> str:
        """Every live node in one URL (`redis://h:p1,h:p2/0`): a client started while one is down still connects."""
        return "redis://" + ",".join(f"{host}:{port}" for host, port in self.startup_nodes) + "/0"

    def node(self, port: int) -> ClusterNode:
        return next(node for node in self.nodes if node.port == port)

    def cluster_info(self, port: int) -> dict[str, str]:
        """`CLUSTER INFO` of one node, as a dict of its `name:value` lines."""
        text = _command(port, "CLUSTER", "INFO")
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def errors(self, code: str) -> int:
        """How many `code` error replies (CROSSSLOT, MOVED...) the live nodes have sent since they started."""
        total = 0
        for node in self.nodes:
            if not node.killed:
                stats = _command(node.port, "INFO", "errorstats")  # redis-py parses INFO into a dict
                total += int(stats.get(f"errorstat_{code}", {}).get("count", 0))
        return total

    def refresh_roles(self) -> None:
        """Re-read node ids, roles and masters from `CLUSTER NODES` on a live node."""
        by_port = {node.port: node for node in self.nodes}
        for port, node_id, role, master_id in _cluster_nodes(self._live_port()):
            if (node := by_port.get(port)) is not None:
                node.node_id, node.role, node.master_id = node_id, role, master_id

    def master_for_slot(self, slot: int) -> int:
        """The port of the master serving `slot`, per `CLUSTER SLOTS` on a live node."""
        for start, end, master, *_replicas in _command(self._live_port(), "CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(master[1])
        raise RuntimeError(f"no master serves slot {slot}")

    def master_for_key(self, key: str | bytes) -> int:
        """The port of the master serving `key` (hash tags respected, as the server computes them)."""
        return self.master_for_slot(key_slot(key.encode() if isinstance(key, str) else key))

    def replicas_of(self, master_port: int) -> list[int]:
        master_id = self.node(master_port).node_id
        return [node.port for node in self.nodes if node.master_id == master_id and not node.killed]

    def replication_offset(self, port: int) -> int:
        """A master's replication stream offset, or how far into it a replica has processed."""
        info = _command(port, "INFO", "replication")
        return int(info["master_repl_offset"] if info["role"] == "master" else info["slave_repl_offset"])

    def pause(self, port: int) -> None:
        """SIGSTOP a node: it keeps its sockets but answers nothing (a replica falling behind, a hung host)."""
        self.node(port).process.send_signal(signal.SIGSTOP)

    def resume(self, port: int) -> None:
        self.node(port).process.send_signal(signal.SIGCONT)

    def cut_replication(self, master_port: int) -> int:
        """Freeze the master's replicas and close their links: from now on its writes exist only on it (a replica
        partitioned away). Returns the master's replication offset at the cut; `resume` the replicas after.

        Freezing alone is not enough: the master keeps sending into the frozen replica's socket buffers, which
        it reads once resumed. Closed links carry nothing more, and a frozen replica cannot reconnect.
        """
        for replica in self.replicas_of(master_port):
            self.pause(replica)
        _command(master_port, "CLIENT", "KILL", "TYPE", "replica")
        return self.replication_offset(master_port)

    def kill(self, port: int) -> None:
        """SIGKILL one node: no shutdown, no last words to its replicas (a crash, not a stop)."""
        node = self.node(port)
        node.process.kill()
        node.process.wait(timeout=10)
        node.killed = True

    def rejoin(self, port: int, timeout: float = 30) -> None:
        """Start a killed node again where it was: it rejoins as a replica of the master that replaced it, and
        this returns once it has synced (until then a master that lost its only replica has none: WAIT fails)."""
        node = self.node(port)
        masters = len(self.masters)  # counted while it is still out: it comes back as a replica
        node.server = start_redis_server(node.directory, *node.options, port=port)
        node.killed = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if _settled(port, masters, len(self.nodes)) and _command(port, "ROLE")[0] == "slave":
                    self.refresh_roles()
                    return
            except RedisError:
                pass  # still loading its config or syncing
            time.sleep(0.1)
        raise RuntimeError(f"node {port} did not rejoin as a synced replica within {timeout} s")

    def wait_for_failover(self, old_master_port: int, timeout: float = 20) -> int:
        """Wait until a replica of the killed master is a master and every live node is `cluster_state:ok`.

        Returns the promoted replica's port. Detection takes about `cluster-node-timeout` (2 s), the election
        a second more.
        """
        old_id = self.node(old_master_port).node_id
        candidates = {node.port for node in self.nodes if node.master_id == old_id and not node.killed}
        if not candidates:
            raise RuntimeError(f"the master on port {old_master_port} has no replica to promote")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.refresh_roles()
                promoted = [port for port in candidates if self.node(port).role == "master"]
                if promoted and self._all_ok():
                    return promoted[0]
            except RedisError:
                pass  # a node busy with the election, or the topology in flux: ask again
            time.sleep(0.1)
        raise RuntimeError(f"no replica of port {old_master_port} was promoted within {timeout} s")

    def stop(self) -> None:
        """Terminate every node still running, and wait for each."""
        for node in self.nodes:
            if node.process.poll() is None:
                node.server.stop()

    def _live_port(self) -> int:
        return next(node.port for node in self.nodes if not node.killed)

    def _all_ok(self) -> bool:
        for node in self.nodes:
            if node.killed:
                continue
            info = self.cluster_info(node.port)
            if info.get("cluster_state") != "ok" or info.get("cluster_slots_assigned") != str(SLOTS):
                return False
        return True

    def _wait_until_settled(self, masters: int, timeout: float) -> None:
        """Until every node is ok, sees `masters` masters (the rest replicas), and every replica has synced.

        `cluster_state:ok` comes before the replicas' roles have spread by gossip and before their first sync;
        a failover needs both (an unsynced replica is not elected, and WAIT does not count it).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.process.poll() is not None:
                    raise RuntimeError(f"node {node.port} exited with {node.process.returncode}; see its redis.log")
            try:
                if self._all_ok() and all(_settled(node.port, masters, len(self.nodes)) for node in self.nodes):
                    return
            except RedisError:
                pass  # a node still loading or syncing: ask again
            time.sleep(0.1)
        raise RuntimeError(f"the cluster was not ok ({SLOTS} slots assigned, replicas synced) within {timeout} s")


def start_redis_cluster(directory: Path, masters: int = 3, replicas_per_master: int = 1) -> RedisClusterProcesses:
    """Start `masters * (1 + replicas_per_master)` nodes under `directory`, form the cluster, wait until it is ok.

    Raises RuntimeError (after stopping what it started) if the cluster is not ok within 30 s.
    """
    cli = shutil.which("redis-cli")
    if cli is None:
        raise RuntimeError("redis-cli is not on PATH (`apt-get install redis-tools`)")
    cluster = RedisClusterProcesses()
    taken: set[int] = set()
    try:
        for _ in range(masters * (1 + replicas_per_master)):
            # The bus port defaults to port + 10000, which may be taken or past 65535: pick it explicitly.
            port, bus_port = _distinct_free_ports(2, taken)
            node_dir = directory / f"node-{port}"
            node_dir.mkdir(parents=True)
            options = ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
            options += ["--cluster-node-timeout", "2000", "--cluster-port", str(bus_port)]
            # A replica's first full sync otherwise waits 5 s for more replicas to share the transfer.
            options += ["--repl-diskless-sync-delay", "0"]
            server = start_redis_server(node_dir, *options, port=port)
            cluster.nodes.append(ClusterNode(server, node_dir, tuple(options)))
        create = [cli, "--cluster", "create", *(f"127.0.0.1:{node.port}" for node in cluster.nodes)]
        create += ["--cluster-replicas", str(replicas_per_master), "--cluster-yes"]
        result = subprocess.run(create, capture_output=True, text=True, timeout=30, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{result.stdout}{result.stderr}")
        cluster._wait_until_settled(masters, timeout=30)
        cluster.refresh_roles()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _settled(port: int, masters: int, nodes: int) -> bool:
    """Whether `port` sees all `nodes` with `masters` of them masters, and (if a replica) has synced."""
    roles = [role for _port, _id, role, _master in _cluster_nodes(port)]
    if len(roles) != nodes or roles.count("master") != masters:
        return False
    replication = _command(port, "INFO", "replication")  # redis-py parses INFO into a dict
    return bool(replication.get("role") == "master" or replication.get("master_link_status") == "up")


def _cluster_nodes(port: int) -> list[tuple[int, str, Role, str | None]]:
    """(port, node id, role, master id) of each node `port` knows and does not consider failed."""
    nodes: list[tuple[int, str, Role, str | None]] = []
    for line in _command(port, "CLUSTER", "NODES").splitlines():
        node_id, address, flags, master_id = line.split()[:4]
        if "fail" in flags.split(","):
            continue
        role: Role = "master" if "master" in flags.split(",") else "replica"
        nodes.append(
            (int(address.split("@")[0].rsplit(":", 1)[1]), node_id, role, None if master_id == "-" else master_id)
        )
    return nodes


def _distinct_free_ports(count: int, taken: set[int]) -> list[int]:
    """`count` free ports none of which is in `taken` (nodes not started yet have not bound theirs); adds them."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in taken:
            taken.add(port)
            ports.append(port)
    return ports


def _command(port: int, *args: str) -> Any:
    """One command to one node, the raw reply (strings decoded); a short-lived connection, closed at once."""
    with Redis(host="127.0.0.1", port=port, decode_responses=True, protocol=2, socket_timeout=2) as client:
        return client.execute_command(*args)
