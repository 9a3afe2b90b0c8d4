#!/usr/bin/env node
// A notes app's calls to Constellation, end to end: embed a note, find it with /query, then
// search through /search (as the app does while its reads migrate) until stdin closes.
//
//   CONSTELLATION_URL=http://127.0.0.1:8080 CONSTELLATION_TOKEN=... \
//     node examples/notes-app.mjs --user u1 --note n1 --text "buy milk" \
//       [--searches searches.json]     # [[userId, text], ...] searched in turn
//
// Prints one JSON line per event on stdout: {"event": "embedded" | "found" | "search", ...}.
// The test suite runs it against a real `constellation serve` while an operator walks
// phase 2 and rolls back (tests/serve/test_js_client.py).

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Constellation } from "./constellation.mjs";

const { values: args } = parseArgs({
  options: {
    user: { type: "string" },
    note: { type: "string" },
    text: { type: "string" },
    searches: { type: "string" },
    "find-timeout": { type: "string", default: "120" },
  },
});
if (!args.user || !args.note || !args.text) {
  console.error("usage: notes-app.mjs --user U --note N --text T [--searches FILE]");
  process.exit(2);
}

const service = new Constellation(process.env.CONSTELLATION_URL ?? "http://127.0.0.1:8080", {
  token: process.env.CONSTELLATION_TOKEN,
});
const print = (event) => process.stdout.write(JSON.stringify(event) + "\n");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// 1. The app's deployment check and its write: embed one note.
const job = { userId: args.user, noteId: args.note, text: args.text, created: Date.now(), version: 1 };
const accepted = await service.embed(job);
print({ event: "embedded", ...accepted });

// 2. The worker stores it asynchronously: query until it is the best hit.
const deadline = Date.now() + Number(args["find-timeout"]) * 1000;
for (;;) {
  const { results } = await service.query(args.text, { userId: args.user, topK: 3 });
  if (results.length && results[0].noteId === args.note) {
    print({ event: "found", noteId: results[0].noteId, score: results[0].score });
    break;
  }
  if (Date.now() > deadline) {
    console.error(`note ${args.note} was not found within ${args["find-timeout"]}s`);
    process.exit(1);
  }
  await sleep(200);
}

// 3. The app's searches, routed by the migration, until stdin closes.
if (args.searches) {
  const searches = JSON.parse(readFileSync(args.searches, "utf8"));
  let open = true;
  process.stdin.on("end", () => (open = false)).on("close", () => (open = false));
  process.stdin.resume();
  for (let i = 0; open; i++) {
    const [userId, text] = searches[i % searches.length];
    const at = Date.now();
    const { results, servedBy } = await service.search(text, { userId, topK: 5 });
    print({ event: "search", at, ms: Date.now() - at, userId, servedBy, noteIds: results.map((r) => r.noteId) });
  }
}
