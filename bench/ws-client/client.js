#!/usr/bin/env node
// WebSocket load client for bench/websocket.py, on the `ws` package. Prints one JSON
// object a line on stdout; bench/websocket.py reads them.
//
//   node client.js idle URL CONNECTIONS BROADCAST_URL ROUNDS
//     Opens CONNECTIONS WebSockets (at most 200 handshakes in flight), prints
//     {"phase":"opened",...}, then waits for a line on stdin (bench/websocket.py reads the
//     server's memory meanwhile). Then, ROUNDS times: POSTs a unique text to
//     BROADCAST_URL, which sends it to every client, and prints {"phase":"broadcast",...}
//     with the time from the POST until every connection had it. Waits for another
//     line on stdin, closes everything, prints {"phase":"done"} and exits.
//
//   node client.js echo URL CLIENTS SECONDS SIZE WARMUP_SECONDS DEFLATE [PAYLOAD]
//     CLIENTS connections, each sending a SIZE-byte text message and waiting for its
//     echo before sending the next, for WARMUP_SECONDS + SECONDS. Prints the echoes per
//     second and latency percentiles of the last SECONDS, how many clients stalled
//     (still waiting for an echo 10 s after the end), and the bytes the server sent per
//     echo on the wire (TCP payload, frame headers included). DEFLATE is "on" (offer
//     permessage-deflate, the `ws` default) or "off". PAYLOAD is "x" (SIZE x's, the
//     default) or "json" (JSON records of words and numbers, which deflate ~5:1).
"use strict";

const http = require("http");
const readline = require("readline");
const WebSocket = require("ws");

const HANDSHAKES_IN_FLIGHT = 200;
const ROUND_TIMEOUT_MS = 120000;
const STALL_GRACE_MS = 10000;

function emit(object) {
  process.stdout.write(JSON.stringify(object) + "\n");
}

function fail(message) {
  emit({ phase: "error", message });
  process.exit(1);
}

const stdinLines = readline.createInterface({ input: process.stdin });
const pendingLines = [];
const lineWaiters = [];
stdinLines.on("line", (line) => {
  const waiter = lineWaiters.shift();
  if (waiter) waiter(line);
  else pendingLines.push(line);
});

function nextStdinLine() {
  if (pendingLines.length) return Promise.resolve(pendingLines.shift());
  return new Promise((resolve) => lineWaiters.push(resolve));
}

function open(url, deflate) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: deflate });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

async function openMany(url, count, deflate) {
  const sockets = [];
  let next = 0;
  let failed = 0;
  let firstError = null;
  async function worker() {
    while (next < count) {
      next++;
      try {
        sockets.push(await open(url, deflate));
      } catch (err) {
        failed++;
        firstError = firstError || String(err);
      }
    }
  }
  const workers = [];
  for (let i = 0; i < Math.min(HANDSHAKES_IN_FLIGHT, count); i++) workers.push(worker());
  await Promise.all(workers);
  return { sockets, failed, firstError };
}

function post(url, body) {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: "POST" }, (response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () => resolve(Buffer.concat(chunks).toString()));
    });
    request.on("error", reject);
    request.end(body);
  });
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function idle(url, connections, broadcastUrl, rounds) {
  const started = performance.now();
  const { sockets, failed, firstError } = await openMany(url, connections, true);
  const deflate = sockets.length > 0 && "permessage-deflate" in parseExtensions(sockets[0]);
  emit({
    phase: "opened",
    connections: sockets.length,
    failed,
    first_error: firstError,
    open_s: (performance.now() - started) / 1000,
    deflate,
  });
  await nextStdinLine();
  for (let round = 1; round <= rounds; round++) {
    const text = `broadcast ${round} ${Date.now()}`;
    let received = 0;
    let resolveAll;
    const allReceived = new Promise((resolve) => (resolveAll = resolve));
    const onMessage = (data) => {
      if (data.toString() === text && ++received === sockets.length) resolveAll();
    };
    for (const ws of sockets) ws.on("message", onMessage);
    const t0 = performance.now();
    const reply = JSON.parse(await post(broadcastUrl, text));
    const responded = performance.now() - t0;
    const timeout = new Promise((resolve) => setTimeout(resolve, ROUND_TIMEOUT_MS, "timeout"));
    const outcome = await Promise.race([allReceived, timeout]);
    emit({
      phase: "broadcast",
      round,
      clients: reply.clients,
      server_queued_ms: reply.queued_ms,
      response_ms: responded,
      all_received_ms: outcome === "timeout" ? null : performance.now() - t0,
      received,
    });
    for (const ws of sockets) ws.off("message", onMessage);
  }
  await nextStdinLine();
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise((resolve) => {
          ws.once("close", resolve);
          ws.close();
          setTimeout(() => { ws.terminate(); resolve(); }, 10000).unref();
        }),
    ),
  );
  emit({ phase: "done" });
  process.exit(0);
}

