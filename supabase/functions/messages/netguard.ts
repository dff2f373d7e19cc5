/**
 * The intake check of X-Webhook-URL, mirroring service/neiromatrius/adapters/netguard.py
 * (`WebhookUrlGuard`): the URL is split the way httpx (the listener's client) splits it, literal
 * addresses are checked against the same policy, names are resolved and every answer checked, and a
 * name that does not resolve is accepted (DNS changes; the listener checks again and pins at delivery).
 */

import { InputError } from "./errors.ts";

export const FIELD = "X-Webhook-URL";
const MAX_URL_LENGTH = 2048;
const RESOLVE_TIMEOUT_MS = 5000;

/** A and AAAA answers for a name; throw (anything) when it does not resolve. */
export type Resolver = (host: string) => Promise<string[]>;

const DENY_V4: ReadonlyArray<readonly [string, number]> = [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10], // CGNAT; holds Alibaba's metadata address 100.100.100.200
  ["127.0.0.0", 8],
  ["169.254.0.0", 16], // link-local; holds the cloud metadata address 169.254.169.254
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
];

function parseIPv4(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part) || Number(part) > 255) return null;
    value = value * 256 + Number(part);
  }
  return value;
}

function inV4(address: number, [network, bits]: readonly [string, number]): boolean {
  const size = 2 ** (32 - bits);
  return Math.floor(address / size) === Math.floor((parseIPv4(network) as number) / size);
}

function isPublicV4(address: number): boolean {
  return !DENY_V4.some((network) => inV4(address, network));
}

/** Eight 16-bit groups, or null; accepts `::` compression, a dotted IPv4 tail and no zone id. */
function parseIPv6(text: string): number[] | null {
  let head = text;
  let tail: number[] = [];
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = parseIPv4(dotted[2]);
    if (v4 === null) return null;
    head = dotted[1].endsWith("::") ? dotted[1] : dotted[1].slice(0, -1);
    tail = [Math.floor(v4 / 65536), v4 % 65536];
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const groups = (half: string): number[] | null => {
    if (half === "") return [];
    const out: number[] = [];
    for (const group of half.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return null;
      out.push(parseInt(group, 16));
    }
    return out;
  };
  const left = groups(halves[0]);
  const right = halves.length === 2 ? groups(halves[1]) : [];
  if (left === null || right === null) return null;
  const known = left.length + right.length + tail.length;
  if (halves.length === 1) return known === 8 ? [...left, ...tail] : null;
  if (known > 7) return null;
  return [...left, ...new Array<number>(8 - known).fill(0), ...right, ...tail];
}

/**
 * Python's `is_public_address` for IPv6: an IPv4-mapped address is judged as its IPv4 address;
 * otherwise only global unicast (2000::/3) outside 2001::/23 (IETF protocol assignments, Teredo
 * included) and 2001:db8::/32 passes, and 6to4 (2002::/16) only when the IPv4 it embeds is public.
 */
function isPublicV6(g: number[]): boolean {
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return isPublicV4(g[6] * 65536 + g[7]);
  if (g[0] < 0x2000 || g[0] > 0x3fff) return false;
  if (g[0] === 0x2001 && (g[1] < 0x200 || g[1] === 0x0db8)) return false;
  if (g[0] === 0x2002) return isPublicV4(g[1] * 65536 + g[2]);
  return true;
}

/** True only for a public IPv4 or IPv6 literal; anything unparseable counts as not public. */
export function isPublicAddress(text: string): boolean {
  const v4 = parseIPv4(text);
  if (v4 !== null) return isPublicV4(v4);
  const v6 = parseIPv6(text);
  return v6 !== null && isPublicV6(v6);
}

export async function systemResolver(host: string): Promise<string[]> {
  const signal = AbortSignal.timeout(RESOLVE_TIMEOUT_MS);
  const lookups = await Promise.allSettled([
    Deno.resolveDns(host, "A", { signal }),
    Deno.resolveDns(host, "AAAA", { signal }),
  ]);
  const answers = lookups.flatMap((lookup) => lookup.status === "fulfilled" ? lookup.value : []);
  if (answers.length === 0) throw new Error(`${host} does not resolve`);
  return answers;
}

