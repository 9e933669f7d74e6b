#!/usr/bin/env node
// Verifies signed App Store Server Notifications with Apple's own library,
// @apple/app-store-server-library, as the peer creditsd is measured against.
//
// usage: node verify.js --payloads FILE --root FILE [--bundle-id ID]
//                       [--app-apple-id N] [--environment Sandbox] [--warmup N]
//
// FILE holds one signedPayload (compact JWS) per line. Each notification is
// verified with verifyAndDecodeNotification and its inner
// data.signedTransactionInfo with verifyAndDecodeTransaction, one after the
// other on the main thread: one core, the way a Node webhook handler runs.
// Prints {"count", "seconds", "per_second"} on stdout.
"use strict";

const fs = require("fs");
const { SignedDataVerifier, Environment } = require("@apple/app-store-server-library");

function parseArgs(argv) {
  const opts = { bundleId: "com.example.sora", appAppleId: undefined, environment: "Sandbox", warmup: 50 };
  for (let i = 0; i < argv.length; i += 2) {
    const [key, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${key} needs a value`);
    switch (key) {
      case "--payloads": opts.payloads = value; break;
      case "--root": opts.root = value; break;
      case "--bundle-id": opts.bundleId = value; break;
      case "--app-apple-id": opts.appAppleId = Number(value); break;
      case "--environment": opts.environment = value; break;
      case "--warmup": opts.warmup = Number(value); break;
      default: throw new Error(`unknown flag ${key}`);
    }
  }
  if (!opts.payloads || !opts.root) throw new Error("--payloads and --root are required");
  return opts;
}

// environmentOf maps the App Store's spelling to the library's enum value,
// refusing anything the library does not know.
function environmentOf(name) {
  const env = Object.values(Environment).find((e) => e === name);
  if (!env) throw new Error(`unknown environment ${name}`);
  return env;
}

// verifyPair is what a webhook does with one notification: the outer JWS,
// then the transaction inside it.
async function verifyPair(verifier, jws) {
  const n = await verifier.verifyAndDecodeNotification(jws);
  const inner = n.data && n.data.signedTransactionInfo;
  if (!inner) throw new Error(`notification ${n.notificationUUID} has no signedTransactionInfo`);
  await verifier.verifyAndDecodeTransaction(inner);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const payloads = fs.readFileSync(opts.payloads, "utf8").split("\n").filter((l) => l.length > 0);
  // X509Certificate takes DER or PEM alike.
  const root = fs.readFileSync(opts.root);
  // enableOnlineChecks=false: no OCSP (nothing but loopback is reachable, and
  // creditsd does none either); dates are then checked at each signedDate.
  const verifier = new SignedDataVerifier([root], false, environmentOf(opts.environment), opts.bundleId, opts.appAppleId);

  // A short warm-up lets V8 compile the hot path, as a long-running server
  // would have; it is not counted.
  for (const jws of payloads.slice(0, Math.min(opts.warmup, payloads.length))) {
    await verifyPair(verifier, jws);
  }
  const start = process.hrtime.bigint();
  for (const jws of payloads) {
    await verifyPair(verifier, jws);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  process.stdout.write(JSON.stringify({ count: payloads.length, seconds, per_second: payloads.length / seconds }) + "\n");
}

main().catch((err) => {
  // VerificationException carries a numeric status (VerificationStatus) and no message.
  const status = err && err.status !== undefined ? ` (VerificationStatus ${err.status})` : "";
  process.stderr.write(`verify.js${status}: ${err && err.stack ? err.stack : err}\n`);
  if (err && err.cause) process.stderr.write(`cause: ${err.cause.stack || err.cause}\n`);
  process.exit(1);
});
