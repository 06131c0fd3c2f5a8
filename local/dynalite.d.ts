/** The part of dynalite's API the local pipeline uses (the package ships no types). */
declare module 'dynalite' {
  import type { Server } from 'node:http';

  interface DynaliteOptions {
    /** The LevelDB folder; in memory when absent. */
    readonly path?: string;
    /** Milliseconds a table stays CREATING / DELETING / UPDATING (default 500 each). */
    readonly createTableMs?: number;
    readonly deleteTableMs?: number;
    readonly updateTableMs?: number;
    readonly maxItemSizeKb?: number;
  }

  export default function dynalite(options?: DynaliteOptions): Server;
}
