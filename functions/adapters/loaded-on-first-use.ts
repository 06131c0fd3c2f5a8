/** The methods of a port: each returns a promise, so a call can wait for the adapter to load. */
type AsyncPort = Record<string, (...args: never[]) => Promise<unknown>>;

/**
 * A port whose adapter (and the SDK client behind it) is loaded by the first call. For adapters most
 * invocations never use: claim checks, quarantine, backfill requests. Lambda's cold start then skips
 * loading their clients. A failed load is retried by the next call.
 */
export function loadedOnFirstUse<Port extends object>(load: () => Promise<Port>): Port {
  let adapter: Promise<Port> | undefined;
  const loaded = (): Promise<Port> =>
    (adapter ??= load().catch((error: unknown) => {
      adapter = undefined;
      throw error;
    }));
  return new Proxy({} as Port, {
    get: (_target, method) => async (...args: unknown[]) => {
      const target = (await loaded()) as unknown as AsyncPort;
      return target[method as string]!.apply(target, args as never[]);
    },
  });
}
