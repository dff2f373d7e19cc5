/**
 * The function against the Python API's own verdicts (testdata/conformance.json, which
 * tests/integration/test_edge_function.py checks against the Python code): the address policy and
 * the request fingerprint. Then the webhook URL guard's literal and name checks, with a fake resolver.
 */

import { InputError } from "./errors.ts";
import { parseIntake } from "./intake.ts";
import { isPublicAddress, WebhookUrlGuard } from "./netguard.ts";
import { assertEquals, assertRejects } from "./testing.ts";

interface Conformance {
  addresses: { address: string; public: boolean }[];
  fingerprints: { headers: Record<string, string>; body: string; fingerprint: string }[];
}

const table: Conformance = JSON.parse(
  await Deno.readTextFile(new URL("./testdata/conformance.json", import.meta.url)),
);

Deno.test("the address policy gives Python's is_public_address verdict for every address in the table", () => {
  const verdicts = table.addresses.map(({ address }) => ({ address, public: isPublicAddress(address) }));
  assertEquals(verdicts, table.addresses);
});

Deno.test("a request's fingerprint is the one the Python API computes for it", async () => {
  for (const { headers, body, fingerprint } of table.fingerprints) {
    const message = await parseIntake(new Headers(headers), new TextEncoder().encode(body), 4000);
    assertEquals(message.fingerprint, fingerprint, body);
  }
});

const INTERNAL_URLS = [
  "http://127.0.0.1/hook",
  "http://127.1:8080/",
  "http://2130706433/",
  "http://0x7f000001/",
  "http://0x7f.1/",
  "http://0177.0.0.1/",
  "http://017700000001/",
  "https://[::1]/",
  "http://[::ffff:127.0.0.1]/",
  "http://[::ffff:a9fe:a9fe]/",
  "http://[fe80::1]/",
  "http://[fd00::1]:8443/",
  "http://169.254.169.254/latest/meta-data/",
  "http://100.100.100.200/",
  "http://10.0.0.1/",
  "http://192.168.1.10/",
  "http://0.0.0.0/",
  "http://localhost/",
  "http://LOCALHOST:8000/",
  "http://api.localhost./",
];

const resolveNothing = (host: string): Promise<string[]> => Promise.reject(new Error(`${host} does not resolve`));

Deno.test("internal webhook URLs are refused, naming X-Webhook-URL", async () => {
  const guard = new WebhookUrlGuard(false, resolveNothing);
  for (const url of INTERNAL_URLS) {
    const error = await assertRejects(() => guard.check(url), InputError, undefined, url);
    assertEquals([error.status, error.field], [422, "X-Webhook-URL"], url);
  }
});

Deno.test("malformed webhook URLs are refused as httpx would read them", async () => {
  const guard = new WebhookUrlGuard(true, resolveNothing);
  const cases: Record<string, string> = {
    "ftp://example.com/": "X-Webhook-URL must be an http:// or https:// URL",
    "http://user:secret@example.com/": "X-Webhook-URL must not contain credentials (user:password@)",
    // httpx splits userinfo at the last "@", so the listener would dial 127.0.0.1 here.
    "http://example.com\\@127.0.0.1/": "X-Webhook-URL must not contain credentials (user:password@)",
    "http://:80/": "X-Webhook-URL must name a host",
    "http://example.com:0/": "X-Webhook-URL has a port outside 1-65535",
    "http://example.com:70000/": "X-Webhook-URL has a port outside 1-65535",
    "http://example.com:http/": "X-Webhook-URL is not a valid URL",
  };
  for (const [url, message] of Object.entries(cases)) {
    const error = await assertRejects(() => guard.check(url), InputError, undefined, url);
    assertEquals(error.message, message, url);
  }
});

Deno.test("a name is resolved and refused when any answer is private; a name that does not resolve passes", async () => {
  const answers: Record<string, string[]> = {
    "rebind.example": ["93.184.216.34", "10.0.0.7"],
    "v6.example": ["2606:4700::1", "::ffff:127.0.0.1"],
    "public.example": ["93.184.216.34", "2606:4700:4700::1111"],
  };
  const resolver = (host: string) => host in answers ? Promise.resolve(answers[host]) : resolveNothing(host);
  const guard = new WebhookUrlGuard(false, resolver);
  for (const host of ["rebind.example", "v6.example"]) {
    const error = await assertRejects(() => guard.check(`https://${host}/hook`), InputError);
    assertEquals(error.field, "X-Webhook-URL");
  }
  await guard.check("https://public.example/hook");
  await guard.check("https://Does-Not-Resolve.example:8443/hook");
  await guard.check("http://8.8.8.8/");
  await guard.check("http://[2606:4700:4700::1111]:8080/");
});

Deno.test("ALLOW_PRIVATE_WEBHOOKS lets loopback and private addresses through, but not malformed URLs", async () => {
  const guard = new WebhookUrlGuard(true, resolveNothing);
  for (const url of INTERNAL_URLS) await guard.check(url);
  await assertRejects(() => guard.check("http://user@127.0.0.1/"), InputError);
});
