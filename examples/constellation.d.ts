// Types for constellation.mjs, for a TypeScript app: `import { Constellation } from "./constellation.mjs"`.

export interface Job {
  userId: string;
  noteId: string;
  text: string;
  /** the note's last edit, epoch milliseconds */
  created: number;
  /** the model version, declared in the plan */
  version: number;
}

export interface Result {
  noteId: string;
  score: number;
  version: number;
  created: number;
}

export interface Problem {
  error: string;
  detail: string;
  component?: string;
  fields?: { field: string; detail: string }[];
}

export declare class ConstellationError extends Error {
  status: number;
  body: Problem | { rejected: { index: number; reason: string; detail: string }[] } | string;
}

export declare class Constellation {
  constructor(baseUrl: string, options?: { token?: string; retries?: number; timeoutMs?: number });
  embed(jobs: Job | Job[]): Promise<{ accepted: number; messageIds: string[] }>;
  query(
    text: string,
    options: { userId: string; topK?: number; version?: number; versions?: number[] },
  ): Promise<{ results: Result[] }>;
  writeNote(note: {
    userId: string;
    noteId: string;
    text: string;
    created?: number;
  }): Promise<{ writeMode: "old" | "dual" | "new"; written: ("old" | "new")[]; failed: ("old" | "new")[] }>;
  search(
    text: string,
    options: { userId: string; topK?: number },
  ): Promise<{ results: Result[]; servedBy: "old" | "new" }>;
  stats(): Promise<Record<string, unknown>>;
  ready(): Promise<{ ready: boolean; failing: string[]; checks: { name: string; ok: boolean; detail: string }[] }>;
}
