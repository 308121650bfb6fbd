import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * Which of `pids` holds the client end of an IPv4 TCP connection to this machine (Linux /proc):
 * the connection's inode from /proc/net/tcp, matched against each process's open sockets.
 * Lets a loopback receiver tell which worker process sent a request. undefined when unknown.
 */
export function socketOwner(clientPort: number, serverPort: number, pids: number[]): number | undefined {
  const hex = (p: number) => `:${p.toString(16).toUpperCase().padStart(4, '0')}`;
  let table: string;
  try {
    table = readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return undefined;
  }
  // Columns: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
  const row = table
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[1]?.endsWith(hex(clientPort)) && f[2]?.endsWith(hex(serverPort)));
  if (!row || !row[9] || row[9] === '0') return undefined;
  const target = `socket:[${row[9]}]`;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === target) return pid;
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return undefined;
}