interface Authority {
  host: string;
  port: number | null;
}

/** Split like httpx's urlparse: authority up to `/?#`, userinfo up to the last `@`, then host and port. */
function parseAuthority(url: string): Authority {
  if (url.length > MAX_URL_LENGTH) throw new InputError(FIELD, `${FIELD} must be at most ${MAX_URL_LENGTH} characters`);
  if (/[\s\p{Cc}]/u.test(url)) {
    throw new InputError(FIELD, `${FIELD} must not contain whitespace or control characters`);
  }
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)/.exec(url);
  const scheme = match?.[1].toLowerCase();
  if (!match || (scheme !== "http" && scheme !== "https")) {
    throw new InputError(FIELD, `${FIELD} must be an http:// or https:// URL`);
  }
  const at = match[2].lastIndexOf("@");
  const userinfo = at < 0 ? "" : match[2].slice(0, at);
  const parts = /^(\[.*\]|[^:@]*):?(.*)$/s.exec(match[2].slice(at + 1));
  if (!parts) throw new InputError(FIELD, `${FIELD} is not a valid URL`);
  const [, host, portText] = parts;
  // httpx reads the port with Python's int(): a sign and single underscores between digits pass.
  if (portText !== "" && !/^[+-]?\d+(_\d+)*$/.test(portText)) {
    throw new InputError(FIELD, `${FIELD} is not a valid URL`);
  }
  let port = portText === "" ? null : Number(portText.replaceAll("_", ""));
  if (port === (scheme === "https" ? 443 : 80)) port = null;
  if (host === "") throw new InputError(FIELD, `${FIELD} must name a host`);
  if (userinfo !== "") throw new InputError(FIELD, `${FIELD} must not contain credentials (user:password@)`);
  if (port !== null && !(port >= 1 && port <= 65535)) {
    throw new InputError(FIELD, `${FIELD} has a port outside 1-65535`);
  }
  return { host, port };
}

type Destination = { literal: string } | { name: string };

/**
 * What the listener would dial: an IP literal (bracketed IPv6, or any IPv4 spelling the system
 * resolver reads as one — `2130706433`, `0x7f.1`, `0177.0.0.1`), or a name to resolve.
 */
function destination(host: string): Destination {
  if (host.startsWith("[")) {
    const inner = host.slice(1, -1);
    if (parseIPv6(inner) === null) throw new InputError(FIELD, `${FIELD} is not a valid URL`);
    return { literal: inner };
  }
  let hostname: string;
  try {
    hostname = new URL(`http://${host}/`).hostname;
  } catch {
    return { name: host.toLowerCase() }; // httpx takes it; resolution will fail and the listener checks again
  }
  return parseIPv4(hostname) !== null ? { literal: hostname } : { name: hostname };
}

function isLocalhostName(name: string): boolean {
  const bare = name.endsWith(".") ? name.slice(0, -1) : name;
  return bare === "localhost" || bare.endsWith(".localhost");
}

const BLOCKED = `${FIELD} points to a private, loopback, link-local or metadata address`;

export class WebhookUrlGuard {
  constructor(private readonly allowPrivate: boolean, private readonly resolve: Resolver = systemResolver) {}

  async check(url: string): Promise<void> {
    const { host } = parseAuthority(url);
    if (this.allowPrivate) return;
    const target = destination(host);
    if ("literal" in target) {
      if (!isPublicAddress(target.literal)) throw new InputError(FIELD, BLOCKED);
      return;
    }
    // The system resolver answers localhost names from /etc/hosts; DNS may not, so they are named here.
    if (isLocalhostName(target.name)) throw new InputError(FIELD, BLOCKED);
    let answers: string[];
    try {
      answers = await this.resolve(target.name);
    } catch {
      return;
    }
    if (answers.some((answer) => !isPublicAddress(answer))) throw new InputError(FIELD, BLOCKED);
  }
}
