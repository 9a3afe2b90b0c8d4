// A small client for the Constellation service (`constellation serve`): nothing but `fetch`,
// so it runs on Node 18+ (no npm packages), Deno, Bun and in browsers.
//
//   import { Constellation } from "./constellation.mjs";
//   const service = new Constellation("http://127.0.0.1:8080", { token: process.env.CONSTELLATION_TOKEN });
//   await service.embed({ userId: "u1", noteId: "n1", text: "buy milk", created: Date.now(), version: 1 });
//   const { results } = await service.query("groceries", { userId: "u1", topK: 10 });
//
// During the migration the app writes and searches through the service's router instead:
//   await service.writeNote({ userId: "u1", noteId: "n1", text: "buy milk" });
//   const { results, servedBy } = await service.search("groceries", { userId: "u1" });
//
// Every error is a ConstellationError with the HTTP status and the service's JSON body
// ({error, detail, component?, fields?}; /embed's 422 is {rejected: [{index, reason, detail}]}).
// A 503 (overloaded, or a system the service needs is down) is retried after its Retry-After,
// a few times: every call here is safe to repeat (jobs and note writes are idempotent).

/** An answer that was not 2xx. */
export class ConstellationError extends Error {
  constructor(status, body) {
    const detail = typeof body === "object" && body !== null ? body.detail ?? JSON.stringify(body) : body;
    super(`Constellation answered ${status}: ${detail}`);
    this.name = "ConstellationError";
    this.status = status;
    this.body = body;
  }
}

export class Constellation {
  /**
   * @param {string} baseUrl e.g. "http://127.0.0.1:8080"
   * @param {{token?: string, retries?: number, timeoutMs?: number}} [options]
   */
  constructor(baseUrl, { token, retries = 3, timeoutMs = 30_000 } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.token = token;
    this.retries = retries;
    this.timeoutMs = timeoutMs;
  }

  /** One job, or an array of jobs (sent as {jobs}); resolves to {accepted, messageIds}. */
  embed(jobs) {
    return this.#call("POST", "/embed", Array.isArray(jobs) ? { jobs } : jobs);
  }

  /** The user's closest notes in the new index: {results: [{noteId, score, version, created}]}. */
  query(text, { userId, topK = 10, version, versions } = {}) {
    return this.#call("POST", "/query", { text, userId, topK, version, versions });
  }

  /** Write a note the way the migration's router does: {writeMode, written, failed}. */
  writeNote({ userId, noteId, text, created }) {
    return this.#call("POST", "/notes", { userId, noteId, text, created });
  }

  /** Search the way the router does: {results, servedBy: "old" | "new"}. */
  search(text, { userId, topK = 10 } = {}) {
    return this.#call("POST", "/search", { text, userId, topK });
  }

  /** The service's figures (what `constellation stats --json` prints). */
  stats() {
    return this.#call("GET", "/stats");
  }

  /** {ready, failing, checks}; a service that is not ready answers 503, retried here. */
  ready() {
    return this.#call("GET", "/readyz");
  }

  async #call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    for (let attempt = 0; ; attempt++) {
      const response = await fetch(this.baseUrl + path, {
        method,
        headers,
        // JSON.stringify drops undefined fields: optional ones are simply not sent
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      const isJson = (response.headers.get("content-type") ?? "").includes("json");
      const data = isJson ? await response.json() : await response.text();
      if (response.ok) return data;
      if (response.status === 503 && attempt < this.retries) {
        const wait = Number(response.headers.get("retry-after") ?? "1");
        await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 30) * 1000));
        continue;
      }
      throw new ConstellationError(response.status, data);
    }
  }
}