function parseExtensions(ws) {
  const header = ws.extensions || "";
  const names = {};
  for (const part of header.split(",")) {
    const name = part.split(";")[0].trim();
    if (name) names[name] = true;
  }
  return names;
}

// JSON records of words and numbers, `size` characters (ASCII), the same every run.
function jsonText(size) {
  const words = ["alpha", "beta", "gamma", "delta", "mummy", "server", "thread", "python"];
  let seed = 7;
  const next = (n) => ((seed = (seed * 1103515245 + 12345) % 2147483648) % n);
  let text = "[";
  for (let id = 0; text.length < size; id++) {
    const name = [0, 1, 2].map(() => words[next(words.length)]).join(" ");
    text += JSON.stringify({ id, name, score: next(100000), ok: next(2) === 1 }) + ",";
  }
  return text.slice(0, size);
}

async function echo(url, clients, seconds, size, warmup, deflate, kind) {
  const { sockets, failed, firstError } = await openMany(url, clients, deflate);
  if (failed) fail(`${failed} connections failed: ${firstError}`);
  const negotiated = "permessage-deflate" in parseExtensions(sockets[0]);
  const payload = kind === "json" ? jsonText(size) : "x".repeat(size);
  let received = 0;
  const start = performance.now();
  const measureFrom = start + warmup * 1000;
  const stopAt = measureFrom + seconds * 1000;
  const latencies = [];
  let errors = 0;
  let finished = 0;
  // A client whose echo never comes would wait forever: past the end plus a grace
  // period, stop waiting and count it as stalled.
  let giveUp;
  const gaveUp = new Promise((resolve) => (giveUp = resolve));
  setTimeout(giveUp, stopAt - start + STALL_GRACE_MS).unref();
  const everyone = Promise.all(
    sockets.map(
      (ws) =>
        new Promise((resolve) => {
          let sentAt = 0;
          const sendNext = () => {
            sentAt = performance.now();
            ws.send(payload);
          };
          ws.on("message", (data) => {
            const now = performance.now();
            received++;
            if (data.length !== size) errors++;
            if (now >= measureFrom && sentAt >= measureFrom) latencies.push(now - sentAt);
            if (now < stopAt) sendNext();
            else { finished++; resolve(); }
          });
          ws.on("close", () => { errors++; resolve(); });
          sendNext();
        }),
    ),
  );
  await Promise.race([everyone, gaveUp]);
  latencies.sort((a, b) => a - b);
  // What the server sent, over every echo of the run (the 101s are ~0.1% of it).
  const wireRead = sockets.reduce((sum, ws) => sum + ws._socket.bytesRead, 0);
  emit({
    phase: "echo",
    clients: sockets.length,
    size,
    deflate: negotiated,
    seconds,
    messages: latencies.length,
    msgs_per_s: latencies.length / seconds,
    p50_ms: percentile(latencies, 50),
    p99_ms: percentile(latencies, 99),
    max_ms: latencies.length ? latencies[latencies.length - 1] : null,
    errors,
    stalled: sockets.length - finished,
    wire_bytes_per_echo: received ? wireRead / received : null,
  });
  for (const ws of sockets) ws.terminate();
  process.exit(0);
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "idle") {
  idle(args[0], Number(args[1]), args[2], Number(args[3])).catch((err) => fail(String(err)));
} else if (mode === "echo") {
  echo(
    args[0], Number(args[1]), Number(args[2]), Number(args[3]), Number(args[4]),
    args[5] !== "off", args[6] || "x",
  ).catch((err) => fail(String(err)));
} else {
  fail("usage: node client.js idle URL N BROADCAST_URL ROUNDS | echo URL CLIENTS SECONDS SIZE WARMUP DEFLATE [x|json]");
}
