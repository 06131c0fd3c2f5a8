/**
 * A value read from a store (a secret in Secrets Manager), cached for `maxAgeMs`, and read afresh on
 * demand (a rejected key, a signature that no cached secret verifies) at most once per
 * `minRefreshIntervalMs`: a burst of failures costs one read, not one each. A read that throws
 * leaves the last good value as it was.
 */

export interface RefreshingValueOptions<T> {
  /** Reads the value; `forceFetch` bypasses any cache below (Powertools' own). */
  readonly fetch: (forceFetch: boolean) => Promise<T>;
  /** How long a value is used before it is read again. */
  readonly maxAgeMs: number;
  /** The least time between two reads on demand: a value read this recently is fresh enough. */
  readonly minRefreshIntervalMs: number;
  readonly now?: () => number;
}

export class RefreshingValue<T> {
  private cached?: { value: T; fetchedAt: number };
  private readonly now: () => number;

  constructor(private readonly options: RefreshingValueOptions<T>) {
    this.now = options.now ?? Date.now;
  }

  private age(): number {
    return this.cached ? this.now() - this.cached.fetchedAt : Number.POSITIVE_INFINITY;
  }

  /** The cached value while it is younger than `maxAgeMs`, else a fresh read. */
  async get(): Promise<T> {
    if (this.cached && this.age() < this.options.maxAgeMs) return this.cached.value;
    return this.load(false);
  }

  /** A fresh read, or undefined when the cached value was read less than `minRefreshIntervalMs` ago. */
  async refresh(): Promise<T | undefined> {
    if (this.cached && this.age() < this.options.minRefreshIntervalMs) return undefined;
    return this.load(true);
  }

  private async load(forceFetch: boolean): Promise<T> {
    const value = await this.options.fetch(forceFetch);
    this.cached = { value, fetchedAt: this.now() };
    return value;
  }
}
