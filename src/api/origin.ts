import { isIP, type Socket } from 'node:net';

/** `http://host:port` for an address of this machine (IPv4-mapped unwrapped, IPv6 bracketed, zone dropped). */
export function httpOrigin(address: string, port: number): string {
  const bare = address.replace(/%.*$/, '');
  const host = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare)?.[1] ?? bare;
  return `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

export const isWildcardAddress = (address: string) => address === '0.0.0.0' || address === '::';

/**
 * The API's own origin for a request, when PUBLIC_URL is unset: the address and port of the
 * socket that accepted it — the bind address (HOST) itself, or with a wildcard HOST the
 * machine's address the connection arrived on. Never the client-supplied Host or
 * X-Forwarded-* headers, which would let a caller point a signed link at another site.
 */
export function listeningOrigin(socket: Pick<Socket, 'localAddress' | 'localPort'>): string {
  return httpOrigin(socket.localAddress ?? '127.0.0.1', socket.localPort ?? 0);
}
